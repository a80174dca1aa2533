package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/theeye/theeye"
)

var allCodecs = []Codec{CodecNone, CodecS2, CodecZstd}

// forEachCodec runs fn as a subtest once per codec.
func forEachCodec(t *testing.T, fn func(t *testing.T, codec Codec)) {
	t.Helper()
	for _, c := range allCodecs {
		t.Run("codec="+c.String(), func(t *testing.T) { fn(t, c) })
	}
}

// testEnvelope is the envelope the tests store at seq. Deriving it from seq
// lets any reader check any event without shared state.
func testEnvelope(seq uint64) theeye.Envelope {
	apps := [...]string{"shop", "blog", "admin"}
	var id theeye.EventID
	binary.BigEndian.PutUint64(id[:8], 0x0123456789abcdef)
	binary.BigEndian.PutUint64(id[8:], seq)
	raw := fmt.Appendf(nil,
		`{"session_id":"s-%04d","category":"page","name":"view","data":{"path":"/products/%d","n":%d},"timestamp":"2025-01-01T00:00:%02dZ"}`,
		seq%17, seq%101, seq, seq%60)
	return theeye.Envelope{
		ReceivedAt: 1_700_000_000_000_000_000 + int64(seq)*1000,
		App:        apps[(seq/5)%3],
		ID:         id,
		Raw:        raw,
	}
}

func equalEnvelope(a, b *theeye.Envelope) bool {
	return a.ReceivedAt == b.ReceivedAt && a.App == b.App && a.ID == b.ID && bytes.Equal(a.Raw, b.Raw)
}

// testWriter appends frames of testEnvelopes to a Log.
type testWriter struct {
	t     testing.TB
	l     *Log
	codec Codec
	comp  *Compressor
	raft  uint64
	raw   []byte
	frame Frame
}

func newTestWriter(t testing.TB, l *Log, codec Codec) *testWriter {
	t.Helper()
	comp, err := NewCompressor()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	return &testWriter{t: t, l: l, codec: codec, comp: comp, raft: l.LastRaftIndex()}
}

// build returns the frame holding count events starting at seq first, with
// the next Raft index (which skips a few, as config entries would).
func (w *testWriter) build(first uint64, count int) Frame {
	w.t.Helper()
	w.raw = w.raw[:0]
	for i := range count {
		e := testEnvelope(first + uint64(i))
		w.raw = AppendEnvelope(w.raw, &e)
	}
	payload, err := w.comp.Compress(w.codec, w.frame.Payload[:0], w.raw)
	if err != nil {
		w.t.Fatal(err)
	}
	w.raft += 1 + first%3
	w.frame = Frame{RaftIndex: w.raft, Count: uint32(count), Codec: w.codec, Payload: payload}
	return w.frame
}

// append appends one frame of count events and checks the seq it got.
func (w *testWriter) append(count int) uint64 {
	w.t.Helper()
	want := w.l.LastSeq() + 1
	first, err := w.l.Append(w.build(want, count))
	if err != nil {
		w.t.Fatalf("append %d events at seq %d: %v", count, want, err)
	}
	if first != want {
		w.t.Fatalf("append returned first seq %d, want %d", first, want)
	}
	return first
}

// appendFrames appends n frames of 1..maxCount events (a fixed pattern).
func (w *testWriter) appendFrames(n, maxCount int) {
	w.t.Helper()
	for i := range n {
		w.append(1 + (i*7)%maxCount)
	}
}

// checkRead reads [from, from+max) and checks every event against
// testEnvelope and that exactly the seqs in [from, from+max) ∩ [1, last]
// came back, in order.
func checkRead(t testing.TB, l *Log, from uint64, limit int, last uint64) {
	t.Helper()
	lo := max(from, 1)
	hi := from + uint64(limit) // exclusive
	if hi < from || hi > last+1 {
		hi = last + 1
	}
	if limit <= 0 {
		hi = lo
	}
	want := 0
	if hi > lo {
		want = int(hi - lo)
	}
	next := lo
	n, err := l.ReadFrom(from, limit, func(seq uint64, env *theeye.Envelope) error {
		if seq != next {
			return fmt.Errorf("got seq %d, want %d", seq, next)
		}
		next++
		if e := testEnvelope(seq); !equalEnvelope(env, &e) {
			return fmt.Errorf("seq %d: got %+v, want %+v", seq, env, e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadFrom(%d, %d): %v", from, limit, err)
	}
	if n != want {
		t.Fatalf("ReadFrom(%d, %d) saw %d events, want %d (last seq %d)", from, limit, n, want, last)
	}
}

func mustOpen(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// segmentFiles returns the segment file names in dir, sorted.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func fileExists(t testing.TB, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err == nil {
		return true
	}
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	t.Fatal(err)
	return false
}
