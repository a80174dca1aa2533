package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
)

// forwardTimeout bounds one forwarded request.
const forwardTimeout = 30 * time.Second

// leaderOnly runs a write on the leader: on a follower the request is
// forwarded, once, to the leader and its answer relayed, so a client never
// has to find the leader. A forwarded request that reaches a node that is
// no longer the leader gets 503 + Retry-After, never a second hop.
func (s *Server) leaderOnly(h handler) handler { return s.toLeader(h, nil) }

// leaderOnlyIngest is leaderOnly for ingest: while the leader's last
// answer to a forwarded batch was "slow down" (429 overloaded or 507),
// this follower gives that answer itself until its Retry-After has
// passed, without reading the body or sending it on, so an overloaded
// leader is not also made to read what it will refuse.
func (s *Server) leaderOnlyIngest(h handler) handler { return s.toLeader(h, &s.ingestRefusal) }

func (s *Server) toLeader(h handler, keep *refusalCache) handler {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, c *caller) {
		if s.cfg.Node.IsLeader() {
			h(w, r, ps, c)
			return
		}
		if c.forwardedBy != "" {
			s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "forwarded by %s to this node, which is not the leader (any more); retry", c.forwardedBy))
			return
		}
		leaderID, leaderURL := s.cfg.Node.Leader()
		if leaderID == "" || leaderURL == "" {
			s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "the cluster has no leader right now; retry"))
			return
		}
		if keep != nil && keep.answer(w, s.cfg.Now(), leaderID) {
			s.m.forwards.WithLabelValues("kept").Inc()
			return
		}
		s.forward(w, r, leaderID, leaderURL, keep)
	}
}

// refusalCache is a follower's copy of the leader's last "slow down".
type refusalCache struct {
	mu     sync.Mutex
	leader string    // who said it; guarded by mu
	until  time.Time // when it lapses; guarded by mu
	status int       // guarded by mu
	body   []byte    // guarded by mu
}

// maxKeptRefusal bounds the body of a kept refusal (an error body is a
// few hundred bytes).
const maxKeptRefusal = 16 << 10

// answer writes the kept refusal if the same leader gave it and it has
// not lapsed.
func (k *refusalCache) answer(w http.ResponseWriter, now time.Time, leader string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.leader != leader || !now.Before(k.until) {
		return false
	}
	secs := int(math.Ceil(k.until.Sub(now).Seconds()))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("X-Eye-Leader", leader)
	w.WriteHeader(k.status)
	w.Write(k.body)
	return true
}

// keep records resp if it is a cluster-wide "slow down" (overloaded or
// short of disk; a key's own rate limit is not), and returns its body.
func (k *refusalCache) keep(resp *http.Response, now time.Time, leader string) io.Reader {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusInsufficientStorage {
		return resp.Body
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeptRefusal+1))
	rest := io.MultiReader(bytes.NewReader(body), resp.Body)
	if err != nil || len(body) > maxKeptRefusal {
		return rest
	}
	var e errorBody
	if json.Unmarshal(body, &e) != nil || (e.Error.Code != theeye.EOverloaded && e.Error.Code != theeye.EInsufficientStorage) {
		return rest
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		return rest
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.leader, k.until, k.status, k.body = leader, now.Add(time.Duration(min(secs, maxRetryAfter))*time.Second), resp.StatusCode, body
	return rest
}

// storing wraps an admin write that stores something (an app, a key, a
// schema...) with the disk watermark: while the cluster is short of disk
// it is 507 with Retry-After. Revoking a key, changing a rate limit and
// membership stay open: they cost nothing and an operator needs them most
// when things go wrong. It runs on the leader (inside leaderOnly).
func (s *Server) storing(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, c *caller) {
		if err := s.flow.admitWrite(); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, ps, c)
	}
}

// forwardedHeaders are the request headers relayed to the leader: the
// client's own credentials (it is authorised there exactly as here) and
// what the body means. Nothing of this node's is added but its proof.
var forwardedHeaders = [...]string{"Authorization", HeaderNodeAuth, "Content-Type", "Content-Encoding", "Accept", "Last-Event-ID"}

