package index

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// fakeSource is an in-memory Source: seq i+1 is envs[i]. It scribbles over
// each envelope's bytes after fn returns, so an indexer that keeps env past
// fn fails the tests.
type fakeSource struct {
	mu      sync.Mutex
	envs    []theeye.Envelope
	changed chan struct{}
	reads   int // ReadFrom calls
}

func newFakeSource() *fakeSource { return &fakeSource{changed: make(chan struct{})} }

// Append adds envelopes and returns the last seq.
func (s *fakeSource) Append(envs ...theeye.Envelope) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs = append(s.envs, envs...)
	close(s.changed)
	s.changed = make(chan struct{})
	return uint64(len(s.envs))
}

// Truncate drops every event after seq last, as a log that lost an
// unsynced tail does.
func (s *fakeSource) Truncate(last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs = s.envs[:last]
}

func (s *fakeSource) FirstSeq() uint64 { return 1 }

func (s *fakeSource) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.envs))
}

func (s *fakeSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *fakeSource) ReadFrom(from uint64, max int, fn func(uint64, *theeye.Envelope) error) (int, error) {
	s.mu.Lock()
	s.reads++
	var window []theeye.Envelope
	if from >= 1 && from <= uint64(len(s.envs)) {
		end := min(from-1+uint64(max), uint64(len(s.envs)))
		window = s.envs[from-1 : end]
	}
	s.mu.Unlock()
	var scratch []byte
	for i := range window {
		env := window[i]
		scratch = append(scratch[:0], env.Raw...)
		env.Raw = scratch
		err := fn(from+uint64(i), &env)
		for j := range scratch {
			scratch[j] = 0xFF
		}
		if err != nil {
			return i, err
		}
	}
	return len(window), nil
}

// baseTime is the received_at of the test events: far from the wall clock,
// so that nothing can depend on it.
var baseTime = time.Date(2021, 1, 1, 9, 0, 0, 0, time.UTC)

// mkEnv builds an envelope with a deterministic server id.
func mkEnv(app string, receivedAt time.Time, raw string) theeye.Envelope {
	var id theeye.EventID
	binary.BigEndian.PutUint64(id[8:], uint64(receivedAt.UnixNano()))
	copy(id[:6], app)
	return theeye.Envelope{ReceivedAt: receivedAt.UnixNano(), App: app, ID: id, Raw: []byte(raw)}
}

// evt is an event as a client sends it.
type evt struct {
	ID        string
	Session   string
	Category  string
	Name      string
	Timestamp time.Time
	Data      string // JSON object; "" means {"k":1}
	Extra     string // appended verbatim after the fields, e.g. `,"ua":"x"`
}

func (e evt) raw() string {
	data := e.Data
	if data == "" {
		data = `{"k":1}`
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	id := ""
	if e.ID != "" {
		id = `"id":` + q(e.ID) + ","
	}
	return fmt.Sprintf(`{%s"session_id":%s,"category":%s,"name":%s,"data":%s,"timestamp":%s%s}`,
		id, q(e.Session), q(e.Category), q(e.Name), data, q(e.Timestamp.Format(time.RFC3339Nano)), e.Extra)
}

// openTest opens an index on dir (a new temp dir when "") over src, closed
// at cleanup.
func openTest(t testing.TB, dir string, src Source, edit ...func(*Config)) *Index {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := Config{Dir: dir, Source: src, CacheSize: 8 << 20}
	for _, e := range edit {
		e(&cfg)
	}
	ix, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := ix.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ix
}

func indexAll(t testing.TB, ix *Index) {
	t.Helper()
	if _, err := ix.IndexOnce(context.Background()); err != nil {
		t.Fatalf("IndexOnce: %v", err)
	}
}

// got is a returned event, decoded.
type got struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	App        string          `json:"app"`
	SessionID  string          `json:"session_id"`
	Category   string          `json:"category"`
	Name       string          `json:"name"`
	Data       json.RawMessage `json:"data"`
	Timestamp  time.Time       `json:"timestamp"`
	ReceivedAt time.Time       `json:"received_at"`
}

// events runs q to the end and returns the events and the next cursor.
func events(t testing.TB, ix *Index, q EventQuery) ([]got, string) {
	t.Helper()
	var out []got
	next, err := ix.Events(context.Background(), q, func(b []byte) error {
		var g got
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("event is not JSON: %v: %s", err, b)
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		t.Fatalf("Events(%+v): %v", q, err)
	}
	return out, next
}

func seqs(gs []got) []uint64 {
	out := make([]uint64, len(gs))
	for i, g := range gs {
		out[i] = g.Seq
	}
	return out
}

// errRecord is a returned error record, decoded.
type errRecord struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	ReceivedAt time.Time       `json:"received_at"`
	App        string          `json:"app"`
	Reasons    []theeye.Reason `json:"reasons"`
	Event      json.RawMessage `json:"event"`
}

func errorRecords(t testing.TB, ix *Index, q ErrorQuery) ([]errRecord, string) {
	t.Helper()
	var out []errRecord
	next, err := ix.Errors(context.Background(), q, func(b []byte) error {
		var r errRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("error record is not JSON: %v: %s", err, b)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Errors(%+v): %v", q, err)
	}
	return out, next
}
