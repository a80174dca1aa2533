package raftnode

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye/log"
)

// ErrGap is returned by Open when log/ ends below the newest snapshot and
// the missing frames can be found neither in the Raft log store nor in the
// stored snapshot: the node would go on with a hole in its seqs.
var ErrGap = errors.New("raftnode: the event log has a gap below the newest snapshot")

// checkAgainstSnapshot runs before Raft starts. With
// NoSnapshotRestoreOnStart, Raft takes every entry up to its newest
// snapshot as applied and replays only those after it, so log/ must hold
// every event up to the snapshot and state.json the snapshot's state. A
// crash while a follower installed a snapshot (before log/ was synced), or
// tail recovery of log/ dropping damaged frames below the snapshot, breaks
// that. The missing events are appended again from the Raft log store
// (which keeps TrailingLogs entries before the snapshot) or, for a
// snapshot received from a leader, from the frames stored in it; when
// neither has them, Open refuses with ErrGap rather than go on with a hole
// (and, through it, later seqs shifted on this node).
func (n *Node) checkAgainstSnapshot(snaps *snapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil
	}
	newest := metas[0]
	_, rc, err := snaps.FileSnapshotStore.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", newest.ID, err)
	}
	br := bufio.NewReaderSize(rc, 256<<10)
	defer rc.Close()
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read snapshot %s: %w", newest.ID, err)
	}
	var sm snapshotMeta
	if err := json.Unmarshal(line, &sm); err != nil {
		return fmt.Errorf("decode snapshot %s: %w", newest.ID, err)
	}
	if sm.State != nil && sm.State.Index > n.state.get().Index {
		n.logger.Warn("state.json is older than the newest snapshot; adopting the snapshot's", "state_index", n.state.get().Index, "snapshot_state_index", sm.State.Index)
		if err := n.state.save(sm.State); err != nil {
			return fmt.Errorf("adopt the snapshot's state: %w", err)
		}
	}
	if n.log.LastSeq() >= sm.LastSeq && n.log.LastRaftIndex() >= sm.LastRaftIndex {
		return nil
	}
	n.logger.Warn("the event log ends below the newest snapshot; repairing it",
		"log_last_seq", n.log.LastSeq(), "log_last_raft_index", n.log.LastRaftIndex(),
		"snapshot_last_seq", sm.LastSeq, "snapshot_last_raft_index", sm.LastRaftIndex)
	if err := n.replayFromLogStore(sm.LastRaftIndex); err != nil {
		n.logger.Warn("the Raft log store cannot fill the gap", "err", err)
	}
	if n.log.LastSeq() < sm.LastSeq && sm.Frames && sm.FrameFormat == snapshotFrameFormat {
		if err := n.restoreFrames(br, sm.FirstSeq, sm.LastSeq); err != nil {
			return fmt.Errorf("repair the event log from snapshot %s: %w", newest.ID, err)
		}
	}
	if n.log.LastSeq() < sm.LastSeq {
		return fmt.Errorf("%w: log/ ends at seq %d (Raft index %d), snapshot %s at seq %d (Raft index %d), and neither the Raft log store nor the snapshot holds the events between; remove this node's data dir and let it join again (it catches up from the leader)",
			ErrGap, n.log.LastSeq(), n.log.LastRaftIndex(), newest.ID, sm.LastSeq, sm.LastRaftIndex)
	}
	n.logger.Info("event log repaired", "last_seq", n.log.LastSeq(), "last_raft_index", n.log.LastRaftIndex())
	return nil
}

// replayFromLogStore appends to log/ the events entries after its last
// Raft index up to upTo that the Raft log store still holds, and syncs it.
func (n *Node) replayFromLogStore(upTo uint64) error {
	first, err := n.logStore.FirstIndex()
	if err != nil {
		return fmt.Errorf("first index: %w", err)
	}
	from := n.log.LastRaftIndex() + 1
	if first > from {
		return fmt.Errorf("the Raft log store starts at index %d, after %d", first, from)
	}
	var e raft.Log
	for i := from; i <= upTo; i++ {
		if err := n.logStore.GetLog(i, &e); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		b := e.Data
		if e.Type != raft.LogCommand || len(b) < 2 || b[0] != entryVersion || b[1] != entryEvents {
			continue
		}
		codec, count, payload, err := decodeEventsEntry(b)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if _, err := n.log.Append(log.Frame{RaftIndex: i, Count: count, Codec: codec, Payload: payload}); err != nil {
			return fmt.Errorf("append entry %d: %w", i, err)
		}
	}
	return n.log.Sync()
}
