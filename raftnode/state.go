package raftnode

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/log"
	"github.com/theeye/theeye/verdict"
)

// State is the replicated configuration: apps, keys (hashes only) and node
// addresses. The FSM changes it; everything else reads copies.
type State struct {
	// Index is the Raft index of the last config entry applied to it.
	Index uint64 `json:"index"`
	// Seeded is set by the cluster's one seed command (opSeed).
	Seeded bool                  `json:"seeded,omitempty"`
	Apps   map[string]theeye.App `json:"apps"`
	Keys   map[string]theeye.Key `json:"keys"`
	Nodes  map[string]NodeInfo   `json:"nodes"`
	// Schemas holds every version of every schema, by schemaKey(category,
	// name), in version order. A slice is never appended to in place.
	Schemas map[string][]theeye.Schema `json:"schemas,omitempty"`
	// Revalidations holds every revalidation request, in ID order. They are
	// kept so an index rebuilt from the log replays them at the same
	// positions.
	Revalidations []theeye.Revalidation `json:"revalidations,omitempty"`
	// Configs holds every version of the cluster config, in order (the
	// first from the seed). Kept for ever, like the schemas: an event is
	// judged by the version in force at its seq.
	Configs []theeye.ConfigVersion `json:"configs,omitempty"`
	// RetainFrom is the retention cut: the first seq every node keeps (0
	// or 1: nothing cut). It only moves up.
	RetainFrom uint64 `json:"retain_from,omitempty"`
	// Deletions holds every erasure of a session, in ID order: kept so
	// that an index rebuilt, or a node catching up, runs them too.
	Deletions []theeye.Deletion `json:"deletions,omitempty"`
}

// config returns the cluster config in force now.
func (s *State) config() theeye.ClusterConfig {
	if len(s.Configs) == 0 {
		return theeye.DefaultClusterConfig()
	}
	return s.Configs[len(s.Configs)-1].Config
}

// setConfig records the next config version at pos, once it is valid.
func (s *State) setConfig(p theeye.ConfigPatch, base theeye.ClusterConfig, pos applyPos) (theeye.ClusterConfig, error) {
	c := p.Apply(base)
	if err := c.Validate(); err != nil {
		return theeye.ClusterConfig{}, err
	}
	s.Configs = append(slices.Clip(s.Configs), theeye.ConfigVersion{Config: c, EffectiveSeq: pos.lastSeq, Index: pos.index})
	return c, nil
}

func newState() *State {
	return &State{Apps: map[string]theeye.App{}, Keys: map[string]theeye.Key{}, Nodes: map[string]NodeInfo{},
		Schemas: map[string][]theeye.Schema{}}
}

func (s *State) clone() *State {
	c := &State{Index: s.Index, Seeded: s.Seeded, RetainFrom: s.RetainFrom, Apps: maps.Clone(s.Apps), Keys: maps.Clone(s.Keys), Nodes: maps.Clone(s.Nodes),
		Schemas: maps.Clone(s.Schemas), Revalidations: slices.Clip(s.Revalidations), Configs: slices.Clip(s.Configs),
		Deletions: slices.Clip(s.Deletions)}
	if c.Schemas == nil {
		c.Schemas = map[string][]theeye.Schema{}
	}
	return c
}

// schemaKey is the key of a schema's versions in State.Schemas.
func schemaKey(category, name string) string { return category + "\x00" + name }

// applyPos is where in the log a command is applied: its Raft index and the
// log's last seq at that moment. Both are the same on every node.
type applyPos struct {
	index, lastSeq uint64
}

