package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRateLimitHoldsForTheCluster: a key limited to N events/s sends from
// several goroutines through all three nodes; what is accepted stays
// within the bucket's bound for the cluster, every 429 carries
// Retry-After, and no refused event is stored.
func TestRateLimitHoldsForTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startCluster(t, 3, false)
	const rate, burst, batch = 200, 200, 10
	var app struct {
		Key struct {
			ID        string          `json:"id"`
			Secret    string          `json:"secret"`
			RateLimit json.RawMessage `json:"rate_limit"`
		} `json:"key"`
	}
	c.nodes[1].call("POST", "/v1/apps", testAdminKey, "application/json",
		[]byte(fmt.Sprintf(`{"name":"limited","rate_limit":{"events_per_second":%d,"burst":%d}}`, rate, burst)), 201, &app)
	key := app.Key.Secret
	waitFor(t, 30*time.Second, "the key on every node", func() error {
		for _, p := range c.nodes {
			var keys struct {
				Keys []struct {
					ID        string `json:"id"`
					RateLimit *struct {
						EventsPerSecond float64 `json:"events_per_second"`
						Burst           int     `json:"burst"`
					} `json:"rate_limit"`
				} `json:"keys"`
			}
			p.call("GET", "/v1/keys", testAdminKey, "", nil, 200, &keys)
			found := false
			for _, k := range keys.Keys {
				found = found || k.ID == app.Key.ID && k.RateLimit != nil && k.RateLimit.EventsPerSecond == rate && k.RateLimit.Burst == burst
			}
			if !found {
				return fmt.Errorf("%s: %+v", p.URL, keys.Keys)
			}
		}
		return nil
	})

	res := hammer(c.nodes, key, 6, batch, 4*time.Second)
	accepted, refused, elapsed := res.accepted, res.refused, res.elapsed
	if len(res.problems) > 0 {
		t.Fatalf("answers: %v", res.problems)
	}
	bound := float64(burst) + rate*elapsed.Seconds()
	t.Logf("accepted %d, refused %d events in %s (bound %.0f)", accepted, refused, elapsed.Round(time.Millisecond), bound)
	if float64(accepted) > bound || refused == 0 || accepted < burst {
		t.Fatalf("accepted %d events in %s, refused %d: want at least the burst (%d), at most %.0f, and some refused",
			accepted, elapsed, refused, burst, bound)
	}
	// Exactly the accepted events are stored, on every node.
	for _, p := range c.nodes {
		evs := p.exportAll(fmt.Sprintf("/v1/sessions/rl/events?min_seq=%d&wait=30s", res.maxSeq))
		if int64(len(evs)) != accepted {
			t.Fatalf("%s holds %d events of the key, %d were accepted", p.URL, len(evs), accepted)
		}
	}
	// A request larger than the burst can never pass: 413, not a wait.
	big := "[" + strings.TrimSuffix(strings.Repeat(exPageview+",", burst+1), ",") + "]"
	if st, b, _ := do(t, "POST", c.nodes[0].URL+"/v1/events", key, "application/json", []byte(big)); st != 413 || !strings.Contains(string(b), "too_many_events") {
		t.Fatalf("a request over the burst: %d %s", st, b)
	}
	// PATCH lifts the limit, on every node.
	var patched map[string]any
	c.nodes[2].call("PATCH", "/v1/keys/"+app.Key.ID, testAdminKey, "application/json", []byte(`{"rate_limit":null}`), 200, &patched)
	waitFor(t, 30*time.Second, "the unlimited key", func() error {
		if st, b, _ := do(t, "POST", c.nodes[0].URL+"/v1/events", key, "application/json", []byte(big)); st != 202 {
			return fmt.Errorf("%d %s", st, b)
		}
		return nil
	})
}

// hammerResult is what hammer saw.
type hammerResult struct {
	accepted, refused int64 // events answered 202, 429
	maxSeq            uint64
	problems          []string // answers that are neither, or a 429 without Retry-After
	elapsed           time.Duration
}

