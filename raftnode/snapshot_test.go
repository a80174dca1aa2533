package raftnode

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
)

// streamOf returns the snapshot stream (frames only, no meta line) of a
// log holding frames events frames of two events each.
func streamOf(t *testing.T, frames int) (stream []byte, lastSeq uint64) {
	t.Helper()
	l, err := log.Open(filepath.Join(t.TempDir(), "log"), log.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range frames {
		var payload []byte
		for j := range 2 {
			payload = log.AppendEnvelope(payload, &theeye.Envelope{ReceivedAt: int64(i*2 + j), App: "a", Raw: []byte(`{"k":1}`)})
		}
		if _, err := l.Append(log.Frame{RaftIndex: uint64(i + 1), Count: 2, Codec: log.CodecNone, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := (&snapshotStore{log: l}).writeStream(&buf, nil, l.LastSeq()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), l.LastSeq()
}

// restoreInto restores stream into a fresh log and returns it.
func restoreInto(t *testing.T, stream []byte, lastSeq uint64) (*log.Log, error) {
	t.Helper()
	l, err := log.Open(filepath.Join(t.TempDir(), "log"), log.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := &Node{log: l, logger: slog.New(slog.DiscardHandler)}
	return l, n.restoreFrames(bytes.NewReader(stream), 1, lastSeq)
}

// TestSnapshotStreamIsChecked: the frames of a snapshot stream are log/'s
// own, CRC included; a flipped byte, a cut stream or a missing frame is
// refused, never restored with a gap.
func TestSnapshotStreamIsChecked(t *testing.T) {
	stream, last := streamOf(t, 5)
	l, err := restoreInto(t, stream, last)
	if err != nil || l.LastSeq() != last {
		t.Fatalf("restore: last seq %d, %v; want %d", l.LastSeq(), err, last)
	}

	flipped := bytes.Clone(stream)
	flipped[log.HeaderSize+3] ^= 0x40 // in the first frame's payload
	if _, err := restoreInto(t, flipped, last); !errors.Is(err, log.ErrChecksum) {
		t.Fatalf("a flipped payload byte: %v, want ErrChecksum", err)
	}
	if _, err := restoreInto(t, stream[:len(stream)-10], last); err == nil {
		t.Fatal("a cut stream was restored")
	}
	frame := len(stream) / 5 // every frame has the same size here
	skipped := append(bytes.Clone(stream[:frame]), stream[2*frame:]...)
	if _, err := restoreInto(t, skipped, last); !errors.Is(err, log.ErrCorrupt) {
		t.Fatalf("a stream missing its second frame: %v, want ErrCorrupt", err)
	}
	if _, err := restoreInto(t, stream, last+2); err == nil {
		t.Fatal("a stream that ends before the snapshot's last seq was restored")
	}
}