// apply changes the state by one command. A refused command (a duplicate
// app, an unknown key, a schema that does not compile) is a deterministic
// outcome: every node refuses it the same way and the state does not
// change. result is what the proposer gets back (the registered schema,
// the recorded revalidation).
func (s *State) apply(cmd *command, pos applyPos) (result any, err error) {
	switch cmd.Op {
	case opPutSchema:
		sc := cmd.Schema
		if sc == nil || sc.Category == "" || sc.Name == "" {
			return nil, theeye.Errorf(theeye.EInvalidRequest, "put_schema needs a category, a name and a schema")
		}
		if _, err := verdict.CompileSchema(sc.Schema); err != nil {
			return nil, err
		}
		k := schemaKey(sc.Category, sc.Name)
		v := *sc
		v.Version = len(s.Schemas[k]) + 1
		v.EffectiveSeq = pos.lastSeq
		v.Index = pos.index
		s.Schemas[k] = append(slices.Clip(s.Schemas[k]), v)
		return v, nil
	case opRevalidate:
		if cmd.Revalidation == nil {
			return nil, theeye.Errorf(theeye.EInvalidRequest, "revalidate needs its parameters")
		}
		r := *cmd.Revalidation
		r.ID = pos.index
		r.AtSeq = pos.lastSeq
		s.Revalidations = append(slices.Clip(s.Revalidations), r)
		return r, nil
	case opErase:
		if cmd.Deletion == nil || cmd.Deletion.SessionID == "" {
			return nil, theeye.Errorf(theeye.EInvalidRequest, "erase needs a session id")
		}
		d := *cmd.Deletion
		d.ID, d.AtSeq = pos.index, pos.lastSeq
		s.Deletions = append(slices.Clip(s.Deletions), d)
		return d, nil
	case opNoop:
		return nil, nil
	case opRetain:
		// Never past what the log holds: the cut names events that exist.
		if cut := min(cmd.FirstSeq, pos.lastSeq+1); cut > s.RetainFrom {
			s.RetainFrom = cut
		}
		return s.RetainFrom, nil
	case opSetConfig:
		if cmd.Config == nil || cmd.Config.Empty() {
			return nil, theeye.Errorf(theeye.EInvalidRequest, "set_config needs at least one field to change")
		}
		return s.setConfig(*cmd.Config, s.config(), pos)
	case opSeed:
		if s.Seeded {
			return nil, theeye.Errorf(theeye.EConflict, "the cluster is already seeded")
		}
		if cmd.Config != nil {
			if _, err := s.setConfig(*cmd.Config, theeye.DefaultClusterConfig(), pos); err != nil {
				return nil, err
			}
		}
		s.Seeded = true
		if cmd.Key != nil {
			if _, ok := s.Keys[cmd.Key.ID]; !ok {
				s.Keys[cmd.Key.ID] = *cmd.Key
			}
		}
		return nil, nil
	}
	return nil, s.applyOther(cmd)
}

func (s *State) applyOther(cmd *command) error {
	switch cmd.Op {
	case opCreateApp:
		if cmd.App == nil || cmd.Key == nil {
			return theeye.Errorf(theeye.EInvalidRequest, "create_app needs an app and a key")
		}
		if _, ok := s.Apps[cmd.App.ID]; ok {
			return theeye.Errorf(theeye.EConflict, "an app named %q already exists", cmd.App.Name)
		}
		if _, ok := s.Keys[cmd.Key.ID]; ok {
			return theeye.Errorf(theeye.EConflict, "a key with id %q already exists", cmd.Key.ID)
		}
		s.Apps[cmd.App.ID] = *cmd.App
		s.Keys[cmd.Key.ID] = *cmd.Key
	case opCreateKey:
		if cmd.Key == nil {
			return theeye.Errorf(theeye.EInvalidRequest, "create_key needs a key")
		}
		if _, ok := s.Keys[cmd.Key.ID]; ok {
			return theeye.Errorf(theeye.EConflict, "a key with id %q already exists", cmd.Key.ID)
		}
		if cmd.Key.App != "" {
			if _, ok := s.Apps[cmd.Key.App]; !ok {
				return theeye.Errorf(theeye.ENotFound, "no app named %q", cmd.Key.App)
			}
		}
		s.Keys[cmd.Key.ID] = *cmd.Key
	case opRevokeKey:
		k, ok := s.Keys[cmd.KeyID]
		if !ok {
			return theeye.Errorf(theeye.ENotFound, "no key with id %q", cmd.KeyID)
		}
		if k.Revoked {
			return nil
		}
		if k.Has(theeye.ScopeAdmin) && s.liveAdminKeys() == 1 {
			return theeye.Errorf(theeye.EConflict, "key %q is the last admin key: create another admin key before revoking it", cmd.KeyID)
		}
		k.Revoked = true
		s.Keys[cmd.KeyID] = k

	case opSetRateLimit:
		k, ok := s.Keys[cmd.KeyID]
		if !ok {
			return theeye.Errorf(theeye.ENotFound, "no key with id %q", cmd.KeyID)
		}
		if cmd.RateLimit != nil {
			if err := cmd.RateLimit.Validate(); err != nil {
				return err
			}
			rl := *cmd.RateLimit
			k.RateLimit = &rl
		} else {
			k.RateLimit = nil
		}
		s.Keys[cmd.KeyID] = k
	case opSetNode:
		if cmd.Node == nil || cmd.Node.ID == "" {
			return theeye.Errorf(theeye.EInvalidRequest, "set_node needs a node")
		}
		s.Nodes[cmd.Node.ID] = *cmd.Node
	case opDelNode:
		delete(s.Nodes, cmd.NodeID)
	default:
		return theeye.Errorf(theeye.EInvalidRequest, "unknown config operation %q", cmd.Op)
	}
	return nil
}

