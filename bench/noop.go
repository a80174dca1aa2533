package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/api"
	"github.com/theeye/theeye/index"
	"github.com/theeye/theeye/raftnode"
)

// The HTTP ceiling: the real api.Server (same router, authentication, body
// reading, splitting and envelope stamping) in front of a Node that answers
// Append at once without storing anything. Run as its own process
// (`eyebench noop`), it is what theeye would do with free storage.

// noopNode is an api.Node that stores nothing: every key is an ingest key
// of app "bench", and Append returns the next seq at once.
type noopNode struct {
	seq atomic.Uint64
}

var errNoop = errors.New("not supported by the no-op server")

func (n *noopNode) ID() string { return "noop" }
func (n *noopNode) Append(_ context.Context, envs []theeye.Envelope) (uint64, error) {
	return n.seq.Add(uint64(len(envs))), nil
}
func (n *noopNode) LookupKey(hash string) (theeye.Key, bool) {
	return theeye.Key{ID: "key_bench", Name: "bench", App: "bench", Scopes: []theeye.Scope{theeye.ScopeIngest, theeye.ScopeRead}, Hash: hash}, true
}
func (n *noopNode) Apps() []theeye.App                                            { return nil }
func (n *noopNode) Keys() []theeye.Key                                            { return nil }
func (n *noopNode) CreateApp(context.Context, theeye.App, theeye.Key) error       { return errNoop }
func (n *noopNode) CreateKey(context.Context, theeye.Key) error                   { return errNoop }
func (n *noopNode) RevokeKey(context.Context, string) error                       { return errNoop }
func (n *noopNode) SetRateLimit(context.Context, string, *theeye.RateLimit) error { return errNoop }
func (n *noopNode) Leader() (string, string)                                      { return "noop", "" }
func (n *noopNode) IsLeader() bool                                                { return true }
func (n *noopNode) FirstSeq() uint64                                              { return 1 }
func (n *noopNode) RetainFrom() uint64                                            { return 1 }
func (n *noopNode) QueueDepth() int                                               { return 0 }
func (n *noopNode) State() string                                                 { return "Leader" }
func (n *noopNode) Healthy() error                                                { return nil }
func (n *noopNode) CatchingUp() error                                             { return nil }
func (n *noopNode) AppliedSeq() uint64                                            { return n.seq.Load() }
func (n *noopNode) Stats() (raftnode.Stats, error)                                { return raftnode.Stats{}, nil }
func (n *noopNode) AddVoter(context.Context, raftnode.NodeInfo) error             { return errNoop }
func (n *noopNode) RemoveServer(context.Context, string) error                    { return errNoop }
func (n *noopNode) Backup(context.Context) (*raftnode.Backup, error)              { return nil, errNoop }
func (n *noopNode) Schemas() []theeye.Schema                                      { return nil }
func (n *noopNode) SchemaVersions(string, string) []theeye.Schema                 { return nil }
func (n *noopNode) PutSchema(context.Context, theeye.Schema) (theeye.Schema, error) {
	return theeye.Schema{}, errNoop
}
func (n *noopNode) Config() theeye.ClusterConfig { return theeye.DefaultClusterConfig() }
func (n *noopNode) SetConfig(context.Context, theeye.ConfigPatch) (theeye.ClusterConfig, error) {
	return theeye.ClusterConfig{}, errNoop
}
func (n *noopNode) Revalidations(uint64) []theeye.Revalidation { return nil }
func (n *noopNode) EraseSession(context.Context, string, time.Time) (theeye.Deletion, error) {
	return theeye.Deletion{}, errNoop
}
func (n *noopNode) Deletion(uint64) (theeye.Deletion, bool) { return theeye.Deletion{}, false }
func (n *noopNode) Revalidate(context.Context, theeye.Revalidation) (theeye.Revalidation, error) {
	return theeye.Revalidation{}, errNoop
}

// noopIndex is an api.Index with nothing in it, always caught up.
type noopIndex struct{ node *noopNode }

func (x noopIndex) ErasureState(uint64) (int, []uint64, error) { return 0, nil, errNoop }
func (x noopIndex) ErasureDoneAt(uint64) (time.Time, error)    { return time.Time{}, errNoop }
func (x noopIndex) Healthy() error                             { return nil }
func (x noopIndex) IndexedSeq() uint64                         { return x.node.seq.Load() }
func (x noopIndex) Stats() index.Stats                         { return index.Stats{} }
func (x noopIndex) WaitIndexed(context.Context, uint64) error  { return nil }
func (x noopIndex) Events(context.Context, index.EventQuery, func([]byte) error) (string, error) {
	return "", nil
}
func (x noopIndex) Errors(context.Context, index.ErrorQuery, func([]byte) error) (string, error) {
	return "", nil
}
func (x noopIndex) ErrorsSummary(context.Context, time.Time, time.Time) (index.ErrorSummary, error) {
	return index.ErrorSummary{}, nil
}
func (x noopIndex) Revalidation(uint64) (index.RevalidationResult, error) {
	return index.RevalidationResult{}, errNoop
}
func (x noopIndex) WaitRevalidation(context.Context, uint64) (index.RevalidationResult, error) {
	return index.RevalidationResult{}, errNoop
}
func (x noopIndex) EventStats(context.Context, index.StatsQuery) (index.EventStats, error) {
	return index.EventStats{}, errNoop
}
func (x noopIndex) ReadStream(_ context.Context, _ index.StreamQuery, from uint64, _, _ int, _ func(uint64, []byte) error) (uint64, error) {
	return max(from, x.node.seq.Load()+1), nil
}
func (x noopIndex) EventStatus(context.Context, string, string, uint64) (index.EventStatus, error) {
	return index.EventStatus{}, errNoop
}

// ServeNoop serves the no-op API on ln until ctx is done. It logs the same
// "theeye listening" line as theeye so the suite starts it the same way.
func ServeNoop(ctx context.Context, ln net.Listener, adminKey string, logf func(string, ...any)) error {
	node := &noopNode{}
	srv := api.New(api.Config{Node: node, Index: noopIndex{node: node}})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logf("theeye listening", "http", ln.Addr().String(), "node", "noop")
	select {
	case err := <-errc:
		return fmt.Errorf("noop server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("noop server: %w", err)
	}
	return nil
}
