package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theeye/theeye/raftnode"
)

// TestBackup: eyectl backup writes a backup that verifies whole, says
// where it stands, refuses to replace a file without --force, and leaves
// nothing behind when the key may not or the download does not verify.
func TestBackup(t *testing.T) {
	_, ingest := createApp(t)
	eyectl(t, ingest, strings.Join(examples("backup-s1"), "\n"), "send", "-", "-o", "json").require(t, 0)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.backup")
	r := eyectl(t, adminKey, "", "backup", file, "-o", "json").require(t, 0)
	var sum backupSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", r.stdout, err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := raftnode.VerifyBackup(f)
	if err != nil {
		t.Fatalf("the file eyectl wrote: %v", err)
	}
	if sum.Bytes != info.Size || sum.RaftIndex != info.RaftIndex || sum.LastSeq != info.LastSeq || info.LastSeq < 3 {
		t.Fatalf("summary %+v, file %+v", sum, info.BackupHeader)
	}

	r = eyectl(t, adminKey, "", "backup", file).require(t, exitUsage)
	if !strings.Contains(r.stderr, "--force") {
		t.Errorf("backup over an existing file: %q", r.stderr)
	}
	eyectl(t, adminKey, "", "backup", file, "--force").require(t, 0)
	eyectl(t, ingest, "", "backup", filepath.Join(dir, "refused.backup")).require(t, exitRefused)

	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(good)
	damaged[len(damaged)/2] ^= 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(damaged) }))
	defer srv.Close()
	r = eyectl(t, adminKey, "", "backup", filepath.Join(dir, "damaged.backup"), "--server", srv.URL).require(t, exitUnreachable)
	if !strings.Contains(r.stderr, "does not verify") {
		t.Errorf("a damaged download: %q", r.stderr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "b.backup" {
		t.Fatalf("left in the dir: %v", entries)
	}
}
