package index

import (
	"fmt"
	"sync"

	"github.com/theeye/theeye"
)

// SchemaSource is the replicated schema registry as the index needs it.
// raftnode.Node satisfies it; the index never sees Raft.
type SchemaSource interface {
	// SchemaVersions returns every version of category + name's schema in
	// version order, nil when none. The index does not modify the slice.
	SchemaVersions(category, name string) []theeye.Schema
	// Revalidations returns the revalidation requests with ID > after, in
	// ID order.
	Revalidations(after uint64) []theeye.Revalidation
	// ConfigChanged returns a channel closed at the next change of the
	// registry.
	ConfigChanged() <-chan struct{}
}

// Revalidator is what the indexer needs to run revalidation requests:
// the requests, a wake-up when one arrives, and a judge that uses the
// schemas registered before a given request.
type Revalidator interface {
	Revalidations(after uint64) []theeye.Revalidation
	ConfigChanged() <-chan struct{}
	// CheckAsOf judges ev against the schema versions whose Index is below
	// id (the state the request with that ID was proposed against).
	CheckAsOf(id uint64, ev *theeye.Event) []theeye.Reason
}

// Schemas judges events against the registered JSON Schemas: it is the
// index's Checker and Revalidator. Compiled schemas are cached by
// (category, name, version), which never change once registered. It is
// safe for concurrent use.
type Schemas struct {
	src           SchemaSource
	rejectUnknown bool

	mu    sync.Mutex
	cache map[schemaID]compiledSchema // guarded by mu
}

type schemaID struct {
	category, name string
	version        int
}

type compiledSchema struct {
	s   *theeye.CompiledSchema
	err error // the registry refuses what does not compile; kept for a library change
}

// NewSchemas returns the checker of src's schemas. With rejectUnknown, an
// event of a type that has no schema in force fails with
// unknown_event_type (--unknown-types=reject).
func NewSchemas(src SchemaSource, rejectUnknown bool) *Schemas {
	return &Schemas{src: src, rejectUnknown: rejectUnknown, cache: map[schemaID]compiledSchema{}}
}

// Check judges ev, the event at seq, against the version of its type's
// schema in force at seq: the last one whose EffectiveSeq is below seq.
func (s *Schemas) Check(seq uint64, ev *theeye.Event) []theeye.Reason {
	vs := s.src.SchemaVersions(ev.Category, ev.Name)
	i := len(vs) - 1
	for i >= 0 && vs[i].EffectiveSeq >= seq {
		i--
	}
	return s.judge(vs, i, ev)
}

// CheckAsOf judges ev against the last version registered by a command
// before Raft index id.
func (s *Schemas) CheckAsOf(id uint64, ev *theeye.Event) []theeye.Reason {
	vs := s.src.SchemaVersions(ev.Category, ev.Name)
	i := len(vs) - 1
	for i >= 0 && vs[i].Index >= id {
		i--
	}
	return s.judge(vs, i, ev)
}

// Revalidations implements Revalidator.
func (s *Schemas) Revalidations(after uint64) []theeye.Revalidation {
	return s.src.Revalidations(after)
}

// ConfigChanged implements Revalidator.
func (s *Schemas) ConfigChanged() <-chan struct{} { return s.src.ConfigChanged() }

func (s *Schemas) judge(vs []theeye.Schema, i int, ev *theeye.Event) []theeye.Reason {
	if i < 0 {
		if s.rejectUnknown {
			return []theeye.Reason{{Code: theeye.ReasonUnknownEventType, Field: "/name",
				Message: fmt.Sprintf("no schema is registered for category %q, name %q, and this cluster rejects unknown event types", ev.Category, ev.Name)}}
		}
		return nil
	}
	c := s.compiled(&vs[i])
	if c.err != nil {
		return []theeye.Reason{{Code: theeye.ReasonSchemaViolation, Field: "/data",
			Message: fmt.Sprintf("schema version %d does not compile: %v", vs[i].Version, c.err)}}
	}
	return c.s.Validate(ev.Data)
}

func (s *Schemas) compiled(v *theeye.Schema) compiledSchema {
	id := schemaID{v.Category, v.Name, v.Version}
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok {
		return c
	}
	c.s, c.err = theeye.CompileSchema(v.Schema)
	s.mu.Lock()
	s.cache[id] = c
	s.mu.Unlock()
	return c
}
