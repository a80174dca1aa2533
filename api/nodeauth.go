package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Node-to-node calls prove the cluster key without sending it. A call
// carries, in one header, the calling node's id, a timestamp, a fresh
// random nonce and an HMAC-SHA256 over all of them and the request:
//
//	X-Eye-Node-Auth: v1 node=<id> ts=<unix ns> nonce=<32 hex> mac=<64 hex>
//
//	mac = HMAC-SHA256(k, "theeye-node-auth/1" \n purpose \n node \n ts \n nonce \n
//	                     method \n request URI \n hex SHA-256(body) \n hex SHA-256(credentials))
//	k   = HMAC-SHA256(cluster key, "theeye/http-node-auth")
//
// purpose is "call" (X-Eye-Node-Auth: the caller is a node of this
// cluster) or "forward" (X-Eye-Forwarded: a follower relays a client's
// request to the leader), so one proof cannot stand in for the other.
// credentials are the client's own credential headers the forwarder relays
// (Authorization, and a joining node's X-Eye-Node-Auth), so a proof binds
// the credential it travels with. A proof is accepted once: its timestamp
// must lie within nodeAuthWindow of the receiver's clock and its nonce must
// not have been seen (nonces are remembered for at least twice the window).
// The key used for HTTP is derived apart from the one the Raft handshake
// uses.
const (
	// HeaderNodeAuth carries a node's proof of the cluster key over its
	// own call (peer status, join).
	HeaderNodeAuth = "X-Eye-Node-Auth"
	// HeaderForwarded carries the proof of a follower that relays a
	// client's request to the leader; such a request is never forwarded
	// again.
	HeaderForwarded = "X-Eye-Forwarded"
	// HeaderClusterKey is the header v1 nodes sent the cluster key in, in
	// clear. It is refused: a request carrying it gets 401.
	HeaderClusterKey = "X-Eye-Cluster-Key"
)

const (
	purposeCall    = "call"
	purposeForward = "forward"

	nodeAuthVersion = "v1"
	nodeAuthLabel   = "theeye-node-auth/1"
	// nodeAuthWindow is how far a proof's timestamp may be from the
	// receiver's clock: nodes must keep their clocks within it (NTP).
	nodeAuthWindow = 30 * time.Second
	// maxNodeAuthHeader bounds what parseNodeProof reads.
	maxNodeAuthHeader = 512
	maxNodeIDLen      = 128
)

// nodeProof is one parsed X-Eye-Node-Auth or X-Eye-Forwarded header.
type nodeProof struct {
	node  string
	ts    int64 // Unix nanoseconds
	nonce [16]byte
	mac   [32]byte
}

// errNodeAuth is the root of every refusal of a node proof.
var errNodeAuth = errors.New("node proof refused")

// parseNodeProof reads a header written by nodeSigner.sign. It accepts
// exactly that form: the version, then node, ts, nonce and mac in that
// order, separated by single spaces.
func parseNodeProof(h string) (nodeProof, error) {
	var p nodeProof
	bad := func(why string) (nodeProof, error) {
		return nodeProof{}, fmt.Errorf("%w: malformed header: %s", errNodeAuth, why)
	}
	if len(h) > maxNodeAuthHeader {
		return bad("too long")
	}
	parts := strings.Split(h, " ")
	if len(parts) != 5 || parts[0] != nodeAuthVersion {
		return bad(`want "v1 node=<id> ts=<unix ns> nonce=<hex> mac=<hex>"`)
	}
	field := func(s, name string) (string, bool) {
		v, ok := strings.CutPrefix(s, name+"=")
		return v, ok && v != ""
	}
	node, ok := field(parts[1], "node")
	if !ok || len(node) > maxNodeIDLen || !validNodeID(node) {
		return bad("node")
	}
	ts, ok := field(parts[2], "ts")
	if !ok {
		return bad("ts")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != ts {
		return bad("ts")
	}
	nonce, ok := field(parts[3], "nonce")
	if !ok || !decodeHexExact(p.nonce[:], nonce) {
		return bad("nonce")
	}
	mac, ok := field(parts[4], "mac")
	if !ok || !decodeHexExact(p.mac[:], mac) {
		return bad("mac")
	}
	p.node, p.ts = node, n
	return p, nil
}

// validNodeID accepts what a node id may be: printable ASCII without
// spaces or '=' (the header's separators).
func validNodeID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '=' {
			return false
		}
	}
	return true
}

