package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
)

// Headers nodes use between themselves.
const (
	// HeaderForwarded marks a request a follower forwarded to the leader
	// (its value is the follower's id): it is never forwarded again.
	HeaderForwarded = "X-Eye-Forwarded"
	// HeaderClusterKey carries the shared cluster secret (--cluster-key)
	// on joins, forwarded requests and node-to-node status calls.
	HeaderClusterKey = "X-Eye-Cluster-Key"
)

// forwardTimeout bounds one forwarded request.
const forwardTimeout = 30 * time.Second

// clusterKeyOK reports whether r carries the cluster key. With no key
// configured (a development cluster) any member may forward.
func (s *Server) clusterKeyOK(r *http.Request) bool {
	if s.cfg.ClusterKey == "" {
		return true
	}
	got := sha256.Sum256([]byte(r.Header.Get(HeaderClusterKey)))
	want := sha256.Sum256([]byte(s.cfg.ClusterKey))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// leaderOnly runs a write on the leader: on a follower the request is
// forwarded, once, to the leader and its answer relayed, so a client never
// has to find the leader. A forwarded request that reaches a node that is
// no longer the leader gets 503 + Retry-After, never a second hop.
func (s *Server) leaderOnly(h func(http.ResponseWriter, *http.Request, httprouter.Params, *theeye.Key)) func(http.ResponseWriter, *http.Request, httprouter.Params, *theeye.Key) {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, k *theeye.Key) {
		forwarded := r.Header.Get(HeaderForwarded) != ""
		if forwarded && !s.clusterKeyOK(r) {
			s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "a forwarded request must carry the cluster key"))
			return
		}
		if s.cfg.Node.IsLeader() {
			h(w, r, ps, k)
			return
		}
		if forwarded {
			s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "forwarded by %s to this node, which is not the leader (any more); retry", r.Header.Get(HeaderForwarded)))
			return
		}
		leaderID, leaderURL := s.cfg.Node.Leader()
		if leaderID == "" || leaderURL == "" {
			s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "the cluster has no leader right now; retry"))
			return
		}
		s.forward(w, r, leaderID, leaderURL)
	}
}

func (s *Server) forward(w http.ResponseWriter, r *http.Request, leaderID, leaderURL string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody+1))
	if err != nil {
		s.writeError(w, r, theeye.Errorf(theeye.EBodyTooLarge, "the body is over the %d-byte limit", s.cfg.MaxBody))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, leaderURL+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("forward to %s: %w", leaderID, err))
		return
	}
	for _, h := range []string{"Authorization", "Content-Type", "Content-Encoding", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(HeaderForwarded, s.cfg.Node.ID())
	if s.cfg.ClusterKey != "" {
		req.Header.Set(HeaderClusterKey, s.cfg.ClusterKey)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.m.forwards.WithLabelValues("error").Inc()
		s.writeError(w, r, theeye.Errorf(theeye.EUnavailable, "could not reach the leader %s at %s: %v; retry", leaderID, leaderURL, err))
		return
	}
	defer resp.Body.Close()
	s.m.forwards.WithLabelValues(fmt.Sprint(resp.StatusCode)).Inc()
	for _, h := range []string{"Content-Type", "Retry-After", "X-Eye-Indexed-Seq"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("X-Eye-Leader", leaderID)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// authCluster accepts the cluster key in place of an admin key (joins).
// A cluster key that is present but wrong is refused with 403.
func (s *Server) authCluster(scope theeye.Scope, h func(http.ResponseWriter, *http.Request, httprouter.Params, *theeye.Key)) httprouter.Handle {
	withKey := s.auth(scope, h)
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if _, ok := r.Header[http.CanonicalHeaderKey(HeaderClusterKey)]; !ok {
			withKey(w, r, ps)
			return
		}
		if s.cfg.ClusterKey == "" {
			s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "this cluster has no cluster key; use an admin key"))
			return
		}
		if !s.clusterKeyOK(r) {
			s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "wrong cluster key"))
			return
		}
		h(w, r, ps, &theeye.Key{ID: "cluster", Name: "cluster", Scopes: []theeye.Scope{theeye.ScopeAdmin}})
	}
}

// selfStatus is what one node reports of itself to the others.
type selfStatus struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Leader     string `json:"leader"`
	AppliedSeq uint64 `json:"applied_seq"`
	IndexedSeq uint64 `json:"indexed_seq"`
}

func (s *Server) self() selfStatus {
	st := selfStatus{ID: s.cfg.Node.ID(), AppliedSeq: s.cfg.Node.AppliedSeq(), IndexedSeq: s.cfg.Index.IndexedSeq()}
	st.Leader, _ = s.cfg.Node.Leader()
	if stats, err := s.cfg.Node.Stats(); err == nil {
		st.State = stats.State
	}
	return st
}

func (s *Server) handleSelf(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *theeye.Key) {
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
	req.Header.Set(HeaderClusterKey, s.cfg.ClusterKey)
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
