package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
)

// The on-disk encoding: the keys of the log and stable keyspaces, and the
// value of a log key (a raft.Log). Changing any of it changes what an
// existing store reads back.

const (
	// Key prefixes. Every log key is logKeyPrefix followed by the big-endian
	// Raft index, so Pebble orders log keys by index.
	logKeyPrefix    byte = 'l'
	stableKeyPrefix byte = 's'
	logKeyLen            = 1 + 8

	// logEncodingV1 is the leading byte of every encoded raft.Log value.
	logEncodingV1 byte = 1

	// Flags of the v1 encoding.
	logFlagAppendedAt byte = 1 << 0 // AppendedAt is not the zero time
	logFlagData       byte = 1 << 1 // Data is non-nil
	logFlagExtensions byte = 1 << 2 // Extensions is non-nil
	logFlagsKnown          = logFlagAppendedAt | logFlagData | logFlagExtensions
)

// Keys.

func putLogKey(dst []byte, index uint64) []byte {
	dst = dst[:logKeyLen]
	dst[0] = logKeyPrefix
	binary.BigEndian.PutUint64(dst[1:], index)
	return dst
}

// logRangeEnd returns the exclusive end key of the log range ending at max
// (inclusive): the key of max+1, or the first key after the log keyspace.
func logRangeEnd(dst []byte, maxIdx uint64) []byte {
	if maxIdx == math.MaxUint64 {
		dst = dst[:1]
		dst[0] = logKeyPrefix + 1
		return dst
	}
	return putLogKey(dst, maxIdx+1)
}

func parseLogKey(k []byte) (uint64, error) {
	if len(k) != logKeyLen || k[0] != logKeyPrefix {
		return 0, fmt.Errorf("malformed log key %x: %w", k, errCorruptLog)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

func stableKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = stableKeyPrefix
	copy(k[1:], key)
	return k
}

// errCorruptLog is wrapped by every decoding error.
var errCorruptLog = errors.New("corrupt log store record")

// Encoding v1 of a raft.Log:
//
//	byte     version (1)
//	byte     flags (logFlag*)
//	uvarint  Index
//	uvarint  Term
//	byte     Type
//	varint   AppendedAt seconds since the Unix epoch  } only with
//	uvarint  AppendedAt nanoseconds (< 1e9)           } logFlagAppendedAt
//	uvarint  len(Data), Data
//	uvarint  len(Extensions), Extensions
//
// The flags keep nil and empty slices and the zero AppendedAt apart, so a
// round trip returns what was stored (AppendedAt comes back in time.Local,
// without a monotonic reading).
func encodedLogLen(l *raft.Log) int {
	n := 2 + theeye.UvarintLen(l.Index) + theeye.UvarintLen(l.Term) + 1
	if !l.AppendedAt.IsZero() {
		n += theeye.VarintLen(l.AppendedAt.Unix()) + theeye.UvarintLen(uint64(l.AppendedAt.Nanosecond()))
	}
	n += theeye.UvarintLen(uint64(len(l.Data))) + len(l.Data)
	n += theeye.UvarintLen(uint64(len(l.Extensions))) + len(l.Extensions)
	return n
}

// encodeLog writes l into dst, which must be exactly encodedLogLen(l) long.
func encodeLog(dst []byte, l *raft.Log) {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= logFlagAppendedAt
	}
	if l.Data != nil {
		flags |= logFlagData
	}
	if l.Extensions != nil {
		flags |= logFlagExtensions
	}
	dst[0] = logEncodingV1
	dst[1] = flags
	n := 2
	n += binary.PutUvarint(dst[n:], l.Index)
	n += binary.PutUvarint(dst[n:], l.Term)
	dst[n] = byte(l.Type)
	n++
	if flags&logFlagAppendedAt != 0 {
		n += binary.PutVarint(dst[n:], l.AppendedAt.Unix())
		n += binary.PutUvarint(dst[n:], uint64(l.AppendedAt.Nanosecond()))
	}
	n += binary.PutUvarint(dst[n:], uint64(len(l.Data)))
	n += copy(dst[n:], l.Data)
	n += binary.PutUvarint(dst[n:], uint64(len(l.Extensions)))
	copy(dst[n:], l.Extensions)
}

// decodeLog decodes src into l. Data and Extensions are copied (into one
// allocation), so src may be reused afterwards. Errors wrap errCorruptLog.
// Only the canonical encoding is accepted (minimal varints, no trailing
// bytes), so decode and encode are inverse.
func decodeLog(src []byte, l *raft.Log) error {
	d := logDecoder{buf: src}
	version := d.byte("version")
	if d.err == nil && version != logEncodingV1 {
		return fmt.Errorf("unknown log encoding version %d: %w", version, errCorruptLog)
	}
	flags := d.byte("flags")
	if d.err == nil && flags&^logFlagsKnown != 0 {
		return fmt.Errorf("unknown log flags %#x: %w", flags, errCorruptLog)
	}
	index := d.uvarint("index")
	term := d.uvarint("term")
	typ := d.byte("type")
	var appendedAt time.Time
	if flags&logFlagAppendedAt != 0 {
		sec := d.varint("appended_at seconds")
		nsec := d.uvarint("appended_at nanoseconds")
		if d.err == nil && nsec >= 1e9 {
			return fmt.Errorf("appended_at nanoseconds %d out of range: %w", nsec, errCorruptLog)
		}
		appendedAt = time.Unix(sec, int64(nsec))
	}
	data := d.bytes("data")
	ext := d.bytes("extensions")
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%d trailing bytes: %w", len(d.buf), errCorruptLog)
	}

	l.Index, l.Term, l.Type, l.AppendedAt = index, term, raft.LogType(typ), appendedAt
	l.Data, l.Extensions = nil, nil
	hasData, hasExt := flags&logFlagData != 0, flags&logFlagExtensions != 0
	if !hasData && len(data) > 0 || !hasExt && len(ext) > 0 {
		return fmt.Errorf("bytes for a nil field: %w", errCorruptLog)
	}
	if hasData || hasExt {
		buf := make([]byte, len(data)+len(ext))
		copy(buf, data)
		copy(buf[len(data):], ext)
		if hasData {
			l.Data = buf[:len(data):len(data)]
		}
		if hasExt {
			l.Extensions = buf[len(data):]
		}
	}
	return nil
}

// logDecoder reads fields from buf; the first failure sticks in err and
// later reads return zero values.
type logDecoder struct {
	buf []byte
	err error
}

func (d *logDecoder) fail(field string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or malformed %s: %w", field, errCorruptLog)
	}
	d.buf = nil
}

func (d *logDecoder) byte(field string) byte {
	if d.err != nil || len(d.buf) < 1 {
		d.fail(field)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *logDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || n != theeye.UvarintLen(v) { // truncated, overflowing or not minimal
		d.fail(field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *logDecoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 || n != theeye.VarintLen(v) {
		d.fail(field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *logDecoder) bytes(field string) []byte {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail(field)
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}
