package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// backupFrom downloads GET /v1/backup from p into a file and returns its
// path and the last seq the answer's headers announce.
func backupFrom(t *testing.T, p *proc) (string, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /v1/backup: %d %s", resp.StatusCode, b)
	}
	file := filepath.Join(t.TempDir(), "theeye.backup")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, resp.Body)
	if err != nil || n != resp.ContentLength {
		t.Fatalf("GET /v1/backup: %d bytes of %d: %v", n, resp.ContentLength, err)
	}
	last, err := strconv.ParseUint(resp.Header.Get("X-Eye-Backup-Last-Seq"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return file, last
}

// exportLines returns the NDJSON lines of a query (as admin), by seq, up
// to seq upTo.
func (p *proc) exportLines(path string, upTo uint64) map[uint64]string {
	p.t.Helper()
	st, b, _ := do(p.t, "GET", p.URL+path, testAdminKey, "", nil, "Accept", "application/x-ndjson")
	if st != 200 {
		p.t.Fatalf("GET %s (ndjson): %d %s", path, st, b)
	}
	out := map[uint64]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct{ Seq uint64 }
		mustJSON(p.t, sc.Bytes(), &e)
		if e.Seq <= upTo {
			out[e.Seq] = sc.Text()
		}
	}
	return out
}

// sameLines fails the test unless a and b hold the same lines.
func sameLines(t *testing.T, what string, a, b map[uint64]string) {
	t.Helper()
	for seq, line := range a {
		if b[seq] != line {
			t.Fatalf("%s at seq %d: the source has\n%s\nthe restored node\n%s", what, seq, line, b[seq])
		}
	}
	if len(a) != len(b) {
		t.Fatalf("%s: the source has %d, the restored node %d", what, len(a), len(b))
	}
}

// rulesOnSource gives the cluster what a backup must carry besides
// events: a read key, a schema with two versions, an event that failed the
// first and passes the second, a revalidation that accepted it, a config
// change, an event from the future (an error).
func rulesOnSource(t *testing.T, p *proc, key string) revalidateResp {
	p.call("POST", "/v1/keys", testAdminKey, "application/json", []byte(`{"name":"analysts","scopes":["read"]}`), 201, &struct{}{})
	p.putSchema("form interaction", "submit", formSchemaV1)
	p.post(key, "application/json", []byte(formSubmit("", "12")))
	p.putSchema("form interaction", "submit", `{"type":"object","required":["form"]}`)
	var cfg map[string]any
	p.call("PUT", "/v1/config", testAdminKey, "application/json", []byte(`{"max_clock_skew":"10m"}`), 200, &cfg)
	p.post(key, "application/json", []byte(`{"session_id":"f","category":"page interaction","name":"pageview","data":{},"timestamp":"2099-01-01T00:00:00Z"}`))
	return p.revalidate(`{"reason":"schema_violation"}`)
}

