package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// This file is the only place that knows the byte layout of keys (doc.go
// draws it). Every encoder appends to dst and returns the result, and has a
// decode twin that rejects anything the encoder cannot produce.

// Keyspace prefix bytes. Persisted: never change one.
const (
	// 'e' (seq -> rendered event) was layout 1 and 2's body keyspace; do
	// not reuse the byte.
	ksSession byte = 's' // s session ts seq -> app + rendered event
	ksCat     byte = 'c' // c category ts seq -> app + rendered event
	ksName    byte = 'n' // n category name ts seq -> app
	ksTime    byte = 't' // t ts seq -> app + category
	ksError   byte = 'x' // x received_at seq -> error header + record
	ksDedupe  byte = 'd' // d app id -> seq + hash
	ksMeta    byte = 'm' // m name -> value
	ksReval   byte = 'r' // r id -> revalidation result
	ksFailed  byte = 'f' // f session seq -> received_at: the failed events of a session (erasure finds them)
	ksErasure byte = 'z' // z id -> erasure progress
	ksRollup  byte = 'u' // u interval bucket category name -> count of valid events (rollup.go)
)

// String encoding: 0x00 is escaped as 0x00 0xFF and the string ends with
// 0x00 0x01, so encoded strings are prefix-free and sort like the strings.
const (
	strEscape     byte = 0x00
	strEscapedNul byte = 0xFF
	strTerminator byte = 0x01
)

// tsSeqLen is the length of the (timestamp, seq) suffix every time-ordered key
// ends with.
const tsSeqLen = 16

var (
	errShortKey  = errors.New("key too short")
	errBadString = errors.New("malformed string in key")
	errTrailing  = errors.New("trailing bytes in key")
	errKeyspace  = errors.New("wrong keyspace")
)

// appendUint64 appends v big-endian.
func appendUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// decodeUint64 reads a big-endian uint64 and returns the rest.
func decodeUint64(b []byte) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errShortKey
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// appendTimestamp appends signed Unix nanoseconds big-endian with the sign
// bit flipped, so negative times sort before positive ones.
func appendTimestamp(dst []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ns)^(1<<63))
}

// decodeTimestamp is the twin of appendTimestamp.
func decodeTimestamp(b []byte) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errShortKey
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8:], nil
}

// appendString appends s with 0x00 escaped as 0x00 0xFF, then 0x00 0x01.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == strEscape {
			dst = append(dst, strEscape, strEscapedNul)
			continue
		}
		dst = append(dst, s[i])
	}
	return append(dst, strEscape, strTerminator)
}

// decodeString is the twin of appendString.
func decodeString(b []byte) (string, []byte, error) {
	var out []byte
	start := 0
	for i := 0; i < len(b); i++ {
		if b[i] != strEscape {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errBadString
		}
		switch b[i+1] {
		case strTerminator:
			if out == nil {
				return string(b[start:i]), b[i+2:], nil
			}
			out = append(out, b[start:i]...)
			return string(out), b[i+2:], nil
		case strEscapedNul:
			out = append(out, b[start:i]...)
			out = append(out, 0)
			i++
			start = i + 1
		default:
			return "", nil, errBadString
		}
	}
	return "", nil, errBadString
}

// prefixSuccessor returns the smallest key greater than every key that has
// prefix p (nil when there is none: p is all 0xFF), for an exclusive
// IterOptions.UpperBound.
func prefixSuccessor(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xFF {
			s := append([]byte(nil), p[:i+1]...)
			s[i]++
			return s
		}
	}
	return nil
}

// appendTSSeq appends the (timestamp, seq) suffix.
func appendTSSeq(dst []byte, ns int64, seq uint64) []byte {
	return appendUint64(appendTimestamp(dst, ns), seq)
}

// decodeTSSeq reads the suffix, which must be all that is left.
func decodeTSSeq(b []byte) (ns int64, seq uint64, err error) {
	if len(b) != tsSeqLen {
		if len(b) < tsSeqLen {
			return 0, 0, errShortKey
		}
		return 0, 0, errTrailing
	}
	ns, b, _ = decodeTimestamp(b)
	seq, _, _ = decodeUint64(b)
	return ns, seq, nil
}

// seqOfKey returns the seq every time-ordered key ends with.
func seqOfKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

// sessionPrefix is s/<session>.
func appendSessionPrefix(dst []byte, session string) []byte {
	return appendString(append(dst, ksSession), session)
}

func appendSessionKey(dst []byte, session string, ns int64, seq uint64) []byte {
	return appendTSSeq(appendSessionPrefix(dst, session), ns, seq)
}

