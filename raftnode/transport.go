package raftnode

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is the Raft transport's connection layer: TCP, optionally
// mutual TLS, and, when a cluster key is set, a challenge-response before
// the connection is handed to Raft, so a stranger who can reach the Raft
// port can neither join nor inject entries:
//
//	acceptor → dialer: 32 random bytes (nonce)
//	dialer → acceptor: HMAC-SHA256(cluster key, "theeye-raft/1" || nonce)
//	acceptor → dialer: 1 byte, 1 = accepted (else the connection is closed)
type streamLayer struct {
	ln        net.Listener
	localIP   net.IP // dial from the bound IP when it is a specific one
	advertise net.Addr
	key       []byte
	tls       *tls.Config
	logger    *slog.Logger
}

const (
	handshakeTimeout = 5 * time.Second
	nonceLen         = 32
)

var handshakeLabel = []byte("theeye-raft/1")

func newStreamLayer(bind, advertise string, key []byte, tcfg *tls.Config, logger *slog.Logger) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen raft on %s: %w", bind, err)
	}
	s := &streamLayer{ln: ln, advertise: ln.Addr(), key: key, logger: logger}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		// On a host with several addresses, peers see Raft traffic come
		// from the address this node listens on.
		s.localIP = tcp.IP
	}
	if tcfg != nil {
		s.tls = tcfg.Clone()
		s.tls.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if advertise != "" {
		// Kept as given: a host name is resolved by each peer when it
		// dials, so a container that comes back with a new IP is found.
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			ln.Close()
			return nil, fmt.Errorf("advertise raft address %q: %w", advertise, err)
		}
		s.advertise = advertisedAddr(advertise)
	} else if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft listens on %s: give --advertise-raft, the address other nodes dial", bind)
	}
	return s, nil
}

// Accept returns the next connection that passed the handshake. A failed
// handshake is logged and the connection dropped; Accept goes on.
func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		conn, err := s.serverHandshake(c)
		if err != nil {
			s.logger.Warn("refused a raft connection", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			continue
		}
		return conn, nil
	}
}

func (s *streamLayer) serverHandshake(c net.Conn) (net.Conn, error) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if s.tls != nil {
		tc := tls.Server(c, s.tls)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		c = tc
	}
	if len(s.key) > 0 {
		var nonce [nonceLen]byte
		if _, err := rand.Read(nonce[:]); err != nil {
			return nil, fmt.Errorf("nonce: %w", err)
		}
		if _, err := c.Write(nonce[:]); err != nil {
			return nil, fmt.Errorf("send nonce: %w", err)
		}
		var got [sha256.Size]byte
		if _, err := io.ReadFull(c, got[:]); err != nil {
			return nil, fmt.Errorf("read proof: %w", err)
		}
		if !hmac.Equal(got[:], s.proof(nonce[:])) {
			c.Write([]byte{0})
			return nil, errors.New("wrong cluster key")
		}
		if _, err := c.Write([]byte{1}); err != nil {
			return nil, fmt.Errorf("accept: %w", err)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func (s *streamLayer) proof(nonce []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(handshakeLabel)
	m.Write(nonce)
	return m.Sum(nil)
}

// Dial connects to a peer and proves the cluster key.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if s.localIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.localIP}
	}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(max(timeout, handshakeTimeout)))
	if s.tls != nil {
		cfg := s.tls.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(string(address))
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", address, err)
		}
		c = tc
	}
	if len(s.key) > 0 {
		var nonce [nonceLen]byte
		if _, err := io.ReadFull(c, nonce[:]); err != nil {
			c.Close()
			return nil, fmt.Errorf("raft handshake with %s: %w", address, err)
		}
		if _, err := c.Write(s.proof(nonce[:])); err != nil {
			c.Close()
			return nil, fmt.Errorf("raft handshake with %s: %w", address, err)
		}
		var ok [1]byte
		if _, err := io.ReadFull(c, ok[:]); err != nil || ok[0] != 1 {
			c.Close()
			return nil, fmt.Errorf("raft handshake with %s: the peer refused our cluster key", address)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// advertisedAddr is a Raft address as configured (host:port, the host
// possibly a name).
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
