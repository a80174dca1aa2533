package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
)

// Erasure of a session (API.md, "Data lifecycle"). A deletion is a log
// entry at a position (opErase: its Raft index is its ID, the log's last
// seq its AtSeq), so every node erases the same events. On each node the
// eraser drives it through the stages of theeye.EraseKeys..EraseDone,
// recorded by the index, so a restart resumes where it was:
//
//  1. the index deletes every key of the session's events up to AtSeq
//     (once it has indexed AtSeq) and records their seqs;
//  2. log/ rewrites, in place, the envelopes of those seqs into
//     tombstones (log.Erase), and forensic copies of damaged segments
//     (.broken) go;
//  3. a local snapshot newer than the last entry that carried one of the
//     events is taken (a snapshot received from a leader, which carries
//     frames, does not count), the older snapshots are deleted, the Raft
//     log store deletes its entries up to there and purges them from its
//     files (compaction, WAL turned over);
//  4. the index compacts the key ranges it deleted and turns its WAL over.
//
// Only then is the deletion done on the node. Later events of the session
// (seq > AtSeq) are kept. A follower that catches up from a snapshot taken
// before the deletion, or whose leader had not erased its log yet, holds
// the events again in log/ for a while: its own eraser finds the deletion
// in the state and erases them, since the stages run on every node from
// what that node holds.

// ErasureIndex is the index's part of an erasure (index.Index satisfies
// it).
type ErasureIndex interface {
	IndexedSeq() uint64
	EraseSessionKeys(id uint64, session string, atSeq uint64) (done bool, err error)
	ErasureState(id uint64) (stage int, seqs []uint64, err error)
	SetErasureStage(id uint64, stage int) error
	CompactErased(ctx context.Context, id uint64) error
}

// SetErasureIndex attaches the index's part of erasures; until it is
// called no deletion runs on this node.
func (n *Node) SetErasureIndex(ix ErasureIndex) {
	n.eraseIndex.Store(&ix)
	select {
	case n.eraseKick <- struct{}{}:
	default:
	}
}

// EraseSession records a deletion of session's events logged up to now
// and returns it with its ID and AtSeq. Leader only.
func (n *Node) EraseSession(ctx context.Context, session string, now time.Time) (theeye.Deletion, error) {
	return applyConfig[theeye.Deletion](ctx, n, &command{Op: opErase, Deletion: &theeye.Deletion{SessionID: session, RequestedAt: now}})
}

// Deletion returns the deletion with id, as replicated.
func (n *Node) Deletion(id uint64) (theeye.Deletion, bool) {
	ds := n.state.get().Deletions
	i, ok := slices.BinarySearchFunc(ds, id, func(d theeye.Deletion, id uint64) int {
		switch {
		case d.ID < id:
			return -1
		case d.ID > id:
			return 1
		}
		return 0
	})
	if !ok {
		return theeye.Deletion{}, false
	}
	return ds[i], true
}

// eraseLoop runs the deletions this node has not finished, in ID order,
// whenever the state changes (and every few seconds, for a deletion that
// waits for the index), until the node closes.
func (n *Node) eraseLoop() {
	defer n.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.closing
		cancel()
	}()
	for {
		changed := n.state.changedCh()
		if err := n.runDeletions(ctx); err != nil && ctx.Err() == nil {
			n.logger.Warn("erasure; retrying", "err", err)
		}
		select {
		case <-n.closing:
			return
		case <-changed:
		case <-n.eraseKick:
		case <-t.C:
		}
	}
}

func (n *Node) runDeletions(ctx context.Context) error {
	p := n.eraseIndex.Load()
	if p == nil {
		return nil
	}
	ix := *p
	for _, d := range n.state.get().Deletions {
		done, err := n.runDeletion(ctx, ix, d)
		if err != nil {
			return fmt.Errorf("deletion %d: %w", d.ID, err)
		}
		if !done {
			return nil // waits for the index: the later ones wait too
		}
	}
	return nil
}