func decodeSessionKey(k []byte) (session string, ns int64, seq uint64, err error) {
	if len(k) == 0 || k[0] != ksSession {
		return "", 0, 0, errKeyspace
	}
	session, rest, err := decodeString(k[1:])
	if err != nil {
		return "", 0, 0, err
	}
	ns, seq, err = decodeTSSeq(rest)
	return session, ns, seq, err
}

// categoryPrefix is c/<category>.
func appendCategoryPrefix(dst []byte, category string) []byte {
	return appendString(append(dst, ksCat), category)
}

func appendCategoryKey(dst []byte, category string, ns int64, seq uint64) []byte {
	return appendTSSeq(appendCategoryPrefix(dst, category), ns, seq)
}

// appendBodyKey appends the c key that holds the body an n or t pointer
// names: the event's category (from the query for n, from the pointer's
// value for t), then the pointer key's own (ts, seq) suffix.
func appendBodyKey(dst, category, pointer []byte) []byte {
	dst = appendString(append(dst, ksCat), category)
	return append(dst, pointer[len(pointer)-tsSeqLen:]...)
}

func decodeCategoryKey(k []byte) (category string, ns int64, seq uint64, err error) {
	if len(k) == 0 || k[0] != ksCat {
		return "", 0, 0, errKeyspace
	}
	category, rest, err := decodeString(k[1:])
	if err != nil {
		return "", 0, 0, err
	}
	ns, seq, err = decodeTSSeq(rest)
	return category, ns, seq, err
}

// namePrefix is n/<category>/<name>.
func appendNamePrefix(dst []byte, category, name string) []byte {
	return appendString(appendString(append(dst, ksName), category), name)
}

func appendNameKey(dst []byte, category, name string, ns int64, seq uint64) []byte {
	return appendTSSeq(appendNamePrefix(dst, category, name), ns, seq)
}

func decodeNameKey(k []byte) (category, name string, ns int64, seq uint64, err error) {
	if len(k) == 0 || k[0] != ksName {
		return "", "", 0, 0, errKeyspace
	}
	category, rest, err := decodeString(k[1:])
	if err != nil {
		return "", "", 0, 0, err
	}
	name, rest, err = decodeString(rest)
	if err != nil {
		return "", "", 0, 0, err
	}
	ns, seq, err = decodeTSSeq(rest)
	return category, name, ns, seq, err
}

// timeKey is t/<ts>/<seq>.
func appendTimeKey(dst []byte, ns int64, seq uint64) []byte {
	return appendTSSeq(append(dst, ksTime), ns, seq)
}

func decodeTimeKey(k []byte) (ns int64, seq uint64, err error) {
	if len(k) == 0 || k[0] != ksTime {
		return 0, 0, errKeyspace
	}
	return decodeTSSeq(k[1:])
}

// errorKey is x/<received_at>/<seq>.
func appendErrorKey(dst []byte, receivedAt int64, seq uint64) []byte {
	return appendTSSeq(append(dst, ksError), receivedAt, seq)
}

func decodeErrorKey(k []byte) (receivedAt int64, seq uint64, err error) {
	if len(k) == 0 || k[0] != ksError {
		return 0, 0, errKeyspace
	}
	return decodeTSSeq(k[1:])
}

// dedupeKey is d/<app>/<id>.
func appendDedupeKey(dst []byte, app, id string) []byte {
	return appendString(appendString(append(dst, ksDedupe), app), id)
}

func decodeDedupeKey(k []byte) (app, id string, err error) {
	if len(k) == 0 || k[0] != ksDedupe {
		return "", "", errKeyspace
	}
	app, rest, err := decodeString(k[1:])
	if err != nil {
		return "", "", err
	}
	id, rest, err = decodeString(rest)
	if err != nil {
		return "", "", err
	}
	if len(rest) != 0 {
		return "", "", errTrailing
	}
	return app, id, nil
}

// appendFailedKey is f/<session>/<seq>: a failed event of a session,
// whose error record is x/<received_at>/<seq>.
func appendFailedKey(dst []byte, session string, seq uint64) []byte {
	dst = append(dst, ksFailed)
	dst = appendString(dst, session)
	return appendUint64(dst, seq)
}

// appendFailedPrefix is f/<session>/: every failed event of a session.
func appendFailedPrefix(dst []byte, session string) []byte {
	return appendString(append(dst, ksFailed), session)
}

// appendErasureKey is z/<id>.
func appendErasureKey(dst []byte, id uint64) []byte {
	return appendUint64(append(dst, ksErasure), id)
}

// revalidationKey is r/<id>.
func appendRevalidationKey(dst []byte, id uint64) []byte {
	return appendUint64(append(dst, ksReval), id)
}

