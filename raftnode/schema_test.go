package raftnode

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// TestSchemasReplicateWithPositions: versions are numbered per type, carry
// the log position they take effect at, a schema that does not compile is
// refused by the FSM itself, and all of it survives a restart.
func TestSchemasReplicateWithPositions(t *testing.T) {
	dir := t.TempDir()
	n := openTestNode(t, "n1", dir, "", true)
	waitLeader(t, n.Node)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	doc := json.RawMessage(`{"type":"object"}`)
	v1, err := n.PutSchema(ctx, theeye.Schema{Category: "form interaction", Name: "submit", Schema: doc})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v1.EffectiveSeq != 0 || v1.Index == 0 {
		t.Fatalf("v1 %+v", v1)
	}
	seq, err := n.Append(ctx, envs("a", 3))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := n.PutSchema(ctx, theeye.Schema{Category: "form interaction", Name: "submit", Schema: doc})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.EffectiveSeq != seq || v2.Index <= v1.Index {
		t.Fatalf("v2 %+v, want version 2 effective after seq %d", v2, seq)
	}
	other, err := n.PutSchema(ctx, theeye.Schema{Category: "form interaction", Name: "focus", Schema: doc})
	if err != nil || other.Version != 1 {
		t.Fatalf("another type: %+v, %v", other, err)
	}

	// The FSM refuses what does not compile, even when a proposer did not
	// check (a command built by hand).
	err = n.applyCommand(ctx, &command{Op: opPutSchema, Schema: &theeye.Schema{Category: "c", Name: "n", Schema: json.RawMessage(`{"type":12}`)}})
	if theeye.ErrorCode(err) != theeye.EInvalidRequest {
		t.Fatalf("bad schema: %v, want invalid_request", err)
	}
	if vs := n.SchemaVersions("c", "n"); vs != nil {
		t.Fatalf("a refused schema is in the state: %+v", vs)
	}

	rv, err := n.Revalidate(ctx, theeye.Revalidation{Reason: theeye.ReasonSchemaViolation})
	if err != nil || rv.AtSeq != seq || rv.ID <= other.Index {
		t.Fatalf("revalidation %+v, %v", rv, err)
	}
	if got := n.Revalidations(0); len(got) != 1 || got[0] != rv {
		t.Fatalf("revalidations %+v", got)
	}
	if got := n.Revalidations(rv.ID); len(got) != 0 {
		t.Fatalf("revalidations after %d: %+v", rv.ID, got)
	}

	latest := n.Schemas()
	n.close(t)
	back := openTestNode(t, "n1", dir, "", false)
	if got := back.Schemas(); len(got) != 2 || got[0].Name != "focus" || got[1].Version != 2 || len(latest) != 2 {
		t.Fatalf("after restart: %+v", got)
	}
	if vs := back.SchemaVersions("form interaction", "submit"); len(vs) != 2 || vs[1].EffectiveSeq != seq {
		t.Fatalf("versions after restart: %+v", vs)
	}
}

// TestStateCloneDoesNotShareSchemas: appending a version to a clone never
// changes the state it was cloned from (states are replaced, not mutated).
func TestStateCloneDoesNotShareSchemas(t *testing.T) {
	st := newState()
	doc := json.RawMessage(`true`)
	for i := range 3 {
		if _, err := st.apply(&command{Op: opPutSchema, Schema: &theeye.Schema{Category: "c", Name: "n", Schema: doc}}, applyPos{index: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	c := st.clone()
	if _, err := c.apply(&command{Op: opPutSchema, Schema: &theeye.Schema{Category: "c", Name: "n", Schema: doc}}, applyPos{index: 9, lastSeq: 5}); err != nil {
		t.Fatal(err)
	}
	if len(st.Schemas[schemaKey("c", "n")]) != 3 || len(c.Schemas[schemaKey("c", "n")]) != 4 {
		t.Fatal("the clone shares its versions with the original")
	}
}