// hammer sends batches of batch events with key from goroutines spread over
// nodes, as fast as they are answered, for d, without retrying.
func hammer(nodes []*proc, key string, goroutines, batch int, d time.Duration) hammerResult {
	var accepted, refused atomic.Int64
	var maxSeq atomic.Uint64
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func(p *proc) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				var b strings.Builder
				b.WriteByte('[')
				for j := range batch {
					if j > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"session_id":"rl","category":"c","name":"n","data":{"g":%d,"i":%d,"j":%d},"timestamp":"2021-01-01T00:00:00Z"}`, g, i, j)
				}
				b.WriteByte(']')
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/v1/events", strings.NewReader(b.String()))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					cancel()
					problem("post: %v", err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				switch resp.StatusCode {
				case 202:
					var a ack
					json.Unmarshal(body, &a)
					accepted.Add(int64(a.Accepted))
					for s := maxSeq.Load(); a.Seq > s && !maxSeq.CompareAndSwap(s, a.Seq); s = maxSeq.Load() {
					}
				case 429:
					refused.Add(int64(batch))
					ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
					if err != nil || ra < 1 || !bytes.Contains(body, []byte(`"rate_limited"`)) {
						problem("429 with Retry-After %q: %s", resp.Header.Get("Retry-After"), body)
					}
				default:
					problem("%d %s", resp.StatusCode, body)
				}
			}
		}(nodes[g%len(nodes)])
	}
	wg.Wait()
	return hammerResult{accepted: accepted.Load(), refused: refused.Load(), maxSeq: maxSeq.Load(), problems: problems, elapsed: time.Since(start)}
}

// tmpfs mounts a small tmpfs of its own for the test (root only) and
// unmounts it at the end.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// TestFullDisk: a node whose data dir's file system fills up refuses
// ingest with 507 and keeps running and serving reads; every acknowledged
// event is queryable, also after a kill -9 and a restart on the full disk;
// writes come back by themselves once space is freed.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	mnt := tmpfs(t, "320m")
	const watermark = 64 << 20
	p := startNode(t, filepath.Join(mnt, "data"), "--min-free-disk", "64MiB")
	t.Cleanup(p.kill9) // before the unmount (cleanups run last first)
	key := p.createApp("shop")
	// A filler leaves the node about 24 MiB above its watermark.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, freeBytes(t, mnt)-watermark-24<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	pad := strings.Repeat("x", 900)
	var body strings.Builder
	body.WriteByte('[')
	for j := range 500 {
		if j > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"session_id":"full","category":"c","name":"n","data":{"j":%d,"pad":%q},"timestamp":"2021-01-01T00:00:00Z"}`, j, pad)
	}
	body.WriteByte(']')
	acked, lastSeq, got507 := 0, uint64(0), false
	defer func() {
		if t.Failed() {
			t.Logf("node output:\n%s", p.Out.String())
		}
	}()
	for i := 0; i < 400 && !got507; i++ {
		st, b, h := do(t, "POST", p.URL+"/v1/events", key, "application/json", []byte(body.String()))
		switch st {
		case 202:
			var a ack
			mustJSON(t, b, &a)
			acked += a.Accepted
			lastSeq = a.Seq
		case 429:
			// The admission budget: let the indexer catch up with what
			// was acknowledged (nothing of the refused batch is stored).
			p.get(fmt.Sprintf("/v1/sessions/full/events?min_seq=%d&wait=30s&limit=1", lastSeq))
		case 507:
			got507 = true
			if h.Get("Retry-After") == "" || !strings.Contains(string(b), "insufficient_storage") {
				t.Fatalf("507 without Retry-After or code: %q %s", h.Get("Retry-After"), b)
			}
		default:
			t.Fatalf("post %d: %d %s", i, st, b)
		}
	}
	if !got507 {
		t.Fatalf("no 507 after %d events with %d bytes free", acked, freeBytes(t, mnt))
	}
	t.Logf("507 after %d events acknowledged; %d MiB free", acked, freeBytes(t, mnt)>>20)
	checkAll := func(what string) {
		t.Helper()
		evs := p.exportAll(fmt.Sprintf("/v1/sessions/full/events?min_seq=%d&wait=60s", lastSeq))
		if len(evs) != acked {
			t.Fatalf("%s: %d events queryable, %d acknowledged", what, len(evs), acked)
		}
	}
	// Hold the disk below the watermark: a flush or compaction that ends
	// after the 507 may free a few MiB again, and the node rightly takes
	// writes back then. Topping the filler up keeps it full for the checks.
	if free := freeBytes(t, mnt); free > watermark-8<<20 {
		f, err := os.OpenFile(filler, os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(make([]byte, free-(watermark-8<<20)))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("top the filler up: %v", err)
		}
	}
	checkAll("on the full disk")
	waitFor(t, 30*time.Second, "readyz to say the disk is full", func() error {
		if st, b, _ := do(t, "GET", p.URL+"/readyz", "", "", nil); st != 503 || !strings.Contains(string(b), "min-free-disk") {
			return fmt.Errorf("readyz on the full disk: %d %s", st, b)
		}
		return nil
	})
	if st, b, _ := do(t, "POST", p.URL+"/v1/apps", testAdminKey, "application/json", []byte(`{"name":"more"}`)); st != 507 {
		t.Fatalf("an admin write on the full disk: %d %s", st, b)
	}
	if st, b, _ := do(t, "GET", p.URL+"/metrics", "", "", nil); st != 200 || !bytes.Contains(b, []byte("theeye_disk_free_bytes")) || !bytes.Contains(b, []byte(`theeye_disk_used_bytes{store="log"}`)) {
		t.Fatalf("metrics: %d", st)
	}

	// kill -9 and a restart on the full disk lose nothing.
	p.kill9()
	p.startNoWait()
	if err := p.WaitListening(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkAll("after kill -9 and a restart on the full disk")

	// Space back: writes resume by themselves.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "writes to resume", func() error {
		st, b, _ := do(t, "POST", p.URL+"/v1/events", key, "application/json", []byte(exPageview))
		if st != 202 {
			return fmt.Errorf("%d %s", st, b)
		}
		return nil
	})
	waitFor(t, 30*time.Second, "ready", func() error {
		if st, b, _ := do(t, "GET", p.URL+"/readyz", "", "", nil); st != 200 {
			return fmt.Errorf("%d %s", st, b)
		}
		return nil
	})
}