// liveAdminKeys counts the keys with the admin scope that are not revoked.
func (s *State) liveAdminKeys() int {
	n := 0
	for _, k := range s.Keys {
		if !k.Revoked && k.Has(theeye.ScopeAdmin) {
			n++
		}
	}
	return n
}

// stateStore keeps State in memory and in <dir>/state.json, written
// atomically (temp file, fsync, rename, fsync dir) at every change, so the
// file always holds the state as of its Index.
type stateStore struct {
	path string

	mu      sync.RWMutex
	st      *State            // guarded by mu; replaced, never mutated in place
	byHash  map[string]string // key hash -> key id; guarded by mu
	changed chan struct{}     // closed and replaced at each set; guarded by mu
}

func openStateStore(dir string) (*stateStore, error) {
	ss := &stateStore{path: filepath.Join(dir, "state.json"), changed: make(chan struct{})}
	st := newState()
	b, err := os.ReadFile(ss.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", ss.path, err)
	default:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("decode %s: %w", ss.path, err)
		}
		st.Apps, st.Keys, st.Nodes, st.Schemas = orEmpty(st.Apps), orEmpty(st.Keys), orEmpty(st.Nodes), orEmpty(st.Schemas)
	}
	ss.set(st)
	return ss, nil
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func (ss *stateStore) get() *State {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return ss.st
}

func (ss *stateStore) set(st *State) {
	byHash := make(map[string]string, len(st.Keys))
	for id, k := range st.Keys {
		byHash[k.Hash] = id
	}
	ss.mu.Lock()
	ss.st, ss.byHash = st, byHash
	close(ss.changed)
	ss.changed = make(chan struct{})
	ss.mu.Unlock()
}

// changedCh returns a channel closed at the next change of the state.
func (ss *stateStore) changedCh() <-chan struct{} {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return ss.changed
}

// save writes st durably, then makes it current.
func (ss *stateStore) save(st *State) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := log.WriteFileAtomic(vfs.Default, filepath.Dir(ss.path), filepath.Base(ss.path), b); err != nil {
		return err
	}
	ss.set(st)
	return nil
}

func (ss *stateStore) lookupKey(hash string) (theeye.Key, bool) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	id, ok := ss.byHash[hash]
	if !ok {
		return theeye.Key{}, false
	}
	k := ss.st.Keys[id]
	return k, !k.Revoked
}

func (ss *stateStore) apps() []theeye.App {
	st := ss.get()
	out := slices.Collect(maps.Values(st.Apps))
	slices.SortFunc(out, func(a, b theeye.App) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (ss *stateStore) keys() []theeye.Key {
	st := ss.get()
	out := slices.Collect(maps.Values(st.Keys))
	slices.SortFunc(out, func(a, b theeye.Key) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