// rollupKey is u/<interval>/<bucket start>/<category>/<name>: the bucket
// start in Unix seconds, encoded as a timestamp is (seconds, not
// nanoseconds, so the first day bucket of 1677 is representable).
func appendRollupKey(dst []byte, interval byte, start int64, category, name string) []byte {
	return appendString(appendString(appendRollupBucket(dst, interval, start), category), name)
}

// appendRollupBucket is u/<interval>/<bucket start>: the prefix of a
// bucket's keys, and the bound of a scan over buckets.
func appendRollupBucket(dst []byte, interval byte, start int64) []byte {
	return appendTimestamp(append(dst, ksRollup, interval), start)
}

// rollupBucketLen is the length of u/<interval>/<bucket start>.
const rollupBucketLen = 2 + 8

// decodeRollupKey splits a u key into its interval, its bucket start and
// the encoded (category, name) that follows, which it checks is
// well-formed and all that is left.
func decodeRollupKey(k []byte) (interval byte, start int64, typ []byte, err error) {
	if len(k) < rollupBucketLen || k[0] != ksRollup {
		if len(k) > 0 && k[0] != ksRollup {
			return 0, 0, nil, errKeyspace
		}
		return 0, 0, nil, errShortKey
	}
	start, typ, _ = decodeTimestamp(k[2:])
	rest, err := skipString(typ)
	if err == nil {
		rest, err = skipString(rest)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	if len(rest) != 0 {
		return 0, 0, nil, errTrailing
	}
	return k[1], start, typ, nil
}

// skipString checks the encoded string b starts with, as decodeString
// does but without building it, and returns what follows.
func skipString(b []byte) ([]byte, error) {
	for i := 0; i < len(b); i++ {
		if b[i] != strEscape {
			continue
		}
		if i+1 >= len(b) {
			return nil, errBadString
		}
		switch b[i+1] {
		case strTerminator:
			return b[i+2:], nil
		case strEscapedNul:
			i++
		default:
			return nil, errBadString
		}
	}
	return nil, errBadString
}

// decodeRollupType reads the (category, name) part of a u key.
func decodeRollupType(typ []byte) (category, name string, err error) {
	category, rest, err := decodeString(typ)
	if err != nil {
		return "", "", err
	}
	name, rest, err = decodeString(rest)
	if err == nil && len(rest) != 0 {
		err = errTrailing
	}
	return category, name, err
}

// metaKey is m/<name>.
func appendMetaKey(dst []byte, name string) []byte {
	return appendString(append(dst, ksMeta), name)
}

func decodeMetaKey(k []byte) (string, error) {
	if len(k) == 0 || k[0] != ksMeta {
		return "", errKeyspace
	}
	name, rest, err := decodeString(k[1:])
	if err != nil {
		return "", err
	}
	if len(rest) != 0 {
		return "", errTrailing
	}
	return name, nil
}

// validTimeKey checks that k is a well-formed key of the time-ordered
// keyspace ks (the keys a cursor may carry).
func validTimeKey(ks byte, k []byte) error {
	var err error
	switch ks {
	case ksSession:
		_, _, _, err = decodeSessionKey(k)
	case ksCat:
		_, _, _, err = decodeCategoryKey(k)
	case ksName:
		_, _, _, _, err = decodeNameKey(k)
	case ksTime:
		_, _, err = decodeTimeKey(k)
	case ksError:
		_, _, err = decodeErrorKey(k)
	default:
		err = fmt.Errorf("keyspace %q: %w", ks, errKeyspace)
	}
	return err
}

// timeRange turns a query's [from, to) into key bounds under prefix. Zero
// times are unbounded. empty reports a range that holds nothing.
func timeRange(prefix []byte, from, to time.Time) (lower, upper []byte, empty bool) {
	// Clamp to what int64 nanoseconds since the epoch hold.
	minKeyTime, maxKeyTime := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	lower = append([]byte(nil), prefix...)
	if !from.IsZero() {
		if from.After(maxKeyTime) {
			return nil, nil, true
		}
		if from.After(minKeyTime) {
			lower = appendTimestamp(lower, from.UnixNano())
		}
	}
	if to.IsZero() || to.After(maxKeyTime) {
		upper = prefixSuccessor(prefix)
	} else {
		if !to.After(minKeyTime) {
			return nil, nil, true
		}
		upper = appendTimestamp(append([]byte(nil), prefix...), to.UnixNano())
	}
	if upper != nil && string(lower) >= string(upper) {
		return nil, nil, true
	}
	return lower, upper, false
}
