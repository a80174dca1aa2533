package raftnode

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
)

// fsm is the thin raft.FSM over Node (rqlite's shape): every method needs
// state the Node owns.
type fsm struct{ n *Node }

func (f fsm) Apply(l *raft.Log) any               { return f.n.fsmApply(l) }
func (f fsm) Snapshot() (raft.FSMSnapshot, error) { return f.n.fsmSnapshot() }
func (f fsm) Restore(rc io.ReadCloser) error      { return f.n.fsmRestore(rc) }

// applyResult is what fsmApply returns to the future of the leader that
// proposed the entry.
type applyResult struct {
	firstSeq uint64 // events entries: the seq of the entry's first event
	value    any    // config entries: what the command produced, if anything
	err      error  // a deterministic refusal (config), never an I/O error
}

// fsmApply applies one committed entry. It is idempotent across restarts
// (invariant 4): log/ frames carry the Raft index they came from and the
// state file carries the index of the last config entry, so an entry that
// is already held is skipped. An I/O failure here cannot be reported to
// Raft (hashicorp/raft#307): a write that failed (a full disk) is retried,
// with backoff, until it succeeds, the node unready meanwhile (retryIO);
// only a failed fsync of log/, after which what the kernel holds is
// unknown, stops the node through cfg.Fatal so that Raft replays the entry
// on restart.
func (n *Node) fsmApply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	b := l.Data
	if len(b) < 2 || b[0] != entryVersion {
		n.logger.Error("skipping entry of an unknown version", "index", l.Index)
		n.m.unknownEntries.Inc()
		return applyResult{err: theeye.Errorf(theeye.EInternal, "unknown entry version")}
	}
	switch b[1] {
	case entryEvents:
		if l.Index <= n.log.LastRaftIndex() {
			return applyResult{}
		}
		codec, count, payload, err := decodeEventsEntry(b)
		if err != nil {
			n.logger.Error("skipping malformed events entry", "index", l.Index, "err", err)
			n.m.unknownEntries.Inc()
			return applyResult{err: theeye.Errorf(theeye.EInternal, "malformed events entry: %v", err)}
		}
		var first uint64
		err = n.retryIO("log", func() error {
			var err error
			first, err = n.log.Append(log.Frame{RaftIndex: l.Index, Count: count, Codec: codec, Payload: payload})
			return err
		})
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				n.fatal(fmt.Errorf("apply entry %d to log: %w", l.Index, err))
			}
			return applyResult{err: err}
		}
		n.appliedSeq.Store(first + uint64(count) - 1)
		return applyResult{firstSeq: first}
	case entryConfig:
		cur := n.state.get()
		if l.Index <= cur.Index {
			return applyResult{}
		}
		var cmd command
		if err := json.Unmarshal(b[2:], &cmd); err != nil {
			n.logger.Error("skipping malformed config entry", "index", l.Index, "err", err)
			return applyResult{err: theeye.Errorf(theeye.EInvalidRequest, "malformed config entry: %v", err)}
		}
		next := cur.clone()
		next.Index = l.Index
		value, refusal := next.apply(&cmd, applyPos{index: l.Index, lastSeq: n.log.LastSeq()})
		if refusal != nil {
			// The state does not change, but its index moves on so a
			// replay skips this entry too.
			next = cur.clone()
			next.Index = l.Index
		}
		if err := n.retryIO("state", func() error { return n.state.save(next) }); err != nil {
			return applyResult{err: err} // closed
		}
		return applyResult{value: value, err: refusal}
	default:
		n.logger.Error("skipping entry of an unknown type", "index", l.Index, "type", b[1])
		n.m.unknownEntries.Inc()
		return applyResult{err: theeye.Errorf(theeye.EInternal, "unknown entry type %d", b[1])}
	}
}

// snapshotMeta is what a snapshot holds: the replicated state and how far
// log/ reached. The events themselves stay in log/, which Persist makes
// durable before Raft may drop its own copy of them.
type snapshotMeta struct {
	// Frames is true in a stream that carries log/ frames after the meta
	// line (snapshot.go), FrameFormat the encoding of those frames: 2 is
	// log.AppendFrame's. A v1 stream (Frames without FrameFormat) is
	// refused.
	Frames      bool `json:"frames"`
	FrameFormat int  `json:"frame_format,omitempty"`
	// FirstSeq is the seq the stream's frames start at (the sender's log
	// after retention cuts; 0 or 1: the beginning).
	FirstSeq      uint64 `json:"first_seq,omitempty"`
	LastSeq       uint64 `json:"last_seq"`
	LastRaftIndex uint64 `json:"last_raft_index"`
	State         *State `json:"state"`
}

type fsmSnapshot struct {
	n    *Node
	meta snapshotMeta
}

// fsmSnapshot captures a position only; Raft calls it between applies, so
// log/ and the state agree with each other here.
func (n *Node) fsmSnapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{n: n, meta: snapshotMeta{
		LastSeq:       n.log.LastSeq(),
		LastRaftIndex: n.log.LastRaftIndex(),
		State:         n.state.get(),
	}}, nil
}

// Persist fsyncs log/ through the snapshot's position before the snapshot
// is complete, so Raft never truncates entries whose events are only in
// the page cache (invariant 4).
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.n.log.Sync(); err != nil {
		sink.Cancel()
		return fmt.Errorf("sync log before snapshot: %w", err)
	}
	if err := json.NewEncoder(sink).Encode(&s.meta); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// fsmRestore brings log/ up to the snapshot: frames it already holds are
// skipped (a no-op when the local log covers the snapshot), the rest are
// appended as they come; then the snapshot's state is adopted when newer.
func (n *Node) fsmRestore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	var meta snapshotMeta
	if err := json.Unmarshal(line, &meta); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	if meta.Frames {
		if meta.FrameFormat != snapshotFrameFormat {
			return fmt.Errorf("restore snapshot: frame format %d, want %d: the leader runs another version of The Eye", meta.FrameFormat, snapshotFrameFormat)
		}
		if err := n.restoreFrames(br, meta.FirstSeq, meta.LastSeq); err != nil {
			return err
		}
	}
	if n.log.LastSeq() < meta.LastSeq {
		return fmt.Errorf("restore snapshot: local log ends at seq %d, snapshot at %d, and the snapshot carries no frames", n.log.LastSeq(), meta.LastSeq)
	}
	if meta.State != nil && meta.State.Index > n.state.get().Index {
		if err := n.state.save(meta.State); err != nil {
			return fmt.Errorf("restore state: %w", err)
		}
	}
	return nil
}
