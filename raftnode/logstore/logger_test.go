package logstore

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestLogStorePebbleLogger(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	s, err := Open(Config{Dir: t.TempDir(), Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "source=pebble") || !strings.Contains(out, "level=DEBUG") {
		t.Fatalf("pebble messages not forwarded at debug level:\n%s", out)
	}

	pl := pebbleLogger(slog.New(slog.DiscardHandler))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "boom 1") {
			t.Fatalf("Fatalf: recovered %v, want a panic with the message", r)
		}
	}()
	pl.Fatalf("boom %d", 1)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
