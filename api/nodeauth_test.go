package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// keyNode is a leader that knows one admin key and records what it is
// asked to replicate; anything else panics (the embedded Node is nil).
type keyNode struct {
	Node
	applied []any
}

const fakeAdminSecret = "eye_fake_admin_secret"

func newKeyNode() *keyNode { return &keyNode{} }

func (n *keyNode) ID() string     { return "n1" }
func (n *keyNode) IsLeader() bool { return true }
func (n *keyNode) LookupKey(hash string) (theeye.Key, bool) {
	if hash != theeye.HashSecret(fakeAdminSecret) {
		return theeye.Key{}, false
	}
	return theeye.Key{ID: "admin", Name: "admin", Scopes: []theeye.Scope{theeye.ScopeAdmin}, Hash: hash}, true
}
func (n *keyNode) CreateApp(_ context.Context, app theeye.App, _ theeye.Key) error {
	n.applied = append(n.applied, app)
	return nil
}

// clock is a settable time source for the proofs' timestamps.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestNodeProofVerifies(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	a := newNodeAuth("secret", c.now)
	req := signedRequest{method: "POST", uri: "/v1/events?x=1", body: []byte(`{"a":1}`), credentials: "Bearer k\n"}
	h, err := a.sign(purposeForward, "n2", &req)
	if err != nil {
		t.Fatal(err)
	}
	node, err := a.verify(purposeForward, h, &req)
	if err != nil || node != "n2" {
		t.Fatalf("verify: %q, %v", node, err)
	}
	if _, err := a.verify(purposeForward, h, &req); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("a replay: %v, want refused as replayed", err)
	}
}

// TestNodeProofRefusals: every way a proof can be wrong is refused, with
// errNodeAuth and a reason.
func TestNodeProofRefusals(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	a := newNodeAuth("secret", c.now)
	other := newNodeAuth("another secret", c.now)
	req := signedRequest{method: "POST", uri: "/v1/apps", body: []byte(`{"name":"x"}`), credentials: "Bearer k\n"}
	sign := func(a *nodeAuth, purpose string) string {
		h, err := a.sign(purpose, "n2", &req)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		header string
		req    signedRequest
		skew   time.Duration
		why    string
	}{
		{"another cluster key", sign(other, purposeForward), req, 0, "wrong MAC"},
		{"a call proof as a forward", sign(a, purposeCall), req, 0, "wrong MAC"},
		{"another body", sign(a, purposeForward), signedRequest{method: req.method, uri: req.uri, body: []byte(`{"name":"y"}`), credentials: req.credentials}, 0, "wrong MAC"},
		{"another path", sign(a, purposeForward), signedRequest{method: req.method, uri: "/v1/keys", body: req.body, credentials: req.credentials}, 0, "wrong MAC"},
		{"another method", sign(a, purposeForward), signedRequest{method: "DELETE", uri: req.uri, body: req.body, credentials: req.credentials}, 0, "wrong MAC"},
		{"another credential", sign(a, purposeForward), signedRequest{method: req.method, uri: req.uri, body: req.body, credentials: "Bearer admin\n"}, 0, "wrong MAC"},
		{"too old", sign(a, purposeForward), req, nodeAuthWindow + time.Second, "off this node's clock"},
		{"from the future", sign(a, purposeForward), req, -nodeAuthWindow - time.Second, "off this node's clock"},
		{"v1 marker", "n1", req, 0, "malformed"},
		{"empty", "", req, 0, "malformed"},
		{"mac cut short", sign(a, purposeForward)[:120], req, 0, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = c.t.Add(tc.skew)
			defer func() { c.t = c.t.Add(-tc.skew) }()
			_, err := a.verify(purposeForward, tc.header, &tc.req)
			if !errors.Is(err, errNodeAuth) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %v, want a refusal saying %q", err, tc.why)
			}
		})
	}
	if _, err := (*nodeAuth)(nil).verify(purposeCall, sign(a, purposeCall), &req); !errors.Is(err, errNodeAuth) {
		t.Fatalf("a node without a cluster key verified a proof: %v", err)
	}
}

