package raftnode

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestDialerChecksTheAcceptor: the handshake is mutual. A listener that
// does not know the cluster key (it sends a nonce and answers anything)
// never gets a connection from a node: the dialer refuses it.
func TestDialerChecksTheAcceptor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// An impostor: the right magic, a nonce, then a made-up proof.
		c.Write(append(append([]byte(nil), handshakeMagic...), make([]byte, nonceLen)...))
		buf := make([]byte, nonceLen+32)
		io.ReadFull(c, buf)
		c.Write(make([]byte, 32))
		rest, _ := io.ReadAll(c) // whatever the dialer sends after: Raft's first bytes, if it was fooled
		got <- rest
	}()
	cl, err := newStreamLayer("127.0.0.1:0", "", []byte("the-key"), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, err := cl.Dial(raft.ServerAddress(ln.Addr().String()), 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("dialed an impostor that does not know the cluster key")
	}
	select {
	case rest := <-got:
		if len(rest) != 0 {
			t.Fatalf("the dialer sent %d bytes to the impostor after the handshake", len(rest))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dialer kept the impostor's connection open")
	}
}

// TestSilentConnectionDoesNotStallAccept: a peer that connects and never
// speaks does not delay the next connection's handshake.
func TestSilentConnectionDoesNotStallAccept(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	srv, err := newStreamLayer("127.0.0.1:0", "", []byte("k"), nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := srv.Accept(); err == nil {
			accepted <- c
		}
	}()
	var silent []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	cl, err := newStreamLayer("127.0.0.1:0", "", []byte("k"), nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	c, err := cl.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
	if err != nil {
		t.Fatalf("dial behind 8 silent connections: %v", err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(handshakeTimeout / 2):
		t.Fatal("the good connection waited for the silent ones")
	}
	if d := time.Since(start); d >= handshakeTimeout {
		t.Fatalf("dial took %s, a handshake timeout", d)
	}
}

// TestHandshakeRoundTrip: both sides with the same key agree; with
// different keys neither side accepts.
func TestHandshakeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		dialKey, acceptKey string
		ok                 bool
	}{{"k", "k", true}, {"k", "other", false}} {
		a, d := net.Pipe()
		errc := make(chan error, 1)
		go func() {
			errc <- acceptorHandshake(a, raftHandshakeKey([]byte(tc.acceptKey)))
			a.Close()
		}()
		derr := dialerHandshake(d, raftHandshakeKey([]byte(tc.dialKey)))
		d.Close()
		aerr := <-errc
		if tc.ok && (derr != nil || aerr != nil) {
			t.Fatalf("same key: dialer %v, acceptor %v", derr, aerr)
		}
		if !tc.ok && (derr == nil || aerr == nil) {
			t.Fatalf("different keys: dialer %v, acceptor %v; both must refuse", derr, aerr)
		}
	}
}

// scripted is one side of a handshake whose peer is a fuzzer: reads come
// from the script, writes are discarded.
type scripted struct{ r *bytes.Reader }

func (s scripted) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s scripted) Write(p []byte) (int, error) { return len(p), nil }

// FuzzRaftHandshake plays whatever bytes the fuzzer gives as the peer of
// either side: neither may panic, and neither may accept a peer that does
// not know the key (a random proof matches with probability 2^-256).
func FuzzRaftHandshake(f *testing.F) {
	f.Add(append(append([]byte(nil), handshakeMagic...), make([]byte, 96)...))
	f.Add([]byte("EYE1"))
	f.Add([]byte{})
	key := raftHandshakeKey([]byte("fuzz-key"))
	f.Fuzz(func(t *testing.T, peer []byte) {
		if err := acceptorHandshake(scripted{bytes.NewReader(peer)}, key); err == nil {
			t.Fatalf("acceptor accepted %x", peer)
		}
		if err := dialerHandshake(scripted{bytes.NewReader(peer)}, key); err == nil {
			t.Fatalf("dialer accepted %x", peer)
		}
	})
}
