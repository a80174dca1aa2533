package logstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// The record encoding: decode inverts encode, and a truncated, corrupt or
// non-canonical record is an error, in memory and from disk.

func TestLogStoreDecodeCorrupt(t *testing.T) {
	l := &raft.Log{Index: 300, Term: 7, Type: raft.LogCommand, Data: []byte("payload"),
		Extensions: []byte("ext"), AppendedAt: time.Unix(1_700_000_000, 999_999_999)}
	enc := make([]byte, encodedLogLen(l))
	encodeLog(enc, l)

	var got raft.Log
	if err := decodeLog(enc, &got); err != nil || !logsEqual(&got, l) {
		t.Fatalf("decode(encode) = %+v, %v", got, err)
	}
	// Every strict prefix is an error wrapping errCorruptLog.
	for n := range len(enc) {
		if err := decodeLog(enc[:n], &got); !errors.Is(err, errCorruptLog) {
			t.Fatalf("decode of %d/%d bytes: %v", n, len(enc), err)
		}
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(enc)) }
	bad := map[string][]byte{
		"version":         mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"flags":           mutate(func(b []byte) []byte { b[1] |= 0x80; return b }),
		"trailing":        mutate(func(b []byte) []byte { return append(b, 0) }),
		"data too long":   append([]byte{logEncodingV1, logFlagData, 1, 1, 0}, binary.AppendUvarint(nil, math.MaxUint64)...),
		"nsec too large":  append([]byte{logEncodingV1, logFlagAppendedAt, 1, 1, 0, 0}, binary.AppendUvarint(nil, 1e9)...),
		"bytes for nil":   {logEncodingV1, 0, 1, 1, 0, 1, 'x', 0},
		"varint overflow": {logEncodingV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"non-minimal":     {logEncodingV1, 0, 0x81, 0x00, 1, 0, 0, 0},
	}
	for name, b := range bad {
		if err := decodeLog(b, &got); !errors.Is(err, errCorruptLog) {
			t.Errorf("%s: decode = %v, want errCorruptLog", name, err)
		}
	}

	// Corruption on disk surfaces as a wrapped error from GetLog, and a
	// record whose index disagrees with its key is caught.
	s := openTestStore(t, t.TempDir())
	var kb [logKeyLen]byte
	if err := s.db.Set(putLogKey(kb[:], 5), []byte{9, 9, 9}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(putLogKey(kb[:], 6), enc, pebble.Sync); err != nil { // holds index 300
		t.Fatal(err)
	}
	for _, i := range []uint64{5, 6} {
		err := s.GetLog(i, &got)
		if !errors.Is(err, errCorruptLog) || !strings.Contains(err.Error(), fmt.Sprint("get log ", i)) {
			t.Errorf("GetLog(%d) of a corrupt record: %v", i, err)
		}
	}
}

func FuzzLogStoreDecode(f *testing.F) {
	for _, l := range []*raft.Log{
		{Index: 1},
		{Index: 1 << 40, Term: 3, Type: raft.LogBarrier, Data: []byte("abc"), Extensions: []byte{}, AppendedAt: time.Unix(-5, 7)},
	} {
		enc := make([]byte, encodedLogLen(l))
		encodeLog(enc, l)
		f.Add(enc)
	}
	f.Add([]byte("\x01\x000\xe5\x000\x00\x00")) // non-minimal varint
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			if !errors.Is(err, errCorruptLog) {
				t.Fatalf("decode error does not wrap errCorruptLog: %v", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		enc := make([]byte, encodedLogLen(&l))
		encodeLog(enc, &l)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, enc)
		}
	})
}