// TestNodeProofNoncesExpire: the nonce memory turns over, but never so
// soon that a proof within its window could be replayed.
func TestNodeProofNoncesExpire(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	a := newNodeAuth("secret", c.now)
	req := signedRequest{method: "GET", uri: "/v1/cluster/self"}
	h, _ := a.sign(purposeCall, "n1", &req)
	if _, err := a.verify(purposeCall, h, &req); err != nil {
		t.Fatal(err)
	}
	for step := time.Duration(0); step <= nodeAuthWindow; step += time.Second {
		c.t = c.t.Add(time.Second)
		// A fresh proof each second turns the generations over.
		fresh, _ := a.sign(purposeCall, "n1", &req)
		if _, err := a.verify(purposeCall, fresh, &req); err != nil {
			t.Fatal(err)
		}
		if _, err := a.verify(purposeCall, h, &req); err == nil {
			t.Fatalf("the first proof was accepted again %s later", step+time.Second)
		}
	}
}

// TestForgedNodeHeadersGrantNothing: through the server, a forwarded
// marker or a node proof that does not verify is 401, whatever key comes
// with it, and a valid node proof does not open admin routes.
func TestForgedNodeHeadersGrantNothing(t *testing.T) {
	n := newKeyNode()
	s := New(Config{Node: n, Index: &fakeIndex{}, ClusterKey: "ck", NodeID: "n1"})
	for _, hdr := range [][2]string{
		{HeaderClusterKey, "ck"},
		{HeaderForwarded, "n2"},
		{HeaderForwarded, "v1 node=n2 ts=1 nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000"},
		{HeaderNodeAuth, "v1 node=n2 ts=1 nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000"},
	} {
		req := httptest.NewRequest("POST", "/v1/apps", strings.NewReader(`{"name":"evil"}`))
		req.Header.Set("Authorization", "Bearer "+fakeAdminSecret)
		req.Header.Set(hdr[0], hdr[1])
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: %s → %d %s, want 401", hdr[0], hdr[1], rec.Code, rec.Body)
		}
	}
	signer, _ := NewNodeSigner("ck", "n2")
	body := `{"name":"evil"}`
	proof, _ := signer.Sign("POST", "/v1/apps", []byte(body))
	req := httptest.NewRequest("POST", "/v1/apps", strings.NewReader(body))
	req.Header.Set(HeaderNodeAuth, proof)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("a valid node proof on an admin route: %d %s, want 403", rec.Code, rec.Body)
	}
	if len(n.applied) != 0 {
		t.Fatalf("commands applied: %v", n.applied)
	}
}

// FuzzParseNodeProof: the header parser never panics, and what it accepts
// prints back as the same header.
func FuzzParseNodeProof(f *testing.F) {
	a := newNodeAuth("k", time.Now)
	h, _ := a.sign(purposeCall, "n1", &signedRequest{method: "GET", uri: "/"})
	f.Add(h)
	f.Add("v1 node=n1 ts=1 nonce=00 mac=00")
	f.Add("n1")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseNodeProof(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("parsed %q, prints %q", s, p.String())
		}
	})
}

// FuzzNodeProofVerify: no header the fuzzer makes up verifies (it would
// need the key), and verifying never panics, whatever the request.
func FuzzNodeProofVerify(f *testing.F) {
	a := newNodeAuth("k", time.Now)
	// A well-formed, fresh proof made with another key: the fuzzer starts
	// from the right shape.
	h, _ := newNodeAuth("not k", time.Now).sign(purposeForward, "n1", &signedRequest{method: "POST", uri: "/v1/events"})
	f.Add(h, "POST", "/v1/events", []byte(nil))
	f.Add("v1 node=n1 ts=1 nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000", "GET", "/", []byte("x"))
	f.Fuzz(func(t *testing.T, header, method, uri string, body []byte) {
		if node, err := a.verify(purposeForward, header, &signedRequest{method: method, uri: uri, body: body}); err == nil {
			t.Fatalf("made-up proof %q verified as node %q", header, node)
		}
	})
}

// FuzzBearer: the Authorization parser never panics and accepts only the
// one secret the node knows.
func FuzzBearer(f *testing.F) {
	s := New(Config{Node: newKeyNode(), Index: &fakeIndex{}})
	f.Add("Bearer " + fakeAdminSecret)
	f.Add("bearer x")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest("GET", "/v1/events", nil)
		req.Header.Set("Authorization", h)
		k, err := s.lookupBearer(req)
		if err == nil && !strings.EqualFold(h[:7], "Bearer ") || err == nil && h[7:] != fakeAdminSecret {
			t.Fatalf("%q authenticated as %+v", h, k)
		}
	})
}