// forwardedCredentials is what a forwarding proof binds: the credential
// headers relayed with the request.
func forwardedCredentials(h http.Header) string {
	return h.Get("Authorization") + "\n" + h.Get(HeaderNodeAuth)
}

// forward relays r to the leader with the client's credentials and this
// node's proof (X-Eye-Forwarded), and copies the answer back.
// keep, when not nil, records a "slow down" answer for leaderOnlyIngest.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, leaderID, leaderURL string, keep *refusalCache) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		s.writeError(w, r, theeye.Errorf(theeye.EBodyTooLarge, "the body is over the %d-byte limit", s.cfg.MaxBody).WithDetail("limit", s.cfg.MaxBody))
		return
	}
	if s.nodeAuth == nil {
		s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "this node has no cluster key and cannot forward to the leader %s; send the request to it", leaderID))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	uri := r.URL.RequestURI()
	req, err := http.NewRequestWithContext(ctx, r.Method, leaderURL+uri, bytes.NewReader(body))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("forward to %s: %w", leaderID, err))
		return
	}
	for _, h := range forwardedHeaders {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	proof, err := s.nodeAuth.sign(purposeForward, s.cfg.NodeID, &signedRequest{method: r.Method, uri: uri, body: body,
		credentials: forwardedCredentials(req.Header)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Header.Set(HeaderForwarded, proof)
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.m.forwards.WithLabelValues("error").Inc()
		s.logger.Warn("forward to the leader failed", "leader", leaderID, "url", leaderURL, "err", err)
		s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "could not reach the leader %s; retry", leaderID))
		return
	}
	defer resp.Body.Close()
	s.m.forwards.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	for _, h := range []string{"Content-Type", "Retry-After", "X-Eye-Indexed-Seq"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("X-Eye-Leader", leaderID)
	var answer io.Reader = resp.Body
	if keep != nil {
		answer = keep.keep(resp, s.cfg.Now(), leaderID)
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, answer)
}

// selfStatus is what one node reports of itself to the others.
type selfStatus struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Leader     string `json:"leader"`
	AppliedSeq uint64 `json:"applied_seq"`
	IndexedSeq uint64 `json:"indexed_seq"`
	FirstSeq   uint64 `json:"first_seq"`
	// Ready is what /readyz says; NotReady why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// DiskFreeBytes and DiskLow: the data dir's file system, and whether
	// it is below the node's watermark (the leader refuses writes while a
	// majority is).
	DiskFreeBytes int64 `json:"disk_free_bytes"`
	DiskLow       bool  `json:"disk_low"`
}

func (s *Server) self() selfStatus {
	st := selfStatus{ID: s.cfg.Node.ID(), AppliedSeq: s.cfg.Node.AppliedSeq(), IndexedSeq: s.cfg.Index.IndexedSeq(), FirstSeq: s.cfg.Node.FirstSeq()}
	st.Leader, _ = s.cfg.Node.Leader()
	st.State = s.cfg.Node.State()
	st.DiskFreeBytes, _, st.DiskLow = s.disk.status()
	if err := s.ready(); err != nil {
		st.NotReady = toDomainError(err).Message
	} else {
		st.Ready = true
	}
	return st
}

func (s *Server) handleSelf(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	writeJSON(w, http.StatusOK, s.self())
}

// peerStatus asks another node for its own status, briefly.
func (s *Server) peerStatus(ctx context.Context, httpAddr string) (selfStatus, error) {
	var st selfStatus
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpAddr+"/v1/cluster/self", nil)
	if err != nil {
		return st, fmt.Errorf("peer status: %w", err)
	}
	if s.nodeAuth == nil {
		return st, errors.New("peer status: this node has no cluster key")
	}
	proof, err := s.nodeAuth.sign(purposeCall, s.cfg.NodeID, &signedRequest{method: req.Method, uri: req.URL.RequestURI()})
	if err != nil {
		return st, err
	}
	req.Header.Set(HeaderNodeAuth, proof)
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("peer status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("peer status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("peer status: %w", err)
	}
	return st, nil
}
