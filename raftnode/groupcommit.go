package raftnode

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
)

// appendReq is one ingest request waiting to be part of a Raft entry.
type appendReq struct {
	payload []byte // encoded envelopes, uncompressed
	count   int
	done    chan appendResp // buffered: the waiter never blocks on it
}

type appendResp struct {
	lastSeq uint64
	err     error
}

// pending is one entry handed to raft.Apply and the requests it carries,
// in entry order.
type pending struct {
	fut   raft.ApplyFuture
	reqs  []*appendReq
	start time.Time
}

// Append replicates events and returns the seq of the last one, once the
// Raft entry holding them is committed and applied on this node (the
// leader): that is the durability point of invariant 1. Concurrent calls
// are group-committed into shared entries. On a follower it returns
// ErrNotLeader. If ctx ends first, the events may still be committed; a
// client retry with the same ids is then deduplicated by the indexer.
func (n *Node) Append(ctx context.Context, envs []theeye.Envelope) (uint64, error) {
	if len(envs) == 0 {
		return 0, theeye.Errorf(theeye.EEmptyBatch, "no events")
	}
	select {
	case <-n.closing:
		return 0, ErrClosed
	default:
	}
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	size := 0
	for i := range envs {
		size += log.EnvelopeSize(&envs[i])
	}
	payload := make([]byte, 0, size)
	for i := range envs {
		payload = log.AppendEnvelope(payload, &envs[i])
	}
	req := &appendReq{payload: payload, count: len(envs), done: make(chan appendResp, 1)}
	// Counted before the send: the commit loop may answer (and uncount)
	// the request before this goroutine runs again.
	n.queued.Add(int64(len(envs)))
	select {
	case n.reqCh <- req:
	case <-ctx.Done():
		n.queued.Add(-int64(len(envs)))
		return 0, fmt.Errorf("queue events: %w", ctx.Err())
	case <-n.closing:
		n.queued.Add(-int64(len(envs)))
		return 0, ErrClosed
	}
	select {
	case r := <-req.done:
		return r.lastSeq, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("wait for commit: %w", ctx.Err())
	}
}

// QueueDepth returns how many events are acknowledged to nobody yet:
// queued for a Raft entry or in an entry not yet applied (flow control
// reads it: they are lag the index cannot see).
func (n *Node) QueueDepth() int { return int(n.queued.Load()) }

// commitLoop takes a slot (at most MaxInflight entries in flight), then
// gathers every request already waiting, up to the batch bounds, into one
// entry. While all slots are busy requests queue up, so the entries grow
// with the load: no timer is needed to batch.
func (n *Node) commitLoop() {
	defer n.wg.Done()
	defer close(n.pendingCh)
	var raw []byte
	for {
		select {
		case n.slots <- struct{}{}:
		case <-n.closing:
			n.failQueued()
			return
		}
		var first *appendReq
		select {
		case first = <-n.reqCh:
		case <-n.closing:
			<-n.slots
			n.failQueued()
			return
		}
		reqs := []*appendReq{first}
		count, size := first.count, len(first.payload)
	gather:
		for count < n.cfg.MaxBatchEvents && size < n.cfg.MaxBatchBytes {
			select {
			case r := <-n.reqCh:
				reqs = append(reqs, r)
				count += r.count
				size += len(r.payload)
			default:
				break gather
			}
		}
		raw = raw[:0]
		for _, r := range reqs {
			raw = append(raw, r.payload...)
		}
		entry, err := n.buildEntry(raw, count)
		if err != nil {
			<-n.slots
			for _, r := range reqs {
				n.queued.Add(-int64(r.count))
				r.done <- appendResp{err: err}
			}
			continue
		}
		n.m.batchEvents.Observe(float64(count))
		fut := n.raft.Apply(entry, n.cfg.ApplyTimeout)
		n.pendingCh <- &pending{fut: fut, reqs: reqs, start: time.Now()}
	}
}

func (n *Node) buildEntry(raw []byte, count int) ([]byte, error) {
	entry := encodeEventsEntry(make([]byte, 0, eventsHeaderLen+len(raw)/2+64), n.cfg.Codec, count, nil)
	entry, err := n.compressor.Compress(n.cfg.Codec, entry, raw)
	if err != nil {
		return nil, fmt.Errorf("compress entry: %w", err)
	}
	return entry, nil
}

// waitLoop waits for entries in proposal order and answers their requests.
func (n *Node) waitLoop() {
	defer n.wg.Done()
	for p := range n.pendingCh {
		err := p.fut.Error()
		<-n.slots
		n.m.applySeconds.Observe(time.Since(p.start).Seconds())
		var res applyResult
		if err == nil {
			res, _ = p.fut.Response().(applyResult)
			err = res.err
			if err == nil && res.firstSeq == 0 {
				err = fmt.Errorf("raft apply: entry applied without a seq")
			}
		} else {
			err = raftErr(err)
		}
		seq := res.firstSeq
		for _, r := range p.reqs {
			n.queued.Add(-int64(r.count))
			if err != nil {
				r.done <- appendResp{err: err}
				continue
			}
			seq += uint64(r.count)
			r.done <- appendResp{lastSeq: seq - 1}
		}
		n.m.entries.Inc()
	}
}

// failQueued answers every queued request with ErrClosed.
func (n *Node) failQueued() {
	for {
		select {
		case r := <-n.reqCh:
			n.queued.Add(-int64(r.count))
			r.done <- appendResp{err: ErrClosed}
		default:
			return
		}
	}
}