// decodeHexExact decodes lower-case hex of exactly len(dst) bytes.
func decodeHexExact(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

func (p nodeProof) String() string {
	return nodeAuthVersion + " node=" + p.node + " ts=" + strconv.FormatInt(p.ts, 10) +
		" nonce=" + hex.EncodeToString(p.nonce[:]) + " mac=" + hex.EncodeToString(p.mac[:])
}

// signedRequest is what a node proof covers besides its own fields.
type signedRequest struct {
	method, uri string
	body        []byte
	credentials string // the credential headers relayed with the request, in a fixed order
}

// nodeAuth signs and verifies node proofs with the cluster key, and keeps
// the nonces it accepted so that none is accepted twice. It is safe for
// concurrent use.
type nodeAuth struct {
	key []byte // derived from the cluster key
	now func() time.Time

	mu      sync.Mutex
	cur     map[[16]byte]struct{} // nonces accepted since rotated; guarded by mu
	prev    map[[16]byte]struct{} // nonces of the generation before; guarded by mu
	rotated time.Time             // guarded by mu
}

// newNodeAuth returns the signer and verifier of clusterKey's proofs; nil
// when clusterKey is empty (then every proof is refused).
func newNodeAuth(clusterKey string, now func() time.Time) *nodeAuth {
	if clusterKey == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(clusterKey))
	m.Write([]byte("theeye/http-node-auth"))
	return &nodeAuth{key: m.Sum(nil), now: now, cur: map[[16]byte]struct{}{}, prev: map[[16]byte]struct{}{}, rotated: now()}
}

func (a *nodeAuth) mac(purpose string, p *nodeProof, r *signedRequest) [32]byte {
	bodySum := sha256.Sum256(r.body)
	credSum := sha256.Sum256([]byte(r.credentials))
	m := hmac.New(sha256.New, a.key)
	for _, s := range [...]string{nodeAuthLabel, purpose, p.node, strconv.FormatInt(p.ts, 10),
		hex.EncodeToString(p.nonce[:]), r.method, r.uri, hex.EncodeToString(bodySum[:]), hex.EncodeToString(credSum[:])} {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// sign returns the header value that proves node knows the cluster key,
// for one request.
func (a *nodeAuth) sign(purpose, node string, r *signedRequest) (string, error) {
	p := nodeProof{node: node, ts: a.now().UnixNano()}
	if _, err := rand.Read(p.nonce[:]); err != nil {
		return "", fmt.Errorf("node proof nonce: %w", err)
	}
	p.mac = a.mac(purpose, &p, r)
	return p.String(), nil
}

// verify checks header as a proof for purpose over r and returns the id of
// the node that made it. Every refusal wraps errNodeAuth and says why.
func (a *nodeAuth) verify(purpose, header string, r *signedRequest) (string, error) {
	if a == nil {
		return "", fmt.Errorf("%w: this node has no cluster key", errNodeAuth)
	}
	p, err := parseNodeProof(header)
	if err != nil {
		return "", err
	}
	now := a.now()
	if d := time.Duration(now.UnixNano() - p.ts); d > nodeAuthWindow || d < -nodeAuthWindow {
		return "", fmt.Errorf("%w: its timestamp is %s off this node's clock (allowed %s): check the clocks (NTP)",
			errNodeAuth, d.Round(time.Millisecond), nodeAuthWindow)
	}
	want := a.mac(purpose, &p, r)
	if !hmac.Equal(want[:], p.mac[:]) {
		return "", fmt.Errorf("%w: wrong MAC (another cluster key, or the request was altered)", errNodeAuth)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.rotated) >= 2*nodeAuthWindow {
		// A nonce lives in cur and then prev: at least 2 windows, more
		// than a timestamp stays acceptable.
		a.prev, a.cur, a.rotated = a.cur, make(map[[16]byte]struct{}, len(a.cur)), now
	}
	if _, ok := a.cur[p.nonce]; ok {
		return "", fmt.Errorf("%w: replayed (its nonce was seen before)", errNodeAuth)
	}
	if _, ok := a.prev[p.nonce]; ok {
		return "", fmt.Errorf("%w: replayed (its nonce was seen before)", errNodeAuth)
	}
	a.cur[p.nonce] = struct{}{}
	return p.node, nil
}

// NodeSigner signs a node's own calls to other nodes (a join) with the
// cluster key. cmd/theeye uses it; the API signs its own calls.
type NodeSigner struct {
	auth *nodeAuth
	node string
}

// NewNodeSigner returns the signer of node's calls.
func NewNodeSigner(clusterKey, node string) (*NodeSigner, error) {
	if clusterKey == "" {
		return nil, errors.New("node signer: no cluster key")
	}
	return &NodeSigner{auth: newNodeAuth(clusterKey, time.Now), node: node}, nil
}

// Sign returns the X-Eye-Node-Auth value for a call of method to uri
// (the path and query) with body.
func (s *NodeSigner) Sign(method, uri string, body []byte) (string, error) {
	return s.auth.sign(purposeCall, s.node, &signedRequest{method: method, uri: uri, body: body})
}