// TestBackupRestoreUnderLoad: a backup taken through a follower while
// writers post to every node, restored into a new dir and started, holds
// every event up to the backup's last seq under the same seq with the
// same bytes, answers errors, apps, keys, schemas, config and the
// revalidation the same, takes the source's admin key, takes new writes
// after the backup's last seq, and a new node joins it.
func TestBackupRestoreUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	key := c.nodes[0].createApp("web")
	rv := rulesOnSource(t, c.nodes[0], key)
	l := c.startLoad(key, 4, 20)
	l.waitAcks(20)
	lead := c.leader()
	follower := c.nodes[(slices.Index(c.nodes, lead)+1)%3]
	file, last := backupFrom(t, follower)
	l.waitAcks(10) // writes go on after the backup
	l.finish()
	if last == 0 || last >= l.maxSeq {
		t.Fatalf("the backup ends at seq %d, the load at %d", last, l.maxSeq)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	raftPort := freePort(t)
	out, code := runTheeye(t, "restore", "--from", file, "--data-dir", dir, "--node-id", "r1", "--raft", fmt.Sprintf("127.0.0.1:%d", raftPort))
	t.Logf("theeye restore:\n%s", out)
	for _, want := range []string{"a new one-node cluster", fmt.Sprintf("seqs 1 to %d", last), fmt.Sprintf("raft address:  127.0.0.1:%d", raftPort),
		"cluster key:   a new one, in " + filepath.Join(dir, "cluster.key"), "the source cluster's", "--node-id r1"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("theeye restore: exit %d, output lacks %q", code, want)
		}
	}
	r := newProc(t, dir, "--node-id", "r1")
	r.AdminKey, r.RaftPort = "", raftPort // the source's admin key must work without being given
	t.Cleanup(r.kill9)
	r.start()
	if strings.Contains(r.Out.String(), "Generated admin key") {
		t.Fatalf("the restored node generated an admin key:\n%s", r.Out.String())
	}

	wait := fmt.Sprintf("min_seq=%d&wait=60s", last)
	sameLines(t, "events", follower.exportLines("/v1/events?"+wait, last), r.exportLines("/v1/events?"+wait, last))
	revalidation := func(p *proc) func() error {
		return func() error {
			var got revalidateResp
			p.call("GET", fmt.Sprintf("/v1/errors/revalidate/%d", rv.ID), testAdminKey, "", nil, 200, &got)
			if got.Status != "done" {
				return fmt.Errorf("%+v", got)
			}
			rv = got
			return nil
		}
	}
	waitFor(t, 60*time.Second, "the revalidation on the source", revalidation(follower))
	want := rv
	waitFor(t, 60*time.Second, "the revalidation on the restored node", revalidation(r))
	if rv != want || rv.Accepted != 1 {
		t.Fatalf("revalidation %d on the restored node: %+v; on the source %+v", rv.ID, rv, want)
	}
	sameLines(t, "errors", follower.exportLines("/v1/errors?"+wait, last), r.exportLines("/v1/errors?"+wait, last))
	for _, path := range []string{"/v1/apps", "/v1/keys", "/v1/schemas", "/v1/schemas?category=form+interaction&name=submit", "/v1/config"} {
		_, want, _ := do(t, "GET", follower.URL+path, testAdminKey, "", nil)
		if st, got, _ := do(t, "GET", r.URL+path, testAdminKey, "", nil); st != 200 || !bytes.Equal(got, want) {
			t.Fatalf("GET %s: %d\n%s\nthe source answers\n%s", path, st, got, want)
		}
	}

	if a := r.post(key, "application/json", []byte(exPageview)); a.Seq != last+1 {
		t.Fatalf("the first write to the restored node got seq %d, want %d", a.Seq, last+1)
	}
	ck, err := os.ReadFile(filepath.Join(dir, "cluster.key"))
	if err != nil {
		t.Fatal(err)
	}
	j := newProc(t, t.TempDir(), "--node-id", "r2", "--cluster-key", strings.TrimSpace(string(ck)), "--join", r.URL)
	t.Cleanup(j.kill9)
	j.start()
	rc := &testCluster{t: t, nodes: []*proc{r, j}}
	rc.waitMembers(2)
	all := fmt.Sprintf("min_seq=%d&wait=60s", last+1)
	sameLines(t, "events on the node that joined", r.exportLines("/v1/events?"+all, last+1), j.exportLines("/v1/events?"+all, last+1))
	t.Logf("backup of %d events restored; %d acknowledged by the load in all", last, len(l.acked))
}

// TestRestoreRefusesBadBackups: a truncated backup, and one with a byte
// flipped in its header, in a frame or in its trailer, are refused by
// theeye restore with the part at fault and why, and leave no data dir
// (nor a temporary one) behind; so is a data dir that is not empty.
func TestRestoreRefusesBadBackups(t *testing.T) {
	p := startNode(t, t.TempDir())
	key := p.createApp("web")
	for range 3 {
		p.post(key, "application/json", []byte("["+exPageview+","+exCTA+"]"))
	}
	file, _ := backupFrom(t, p)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	frame := bytes.IndexByte(good[64:], '\n') + 64 + 1 + 40 // in the first frame's payload
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x10
		return b
	}
	cases := []struct {
		name, says string
		file       []byte
	}{
		{"truncated in the header", "the header", good[:30]},
		{"truncated in the body", "truncated", good[:len(good)/2]},
		{"truncated by a byte", "truncated", good[:len(good)-1]},
		{"a flipped byte in the header", "the header: its CRC-32C", flip(24)},
		{"a flipped byte in a frame", "a frame is damaged", flip(frame)},
		{"a flipped byte in the trailer", "the trailer", flip(len(good) - 20)},
	}
	parent := t.TempDir()
	for _, tc := range cases {
		bad := filepath.Join(t.TempDir(), "bad.backup")
		if err := os.WriteFile(bad, tc.file, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, "restored")
		out, code := runTheeye(t, "restore", "--from", bad, "--data-dir", dir)
		if code == 0 || !strings.Contains(out, "restore refused: ") || !strings.Contains(out, "not a valid backup") || !strings.Contains(out, tc.says) {
			t.Errorf("%s: exit %d, want a refusal saying %q:\n%s", tc.name, code, tc.says, out)
		}
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Fatalf("%s: left behind %v", tc.name, left)
		}
	}

	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if out, code := runTheeye(t, "restore", "--from", file, "--data-dir", full); code == 0 || !strings.Contains(out, "is not empty") {
		t.Fatalf("restore into a dir that is not empty: exit %d:\n%s", code, out)
	}
	empty := t.TempDir()
	if out, code := runTheeye(t, "restore", "--from", file, "--data-dir", empty); code != 0 {
		t.Fatalf("restore into an empty dir: exit %d:\n%s", code, out)
	}
}
