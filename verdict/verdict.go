// Package verdict owns the decision whether an event is valid: the
// envelope and timestamp checks of theeye.ParseEvent under the cluster's
// validation policy, and the JSON Schema registered for the event's type
// (compiled here, cached by version). Indexing and revalidation both call
// Judge; what judges an event is the replicated rules (schemas and cluster
// config versions) in force at a point of the cluster's history, never a
// node's flags or clock, so every node and every replay reaches the same
// verdict (invariants 3 and 10).
package verdict

import (
	"fmt"
	"sync"

	"github.com/theeye/theeye"
)

// Rules is the replicated state verdicts depend on (raftnode.Node
// satisfies it). Both methods return slices in version order that the
// caller must not modify, and must be safe for concurrent use.
type Rules interface {
	// SchemaVersions returns every version of category + name's schema,
	// nil when none.
	SchemaVersions(category, name string) []theeye.Schema
	// ConfigVersions returns every version of the cluster config, nil
	// before the first (then theeye.DefaultClusterConfig judges).
	ConfigVersions() []theeye.ConfigVersion
}

// At is the point of the cluster's history whose rules judge an event.
type At struct {
	seq    uint64 // the rules registered before the event at seq was logged
	before uint64 // else: the rules registered by commands before this Raft index
}

// AtSeq is the point of indexing: the rules in force when the event at seq
// was logged (versions with EffectiveSeq < seq).
func AtSeq(seq uint64) At { return At{seq: seq} }

// AsOf is the point of a revalidation request: the rules registered by
// commands before Raft index id, the request's own index (versions with
// Index < id). A revalidation judges by the rules of the day it was asked.
func AsOf(id uint64) At { return At{before: id} }

// in reports whether a version applied at (effectiveSeq, index) is in
// force at a.
func (a At) in(effectiveSeq, index uint64) bool {
	if a.before != 0 {
		return index < a.before
	}
	return effectiveSeq < a.seq
}

// Judge decides verdicts by its Rules. It is safe for concurrent use.
type Judge struct {
	rules Rules

	mu    sync.Mutex
	cache map[schemaID]compiled // guarded by mu
}

type schemaID struct {
	category, name string
	version        int
}

type compiled struct {
	s   *CompiledSchema
	err error // the registry refuses what does not compile; kept for a library change
}

// New returns the judge of rules; nil rules judge by the default config
// with no schemas.
func New(rules Rules) *Judge {
	return &Judge{rules: rules, cache: map[schemaID]compiled{}}
}

// Judge parses env's raw event and judges it by the rules in force at at:
// the cluster config's policy (timestamps against the envelope's
// received_at, never the wall clock), then, when the category, name and
// data parsed, the schema of its type (or unknown_event_type where the
// config rejects unknown types). It returns the parsed event (as much as
// could be read) and every reason it fails; none means valid.
func (j *Judge) Judge(at At, env *theeye.Envelope) (theeye.Event, []theeye.Reason) {
	cfg := j.config(at)
	ev, reasons := theeye.ParseValidEvent(env.Raw, env.ReceivedTime(), cfg.Policy())
	if ev.Category == "" || ev.Name == "" || ev.Data == nil {
		return ev, reasons
	}
	return ev, append(reasons, j.schema(at, cfg, &ev)...)
}

// Config returns the cluster config in force at at.
func (j *Judge) Config(at At) theeye.ClusterConfig { return j.config(at) }

func (j *Judge) config(at At) theeye.ClusterConfig {
	if j.rules == nil {
		return theeye.DefaultClusterConfig()
	}
	vs := j.rules.ConfigVersions()
	for i := len(vs) - 1; i >= 0; i-- {
		if at.in(vs[i].EffectiveSeq, vs[i].Index) {
			return vs[i].Config
		}
	}
	return theeye.DefaultClusterConfig()
}

func (j *Judge) schema(at At, cfg theeye.ClusterConfig, ev *theeye.Event) []theeye.Reason {
	var vs []theeye.Schema
	if j.rules != nil {
		vs = j.rules.SchemaVersions(ev.Category, ev.Name)
	}
	i := len(vs) - 1
	for i >= 0 && !at.in(vs[i].EffectiveSeq, vs[i].Index) {
		i--
	}
	if i < 0 {
		if cfg.UnknownTypes == theeye.UnknownReject {
			return []theeye.Reason{{Code: theeye.ReasonUnknownEventType, Field: "/name",
				Message: fmt.Sprintf("no schema is registered for category %q, name %q, and this cluster rejects unknown event types", ev.Category, ev.Name)}}
		}
		return nil
	}
	c := j.compiled(&vs[i])
	if c.err != nil {
		return []theeye.Reason{{Code: theeye.ReasonSchemaViolation, Field: "/data",
			Message: fmt.Sprintf("schema version %d does not compile: %v", vs[i].Version, c.err)}}
	}
	return c.s.Validate(ev.Data)
}

func (j *Judge) compiled(v *theeye.Schema) compiled {
	id := schemaID{v.Category, v.Name, v.Version}
	j.mu.Lock()
	c, ok := j.cache[id]
	j.mu.Unlock()
	if ok {
		return c
	}
	c.s, c.err = CompileSchema(v.Schema)
	j.mu.Lock()
	j.cache[id] = c
	j.mu.Unlock()
	return c
}