// runDeletion takes d as far as it goes now: to EraseDone, or until the
// index has to catch up with d.AtSeq (done false).
func (n *Node) runDeletion(ctx context.Context, ix ErasureIndex, d theeye.Deletion) (done bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		stage, seqs, err := ix.ErasureState(d.ID)
		if err != nil {
			return false, err
		}
		switch stage {
		case theeye.EraseDone:
			return true, nil
		case theeye.EraseKeys:
			if ix.IndexedSeq() < d.AtSeq {
				return false, nil // what the index has not indexed it cannot find
			}
			if _, err := ix.EraseSessionKeys(d.ID, d.SessionID, d.AtSeq); err != nil {
				return false, err
			}
		case theeye.EraseLog:
			if _, err := n.log.Erase(seqs); err != nil {
				return false, fmt.Errorf("erase from log/: %w", err)
			}
			if err := removeBroken(n.cfg.Log); err != nil {
				return false, err
			}
			if err := ix.SetErasureStage(d.ID, theeye.EraseRaft); err != nil {
				return false, err
			}
		case theeye.EraseRaft:
			if err := n.purgeRaft(ctx, seqs); err != nil {
				return false, err
			}
			if err := ix.SetErasureStage(d.ID, theeye.EraseCompact); err != nil {
				return false, err
			}
		case theeye.EraseCompact:
			if err := ix.CompactErased(ctx, d.ID); err != nil {
				return false, err
			}
			if err := ix.SetErasureStage(d.ID, theeye.EraseDone); err != nil {
				return false, err
			}
			n.logger.Info("session erased", "deletion", d.ID, "events", len(seqs), "at_seq", d.AtSeq)
		default:
			return false, fmt.Errorf("unknown erasure stage %d", stage)
		}
	}
}

// removeBroken deletes log/'s forensic copies of damaged segments: they
// may hold erased events.
func removeBroken(l *log.Log) error {
	matches, err := filepath.Glob(filepath.Join(l.Dir(), "*.broken*"))
	if err != nil {
		return fmt.Errorf("list broken segment copies: %w", err)
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			return fmt.Errorf("remove %s: %w", m, err)
		}
	}
	return nil
}

// purgeRaft makes the Raft log store and the snapshots hold none of the
// events of seqs: a local snapshot past the last entry that carried one,
// the older snapshots deleted, the log store's entries up to it deleted and
// purged from its files.
func (n *Node) purgeRaft(ctx context.Context, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	fi, found, err := n.log.FrameOf(seqs[len(seqs)-1])
	if err != nil {
		return fmt.Errorf("find the entry of seq %d: %w", seqs[len(seqs)-1], err)
	}
	upTo := uint64(0)
	if found {
		upTo = fi.RaftIndex
	}
	if err := n.localSnapshotPast(ctx, upTo); err != nil {
		return err
	}
	if first, err := n.logStore.FirstIndex(); err == nil && first != 0 && first <= upTo {
		if err := n.logStore.DeleteRange(first, upTo); err != nil {
			return fmt.Errorf("truncate the Raft log store: %w", err)
		}
	}
	if err := n.logStore.Purge(ctx); err != nil {
		return err
	}
	return nil
}

// localSnapshotPast makes the newest stored snapshot one this node took
// (no frames in it) at Raft index upTo or later, and deletes the older
// ones. When Raft has nothing new to snapshot, the leader appends a no-op
// entry, and a follower waits for the next entry.
func (n *Node) localSnapshotPast(ctx context.Context, upTo uint64) error {
	for {
		ok, err := n.newestSnapshotIsLocal(upTo)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		err = n.raft.Snapshot().Error()
		switch {
		case err == nil:
			continue
		case errors.Is(err, raft.ErrNothingNewToSnapshot):
			if n.IsLeader() {
				if err := n.applyCommand(ctx, &command{Op: opNoop}); err != nil && !errors.Is(err, ErrNotLeader) {
					return fmt.Errorf("a no-op entry to snapshot past: %w", err)
				}
				continue
			}
		default:
			return fmt.Errorf("snapshot: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	metas, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	for _, m := range metas[1:] {
		if err := os.RemoveAll(filepath.Join(n.cfg.Dir, "snapshots", "snapshots", m.ID)); err != nil {
			return fmt.Errorf("delete snapshot %s: %w", m.ID, err)
		}
	}
	return nil
}

// newestSnapshotIsLocal reports whether the newest stored snapshot is at
// Raft index upTo or later and holds no frames.
func (n *Node) newestSnapshotIsLocal(upTo uint64) (bool, error) {
	metas, err := n.snaps.List()
	if err != nil {
		return false, fmt.Errorf("list snapshots: %w", err)
	}
	if len(metas) == 0 || metas[0].Index < upTo {
		return false, nil
	}
	sm, err := n.snaps.readMeta(metas[0].ID)
	if err != nil {
		return false, err
	}
	return !sm.Frames, nil
}
