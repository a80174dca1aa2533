package index

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/theeye/theeye"
)

// This file holds the layout of the values that are not rendered JSON: the
// header in front of each error record, the dedupe value and the meta
// values.

// reasonCodes gives each reason code its bit in an error header's mask.
// Persisted: append new codes, never reorder. A code missing here (from a
// Checker) gets bit 63.
var reasonCodes = [...]string{
	theeye.ReasonMissingField,
	theeye.ReasonWrongType,
	theeye.ReasonReservedField,
	theeye.ReasonEmptyData,
	theeye.ReasonInvalidTimestamp,
	theeye.ReasonTimestampInFuture,
	theeye.ReasonTimestampTooOld,
	theeye.ReasonSchemaViolation,
	theeye.ReasonUnknownEventType,
	theeye.ReasonInvalidJSON,
}

const otherReasonBit = 63

// reasonBit returns the mask bit of a reason code and whether it is known.
func reasonBit(code string) (uint64, bool) {
	for i, c := range reasonCodes {
		if c == code {
			return 1 << i, true
		}
	}
	return 1 << otherReasonBit, false
}

// reasonMask is the union of the bits of reasons.
func reasonMask(reasons []theeye.Reason) uint64 {
	var m uint64
	for _, r := range reasons {
		b, _ := reasonBit(r.Code)
		m |= b
	}
	return m
}

var errBadValue = errors.New("malformed value")

// appendErrorHeader appends the header of an x value: uvarint reason mask,
// uvarint app length, app. The record JSON follows it.
func appendErrorHeader(dst []byte, mask uint64, app string) []byte {
	dst = binary.AppendUvarint(dst, mask)
	dst = binary.AppendUvarint(dst, uint64(len(app)))
	return append(dst, app...)
}

// decodeErrorValue splits an x value into its header fields and the record.
func decodeErrorValue(v []byte) (mask uint64, app, record []byte, err error) {
	mask, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, nil, nil, errBadValue
	}
	v = v[n:]
	l, n := binary.Uvarint(v)
	if n <= 0 || l > uint64(len(v)-n) {
		return 0, nil, nil, errBadValue
	}
	v = v[n:]
	return mask, v[:l], v[l:], nil
}

// eventHashLen is the length of the hash of the raw event kept in a dedupe
// value, to tell a true retry from a reuse of the id for a different event.
const eventHashLen = 16

// appendDedupeValue appends seq and the first 16 bytes of SHA-256(raw).
func appendDedupeValue(dst []byte, seq uint64, raw []byte) []byte {
	sum := sha256.Sum256(raw)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return append(dst, sum[:eventHashLen]...)
}

// decodeDedupeValue is the twin of appendDedupeValue.
func decodeDedupeValue(v []byte) (seq uint64, hash [eventHashLen]byte, err error) {
	if len(v) != 8+eventHashLen {
		return 0, hash, errBadValue
	}
	copy(hash[:], v[8:])
	return binary.BigEndian.Uint64(v), hash, nil
}

// Meta keys (m/<name>), each holding a big-endian uint64.
const (
	metaVersion    = "version"    // layout version of this database
	metaCursor     = "cursor"     // last indexed seq
	metaEvents     = "events"     // events indexed
	metaErrors     = "errors"     // events that failed validation
	metaDuplicates = "duplicates" // events skipped as duplicates
)

// layoutVersion is the key and value layout this package writes. Open
// refuses a database with another one.
const layoutVersion = 1
