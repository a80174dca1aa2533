package index

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/theeye/theeye"
)

// This file holds the layout of the values that are not rendered JSON: the
// app in front of session bodies and pointers, the header in front of each
// error record, the dedupe value and the meta values.

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
	theeye.ReasonDuplicateIDConflict,
}

const otherReasonBit = 63

// ReasonCodes returns the reason codes the index knows (and filters on).
func ReasonCodes() []string { return append([]string(nil), reasonCodes[:]...) }

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

// appendAppValue appends the value of an s or c key (rest = the rendered
// body), an n pointer (rest empty) or a t pointer (rest = the category):
// uvarint length of the app, the app, then rest. The app comes first so that the app filter reads
// it without looking further.
func appendAppValue(dst []byte, app, rest string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(app)))
	dst = append(dst, app...)
	return append(dst, rest...)
}

// decodeAppValue is the twin of appendAppValue.
func decodeAppValue(v []byte) (app, rest []byte, err error) {
	l, n := binary.Uvarint(v)
	if n <= 0 || l > uint64(len(v)-n) {
		return nil, nil, errBadValue
	}
	v = v[n:]
	return v[:l:l], v[l:], nil
}

// errorHeader is the part of an x value that filters read without parsing
// the record JSON.
type errorHeader struct {
	mask           uint64
	app            []byte
	category, name []byte // of the event, as far as they parsed ("" otherwise)
}

// appendErrorHeader appends the header of an x value: uvarint reason mask,
// then app, category and name, each as uvarint length + bytes. The record
// JSON follows it.
func appendErrorHeader(dst []byte, mask uint64, app, category, name string) []byte {
	dst = binary.AppendUvarint(dst, mask)
	for _, s := range [...]string{app, category, name} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// decodeErrorValue splits an x value into its header and the record.
func decodeErrorValue(v []byte) (h errorHeader, record []byte, err error) {
	mask, n := binary.Uvarint(v)
	if n <= 0 {
		return h, nil, errBadValue
	}
	h.mask = mask
	v = v[n:]
	for _, dst := range [...]*[]byte{&h.app, &h.category, &h.name} {
		l, n := binary.Uvarint(v)
		if n <= 0 || l > uint64(len(v)-n) {
			return h, nil, errBadValue
		}
		v = v[n:]
		*dst = v[:l:l]
		v = v[l:]
	}
	return h, v, nil
}

// eventHashLen is the length of the hash of the raw event kept in a dedupe
// value, to tell a true retry from a reuse of the id for a different event.
const eventHashLen = 16

// appendDedupeValue appends seq and the first 16 bytes of SHA-256(raw).
func appendDedupeValue(dst []byte, seq uint64, raw []byte) []byte {
	sum := eventHash(raw)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return append(dst, sum[:]...)
}

// eventHash is the hash of a raw event kept in its dedupe value.
func eventHash(raw []byte) (h [eventHashLen]byte) {
	sum := sha256.Sum256(raw)
	copy(h[:], sum[:eventHashLen])
	return h
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
	// metaRevalidated is the ID of the last revalidation request run.
	metaRevalidated = "revalidated"
	// metaPurged is the first seq whose keys retention has not deleted yet.
	metaPurged = "purged"
)

// layoutVersion is the key and value layout this package writes. Open
// rebuilds a database of an older layout from the log (the index holds
// nothing the log and the replicated state cannot give again) and refuses
// one of a newer layout.
//
//	1: first layout
//	2: x header carries category and name; r keyspace; duplicate_id_conflict
//	3: bodies in the session keyspace (no e keyspace); pointers carry the session
//	4: bodies in the session and the category keyspaces; n and t point into c
//	5: f keyspace (a session's failed events), z (erasure progress), m purged
//	6: u keyspace (counts of valid events by interval, bucket and type)
const layoutVersion = 6

// revalidationResult is the value of r/<id>: what a revalidation did so
// far, whether it is done, and where its next chunk starts.
//
//	checked, accepted, failing (3 x uint64) [status byte, resume key]
//
// A value of 24 bytes (layout 2's) is a finished request.
type revalidationResult struct {
	Checked, Accepted, Failing uint64
	Done                       bool
	Resume                     []byte // the error key the next chunk starts at; nil when done
}

const (
	revalRunning byte = 1
	revalDone    byte = 2
)

func appendRevalidationResult(dst []byte, r revalidationResult) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.Checked)
	dst = binary.BigEndian.AppendUint64(dst, r.Accepted)
	dst = binary.BigEndian.AppendUint64(dst, r.Failing)
	if r.Done {
		return append(dst, revalDone)
	}
	return append(append(dst, revalRunning), r.Resume...)
}

func decodeRevalidationResult(v []byte) (revalidationResult, error) {
	if len(v) < 24 {
		return revalidationResult{}, errBadValue
	}
	r := revalidationResult{Checked: binary.BigEndian.Uint64(v), Accepted: binary.BigEndian.Uint64(v[8:]), Failing: binary.BigEndian.Uint64(v[16:])}
	switch {
	case len(v) == 24, len(v) == 25 && v[24] == revalDone:
		r.Done = true
	case v[24] == revalRunning && len(v) > 25 && v[25] == ksError:
		r.Resume = v[25:len(v):len(v)]
	default:
		return revalidationResult{}, errBadValue
	}
	return r, nil
}
