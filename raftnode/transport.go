package raftnode

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is the Raft transport's connection layer: TCP, optionally
// mutual TLS, and a mutual challenge-response on the cluster key before
// the connection is handed to Raft, so a stranger who can reach the Raft
// port can neither join nor inject entries, and a node never streams its
// log to a stranger posing as a peer:
//
//	acceptor → dialer:   "EYE2", nonce A (32 random bytes)
//	dialer → acceptor:   nonce D (32 random bytes), HMAC(k, "dialer" || A || D)
//	acceptor → dialer:   HMAC(k, "acceptor" || A || D)   (or it closes the connection)
//
//	k = HMAC-SHA256(cluster key, "theeye/raft-handshake")
//
// Each side checks the other's proof in constant time; each proof binds
// both nonces, so none can be replayed. Handshakes run in goroutines of
// their own (at most maxHandshakes at once, each bounded by
// handshakeTimeout), off the accept loop: a peer that connects and stays
// silent delays nobody.
type streamLayer struct {
	ln        net.Listener
	localIP   net.IP // dial from the bound IP when it is a specific one
	advertise net.Addr
	key       []byte // derived from the cluster key; nil: no handshake
	tls       *tls.Config
	logger    *slog.Logger

	accepted chan net.Conn // connections that passed the handshake
	closed   chan struct{}
	once     sync.Once
	slots    chan struct{} // one per handshake in progress
}

const (
	handshakeTimeout = 5 * time.Second
	nonceLen         = 32
	// maxHandshakes bounds the handshakes in progress; a connection that
	// finds them all busy is closed at once.
	maxHandshakes = 64
)

var handshakeMagic = []byte("EYE2")

// raftHandshakeKey derives the handshake key from the cluster key, apart
// from the key node-to-node HTTP calls use.
func raftHandshakeKey(clusterKey []byte) []byte {
	if len(clusterKey) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, clusterKey)
	m.Write([]byte("theeye/raft-handshake"))
	return m.Sum(nil)
}

func newStreamLayer(bind, advertise string, clusterKey []byte, tcfg *tls.Config, logger *slog.Logger) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen raft on %s: %w", bind, err)
	}
	s := &streamLayer{ln: ln, advertise: ln.Addr(), key: raftHandshakeKey(clusterKey), logger: logger,
		accepted: make(chan net.Conn), closed: make(chan struct{}), slots: make(chan struct{}, maxHandshakes)}
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
	go s.acceptLoop()
	return s, nil
}

// acceptLoop accepts raw connections and hands each to a handshake of its
// own, until the listener is closed.
func (s *streamLayer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.logger.Warn("raft accept failed; stopping the listener", "err", err)
			s.Close()
			return
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.logger.Warn("refused a raft connection: too many handshakes in progress", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		go func() {
			defer func() { <-s.slots }()
			conn, err := s.serverHandshake(c)
			if err != nil {
				s.logger.Warn("refused a raft connection", "remote", c.RemoteAddr().String(), "err", err)
				c.Close()
				return
			}
			select {
			case s.accepted <- conn:
			case <-s.closed:
				conn.Close()
			}
		}()
	}
}

// Accept returns the next connection that passed the handshake.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
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
	if s.key != nil {
		if err := acceptorHandshake(c, s.key); err != nil {
			return nil, err
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// acceptorHandshake runs the acceptor's side of the handshake on rw.
func acceptorHandshake(rw io.ReadWriter, key []byte) error {
	var hello [len("EYE2") + nonceLen]byte
	copy(hello[:], handshakeMagic)
	if _, err := rand.Read(hello[len(handshakeMagic):]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	a := hello[len(handshakeMagic):]
	if _, err := rw.Write(hello[:]); err != nil {
		return fmt.Errorf("send nonce: %w", err)
	}
	var got [nonceLen + sha256.Size]byte
	if _, err := io.ReadFull(rw, got[:]); err != nil {
		return fmt.Errorf("read the dialer's proof: %w", err)
	}
	d := got[:nonceLen]
	if !hmac.Equal(got[nonceLen:], handshakeProof(key, "dialer", a, d)) {
		return errors.New("the dialer does not prove the cluster key")
	}
	if _, err := rw.Write(handshakeProof(key, "acceptor", a, d)); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	return nil
}

// dialerHandshake runs the dialer's side of the handshake on rw.
func dialerHandshake(rw io.ReadWriter, key []byte) error {
	var hello [len("EYE2") + nonceLen]byte
	if _, err := io.ReadFull(rw, hello[:]); err != nil {
		return fmt.Errorf("read the peer's nonce: %w", err)
	}
	if !bytes.Equal(hello[:len(handshakeMagic)], handshakeMagic) {
		return errors.New("the peer does not speak this handshake (another version of The Eye?)")
	}
	a := hello[len(handshakeMagic):]
	var msg [nonceLen + sha256.Size]byte
	if _, err := rand.Read(msg[:nonceLen]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	d := msg[:nonceLen]
	copy(msg[nonceLen:], handshakeProof(key, "dialer", a, d))
	if _, err := rw.Write(msg[:]); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	var proof [sha256.Size]byte
	if _, err := io.ReadFull(rw, proof[:]); err != nil {
		return errors.New("the peer refused our cluster key")
	}
	if !hmac.Equal(proof[:], handshakeProof(key, "acceptor", a, d)) {
		return errors.New("the peer does not prove the cluster key")
	}
	return nil
}

func handshakeProof(key []byte, role string, a, d []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(a)
	m.Write(d)
	return m.Sum(nil)
}

// Dial connects to a peer; both sides prove the cluster key.
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
	if s.key != nil {
		if err := dialerHandshake(c, s.key); err != nil {
			c.Close()
			return nil, fmt.Errorf("raft handshake with %s: %w", address, err)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// Close stops accepting; handshakes in progress end with their deadline.
func (s *streamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

// advertisedAddr is a Raft address as configured (host:port, the host
// possibly a name).
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
