package api

import (
	"net/http"
	"strings"
	"sync"

	"github.com/julienschmidt/httprouter"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/raftnode"
)

type nodeJSON struct {
	ID         string  `json:"id"`
	RaftAddr   string  `json:"raft_addr"`
	HTTPAddr   string  `json:"http_addr"`
	Suffrage   string  `json:"suffrage"`
	State      string  `json:"state"`
	AppliedSeq *uint64 `json:"applied_seq"`
	IndexedSeq *uint64 `json:"indexed_seq"`
	FirstSeq   *uint64 `json:"first_seq"`
}

// handleCluster is GET /v1/cluster: the membership as this node sees it,
// with each member's own report of its state and progress (asked over
// HTTP, one second at most; an unreachable member shows as "unreachable"
// with null seqs).
func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *caller) {
	st, err := s.cfg.Node.Stats()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	leader, _ := s.cfg.Node.Leader()
	nodes := make([]nodeJSON, len(st.Servers))
	var wg sync.WaitGroup
	for i, sv := range st.Servers {
		nodes[i] = nodeJSON{ID: sv.ID, RaftAddr: sv.RaftAddr, HTTPAddr: sv.HTTPAddr, Suffrage: strings.ToLower(sv.Suffrage), State: "unreachable"}
		if sv.ID == s.cfg.Node.ID() {
			me := s.self()
			nodes[i].State = strings.ToLower(me.State)
			nodes[i].AppliedSeq, nodes[i].IndexedSeq, nodes[i].FirstSeq = &me.AppliedSeq, &me.IndexedSeq, &me.FirstSeq
			continue
		}
		if sv.HTTPAddr == "" {
			continue
		}
		wg.Add(1)
		go func(n *nodeJSON) {
			defer wg.Done()
			ps, err := s.peerStatus(r.Context(), n.HTTPAddr)
			if err != nil {
				return
			}
			n.State = strings.ToLower(ps.State)
			n.AppliedSeq, n.IndexedSeq, n.FirstSeq = &ps.AppliedSeq, &ps.IndexedSeq, &ps.FirstSeq
		}(&nodes[i])
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"leader": leader, "nodes": nodes, "retained_from": s.cfg.Node.RetainFrom()})
}

func (s *Server) handleAddNode(w http.ResponseWriter, r *http.Request, _ httprouter.Params, c *caller) {
	var req raftnode.NodeInfo
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		s.writeError(w, r, theeye.Errorf(theeye.EInvalidRequest, "id, raft_addr and http_addr are all required"))
		return
	}
	if c.node != "" && c.node != req.ID {
		// A node proves the cluster key to join itself, nothing more.
		s.writeError(w, r, theeye.Errorf(theeye.EForbidden, "node %q may add only itself, not %q; membership changes need an admin key", c.node, req.ID))
		return
	}
	if err := s.cfg.Node.AddVoter(r.Context(), req); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (s *Server) handleRemoveNode(w http.ResponseWriter, r *http.Request, ps httprouter.Params, _ *caller) {
	id := ps.ByName("id")
	if err := s.cfg.Node.RemoveServer(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "removed": true})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": s.cfg.Node.ID()})
}

// handleReadyz: ready once a leader is known and the indexer is within
// ReadyLag events of what this node has applied.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := s.ready(); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "node": s.cfg.Node.ID()})
}

// ready says why the node is not ready (no leader known, its index too
// far behind, its disk below the watermark, a store it cannot write), or
// nil.
func (s *Server) ready() error {
	if id, _ := s.cfg.Node.Leader(); id == "" {
		return theeye.Errorf(theeye.EUnavailable, "not ready: no leader known")
	}
	if err := s.cfg.Node.Healthy(); err != nil {
		return theeye.Errorf(theeye.EUnavailable, "not ready: %v", err)
	}
	if err := s.cfg.Node.CatchingUp(); err != nil {
		return theeye.Errorf(theeye.EUnavailable, "not ready: catching up with the cluster: %v", err)
	}
	if err := s.cfg.Index.Healthy(); err != nil {
		return theeye.Errorf(theeye.EUnavailable, "not ready: %v", err)
	}
	if err := s.disk.notReady(); err != nil {
		return err
	}
	applied, indexed := s.cfg.Node.AppliedSeq(), s.cfg.Index.IndexedSeq()
	if applied > indexed && applied-indexed > s.cfg.ReadyLag {
		return theeye.Errorf(theeye.EUnavailable, "not ready: the indexer is %d events behind the log (limit %d)", applied-indexed, s.cfg.ReadyLag).
			WithDetail("applied_seq", applied).WithDetail("indexed_seq", indexed)
	}
	return nil
}
