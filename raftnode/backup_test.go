package raftnode

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
)

// testLog returns a log in a temporary dir whose first seq is first,
// holding frames frames of two events each, from Raft index 10 on.
func testLog(tb testing.TB, first uint64, frames int) *log.Log {
	tb.Helper()
	l, err := log.Open(filepath.Join(tb.TempDir(), "log"), log.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	if first > 1 {
		if err := l.Reset(first); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range frames {
		var payload []byte
		for j := range 2 {
			payload = log.AppendEnvelope(payload, &theeye.Envelope{ReceivedAt: int64(i*2 + j), App: "web", Raw: []byte(`{"k":` + strconv.Itoa(i*2+j) + `}`)})
		}
		if _, err := l.Append(log.Frame{RaftIndex: uint64(10 + i), Count: 2, Codec: log.CodecNone, Payload: payload}); err != nil {
			tb.Fatal(err)
		}
	}
	return l
}

// testState is a replicated state with an app, its key and a node.
func testState(index uint64) *State {
	st := newState()
	st.Index, st.Seeded = index, true
	st.Apps["web"] = theeye.App{ID: "web", Name: "web"}
	st.Keys["k1"] = theeye.Key{ID: "k1", App: "web", Scopes: []theeye.Scope{theeye.ScopeIngest}, Hash: theeye.HashSecret("s3cret")}
	st.Nodes["n1"] = NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:1", HTTPAddr: "http://127.0.0.1:2"}
	return st
}

// backupOf returns the backup a node holding l and st would stream from a
// snapshot at Raft index index, term term: the snapshot is stored and
// opened through snapshotStore as Raft opens it.
func backupOf(tb testing.TB, l *log.Log, st *State, index, term uint64) []byte {
	tb.Helper()
	fss, err := raft.NewFileSnapshotStoreWithLogger(tb.TempDir(), 1, newHCLog(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: "n1", Address: "127.0.0.1:1"}}}
	sink, err := fss.Create(raft.SnapshotVersionMax, index, term, conf, index, trans)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.NewEncoder(sink).Encode(&snapshotMeta{LastSeq: l.LastSeq(), LastRaftIndex: l.LastRaftIndex(), State: st}); err != nil {
		tb.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		tb.Fatal(err)
	}
	meta, rc, err := (&snapshotStore{FileSnapshotStore: fss, log: l}).Open(sink.ID())
	if err != nil {
		tb.Fatal(err)
	}
	b, err := openBackup(meta, rc)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	var buf bytes.Buffer
	if n, err := b.WriteTo(&buf); err != nil || n != b.Size || int64(buf.Len()) != b.Size {
		tb.Fatalf("WriteTo: %d bytes, %v; Size says %d", n, err, b.Size)
	}
	return buf.Bytes()
}

// TestBackupFormat: a backup is its header, the snapshot stream and the
// trailer, and the reader finds in it what went in.
func TestBackupFormat(t *testing.T) {
	l := testLog(t, 1, 3)
	file := backupOf(t, l, testState(12), 20, 4)
	info, err := VerifyBackup(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if string(file[:8]) != "THEEYEBK" || string(file[len(file)-BackupTrailerSize:][:8]) != "THEEYEND" {
		t.Fatalf("magics: %q ... %q", file[:8], file[len(file)-BackupTrailerSize:][:8])
	}
	if info.Version != 1 || info.RaftIndex != 20 || info.RaftTerm != 4 || info.FirstSeq != 1 || info.LastSeq != 6 ||
		info.LastRaftIndex != 12 || info.Frames != 3 || info.Size != int64(len(file)) || info.State.Apps["web"].Name != "web" {
		t.Fatalf("info %+v", info)
	}
	if time.Since(info.TakenAt) > time.Minute {
		t.Fatalf("taken at %s", info.TakenAt)
	}
	if bytes.Contains(file, []byte("s3cret")) {
		t.Fatal("the backup holds a key's secret")
	}
}

// TestBackupIsChecked: a truncated file, a flipped byte in each part, and
// bytes added are refused, each with the part at fault and why.
func TestBackupIsChecked(t *testing.T) {
	l := testLog(t, 1, 3)
	file := backupOf(t, l, testState(12), 20, 4)
	metaEnd := BackupHeaderSize + bytes.IndexByte(file[BackupHeaderSize:], '\n') + 1
	flip := func(at int) []byte {
		b := bytes.Clone(file)
		b[at] ^= 0x20
		return b
	}
	cases := []struct {
		name, part, says string
		file             []byte
		is               error
	}{
		{"empty", "header", "truncated", nil, nil},
		{"cut in the header", "header", "truncated", file[:40], nil},
		{"cut in the meta line", "body", "truncated", file[:metaEnd-5], nil},
		{"cut in the frames", "body", "truncated", file[:metaEnd+50], nil},
		{"cut in the trailer", "body", "truncated", file[:len(file)-10], nil},
		{"no trailer", "body", "truncated", file[:len(file)-BackupTrailerSize], nil},
		{"magic", "header", "not a backup", flip(1), nil},
		{"header field", "header", "header (the first 64 bytes) is damaged", flip(20), nil},
		{"state", "trailer", "SHA-256", flip(bytes.Index(file, []byte(`"web"`)) + 2), nil},
		{"meta line", "body", "not the JSON", flip(BackupHeaderSize), nil},
		{"frame payload", "body", "a frame is damaged", flip(metaEnd + log.HeaderSize + 3), log.ErrChecksum},
		{"frame header", "body", "a frame is damaged", flip(metaEnd + 10), log.ErrChecksum},
		{"trailer checksum", "trailer", "trailer (the last 56 bytes) is damaged", flip(len(file) - 30), nil},
		{"trailer magic", "trailer", "the file is damaged", flip(len(file) - BackupTrailerSize), nil},
		{"bytes added", "body", "bytes follow", append(bytes.Clone(file), make([]byte, 100)...), nil},
	}
	for _, tc := range cases {
		_, err := VerifyBackup(bytes.NewReader(tc.file))
		var be *BackupError
		if !errors.Is(err, ErrBadBackup) || !errors.As(err, &be) || be.Part != tc.part || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want a refusal of the %s saying %q", tc.name, err, tc.part, tc.says)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.is)
		}
	}
}
