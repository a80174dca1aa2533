package client_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
)

// observed is a writer that records what Backup told it first.
type observed struct {
	bytes.Buffer
	info    client.BackupInfo
	started int
}

func (o *observed) BackupStarted(info client.BackupInfo) { o.info, o.started = info, o.started+1 }

// TestBackup: a backup from a real node, its size and position told before
// its bytes, verified; then the same bytes served cut short, with a
// flipped byte, and without their length, each refused with ErrBadBackup
// (the last one only once the trailer does not verify).
func TestBackup(t *testing.T) {
	ctx := testCtx(t)
	admin := adminClient(t, shared)
	var w observed
	n, err := admin.Backup(ctx, &w)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(w.Len()) || w.started != 1 || w.info.Size != n || w.info.RaftIndex == 0 || w.info.FirstSeq != 1 {
		t.Fatalf("Backup: %d bytes written, %d held, told %+v (%d times)", n, w.Len(), w.info, w.started)
	}
	good := w.Bytes()

	serve := func(body []byte, length bool) *client.Client {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			if length {
				rw.Header().Set("Content-Length", strconv.Itoa(len(good)))
			}
			rw.Write(body)
		}))
		t.Cleanup(srv.Close)
		return newClient(t, client.Config{Servers: []string{srv.URL}, Key: adminKey, MaxRetries: -1})
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	for name, cl := range map[string]*client.Client{
		"cut short":                 serve(good[:len(good)-100], true),
		"a flipped byte":            serve(flipped, true),
		"cut, without a length":     serve(good[:len(good)-1], false),
		"not a backup":              serve(bytes.Repeat([]byte("x"), 200), false),
		"flipped, without a length": serve(flipped, false),
	} {
		var out bytes.Buffer
		if _, err := cl.Backup(ctx, &out); !errors.Is(err, client.ErrBadBackup) {
			t.Errorf("%s: %v, want ErrBadBackup", name, err)
		}
	}
	if _, err := serve(good, false).Backup(ctx, &bytes.Buffer{}); err != nil {
		t.Errorf("the same backup without a Content-Length: %v", err)
	}
	var e *client.Error
	if _, err := newClient(t, client.Config{Key: "eye_nobody"}).Backup(ctx, &bytes.Buffer{}); !errors.As(err, &e) || e.Status != 401 {
		t.Errorf("a backup with an unknown key: %v, want 401", err)
	}
}

// TestBackupStalled: a server that stops sending midway is given up on
// after RequestTimeout without a byte, not after the whole download's
// worth of RequestTimeouts, and not retried (bytes were written).
func TestBackupStalled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Length", "1000")
		rw.Write([]byte("THEEYEBK"))
		rw.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cl := newClient(t, client.Config{Servers: []string{srv.URL}, Key: adminKey, RequestTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := cl.Backup(testCtx(t), &bytes.Buffer{})
	if !errors.Is(err, client.ErrBadBackup) || !strings.Contains(err.Error(), "sent nothing for 300ms") {
		t.Fatalf("a stalled backup: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	if st := cl.Stats(); st.Requests != 1 {
		t.Fatalf("%d requests: a backup cut after bytes were written was retried", st.Requests)
	}
}
