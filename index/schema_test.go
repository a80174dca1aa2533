package index

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/theeye/theeye"
)

// fakeRegistry is in-memory Rules that numbers versions and stamps
// positions the way raftnode's FSM does.
type fakeRegistry struct {
	mu      sync.Mutex
	index   uint64 // last "Raft index"
	schemas map[[2]string][]theeye.Schema
	configs []theeye.ConfigVersion
	revs    []theeye.Revalidation
	changed chan struct{}
	// retainFrom is the retention cut (RetainFrom).
	retainFrom uint64
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{schemas: map[[2]string][]theeye.Schema{}, changed: make(chan struct{})}
}

func (r *fakeRegistry) put(category, name, doc string, lastSeq uint64) theeye.Schema {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	k := [2]string{category, name}
	s := theeye.Schema{Category: category, Name: name, Version: len(r.schemas[k]) + 1, Schema: json.RawMessage(doc),
		EffectiveSeq: lastSeq, Index: r.index}
	r.schemas[k] = append(slices.Clip(r.schemas[k]), s)
	close(r.changed)
	r.changed = make(chan struct{})
	return s
}

// setConfig records a cluster config version at lastSeq.
func (r *fakeRegistry) setConfig(c theeye.ClusterConfig, lastSeq uint64) theeye.ConfigVersion {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	v := theeye.ConfigVersion{Config: c, EffectiveSeq: lastSeq, Index: r.index}
	r.configs = append(slices.Clip(r.configs), v)
	close(r.changed)
	r.changed = make(chan struct{})
	return v
}

// RetainFrom is the retention cut the test set (0: none).
func (r *fakeRegistry) RetainFrom() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retainFrom
}

func (r *fakeRegistry) ConfigVersions() []theeye.ConfigVersion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.configs
}

func (r *fakeRegistry) revalidate(rv theeye.Revalidation, lastSeq uint64) theeye.Revalidation {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	rv.ID, rv.AtSeq = r.index, lastSeq
	r.revs = append(slices.Clip(r.revs), rv)
	close(r.changed)
	r.changed = make(chan struct{})
	return rv
}

func (r *fakeRegistry) SchemaVersions(category, name string) []theeye.Schema {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.schemas[[2]string{category, name}]
}

func (r *fakeRegistry) Revalidations(after uint64) []theeye.Revalidation {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, rv := range r.revs {
		if rv.ID > after {
			return r.revs[i:]
		}
	}
	return nil
}

func (r *fakeRegistry) ConfigChanged() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

const formSchema = `{"type":"object","required":["form"],"properties":{"form":{"type":"object","required":["first_name"],"properties":{"first_name":{"type":"string"}}}}}`

func formEvent(data string) string {
	return evt{Session: "s", Category: "form interaction", Name: "submit", Timestamp: baseTime, Data: data}.raw()
}

// openWithSchemas opens an index judged by reg; with reject, reg gets a
// config that rejects unknown types, in force from seq 1.
func openWithSchemas(t *testing.T, src Source, reg *fakeRegistry, reject bool) *Index {
	if reject {
		c := theeye.DefaultClusterConfig()
		c.UnknownTypes = theeye.UnknownReject
		reg.setConfig(c, 0)
	}
	return openTest(t, "", src, func(c *Config) { c.Rules = reg; c.BatchSize = 2 })
}

// TestSchemas_VersionBySeq: an event is judged by the version in force at
// its seq, whatever the registry holds when the indexer gets to it.
func TestSchemas_VersionBySeq(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	ix := openWithSchemas(t, src, reg, false)
	good := formEvent(`{"form":{"first_name":"John"}}`)
	bad := formEvent(`{"form":{"first_name":12}}`)
	src.Append(mkEnv("web", baseTime, bad)) // 1: no schema yet: accepted
	reg.put("form interaction", "submit", formSchema, src.LastSeq())
	src.Append(mkEnv("web", baseTime, bad), mkEnv("web", baseTime, good)) // 2 fails, 3 passes
	reg.put("form interaction", "submit", `{"type":"object"}`, src.LastSeq())
	src.Append(mkEnv("web", baseTime, bad)) // 4: v2 accepts anything
	indexAll(t, ix)                         // after every registration: only seq decides

	gs, _ := events(t, ix, EventQuery{})
	if got := seqs(gs); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Fatalf("events %v, want [1 3 4]", got)
	}
	recs, _ := errorRecords(t, ix, ErrorQuery{})
	if len(recs) != 1 || recs[0].Seq != 2 || len(recs[0].Reasons) != 1 {
		t.Fatalf("errors %+v, want seq 2", recs)
	}
	r := recs[0].Reasons[0]
	if r.Code != theeye.ReasonSchemaViolation || r.Field != "/data/form/first_name" || r.Message != "type: want string, got number" {
		t.Errorf("reason %+v", r)
	}
	// Category and name filters read the header.
	if recs, _ := errorRecords(t, ix, ErrorQuery{Category: "form interaction", Name: "submit"}); len(recs) != 1 {
		t.Errorf("category+name filter: %d records", len(recs))
	}
	if recs, _ := errorRecords(t, ix, ErrorQuery{Category: "form interaction", Name: "other"}); len(recs) != 0 {
		t.Errorf("other name: %d records", len(recs))
	}
	sum, err := ix.ErrorsSummary(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 1 || sum.ByReason[theeye.ReasonSchemaViolation] != 1 || len(sum.ByType) != 1 || sum.ByType[0].Count != 1 || sum.ByType[0].Name != "submit" {
		t.Errorf("summary %+v", sum)
	}
}

func TestSchemas_UnknownTypes(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	ix := openWithSchemas(t, src, reg, true)
	src.Append(mkEnv("web", baseTime, formEvent(`{"form":{"first_name":"J"}}`)))
	indexAll(t, ix)
	recs, _ := errorRecords(t, ix, ErrorQuery{Reason: theeye.ReasonUnknownEventType})
	if len(recs) != 1 || recs[0].Reasons[0].Field != "/name" {
		t.Fatalf("errors %+v, want one unknown_event_type", recs)
	}
}

// TestRevalidation: failures judged again against the schemas registered
// before the request; those that pass become events, once; the request
// runs at its position in the log, before later events.
func TestRevalidation(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	ix := openWithSchemas(t, src, reg, false)
	reg.put("form interaction", "submit", `{"required":["form","page"]}`, 0) // too strict
	src.Append(
		mkEnv("web", baseTime, formEvent(`{"form":{"first_name":"John"}}`)),       // 1: fails v1, passes v2
		mkEnv("web", baseTime, formEvent(`{"form":{"first_name":12}}`)),           // 2: fails both
		mkEnv("web", baseTime, evt{Session: "s", Category: "c", Name: "n"}.raw()), // 3: invalid timestamp, no schema
	)
	indexAll(t, ix)
	if st := ix.Stats(); st.Errors != 3 {
		t.Fatalf("stats %+v", st)
	}
	reg.put("form interaction", "submit", formSchema, src.LastSeq())
	rv := reg.revalidate(theeye.Revalidation{}, src.LastSeq())
	// A later, stricter version must not change this request's verdicts,
	// and a later event must be indexed after it ran.
	src.Append(mkEnv("web", baseTime, formEvent(`{"form":{"first_name":"Late"}}`))) // 4
	reg.put("form interaction", "submit", `false`, src.LastSeq())
	indexAll(t, ix)

	res, err := ix.WaitRevalidation(context.Background(), rv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res != (RevalidationResult{ID: rv.ID, Status: RevalidationDone, Checked: 3, Accepted: 1, Failing: 2}) {
		t.Fatalf("result %+v", res)
	}
	gs, _ := events(t, ix, EventQuery{})
	if got := seqs(gs); !slices.Equal(got, []uint64{1, 4}) {
		t.Fatalf("events %v, want [1 4]", got)
	}
	recs, _ := errorRecords(t, ix, ErrorQuery{})
	if len(recs) != 2 || recs[0].Seq != 2 || recs[0].Reasons[0].Field != "/data/form/first_name" {
		t.Fatalf("errors %+v", recs)
	}
	if st := ix.Stats(); st.Events != 2 || st.Errors != 2 {
		t.Errorf("stats %+v", st)
	}
	// Once: a second request finds nothing more to accept.
	rv2 := reg.revalidate(theeye.Revalidation{Reason: theeye.ReasonSchemaViolation}, src.LastSeq())
	indexAll(t, ix)
	if res, err := ix.WaitRevalidation(context.Background(), rv2.ID); err != nil || res.Checked != 1 || res.Accepted != 0 {
		t.Fatalf("second revalidation %+v, %v", res, err)
	}
}

// TestRevalidation_Rebuild: an index rebuilt from the log (new directory)
// replays the requests at the same positions and ends identical.
func TestRevalidation_Rebuild(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	reg.put("form interaction", "submit", `{"required":["page"]}`, 0)
	src.Append(mkEnv("web", baseTime, formEvent(`{"form":{"first_name":"A"}}`)))
	reg.put("form interaction", "submit", formSchema, src.LastSeq())
	reg.revalidate(theeye.Revalidation{Category: "form interaction"}, src.LastSeq())
	src.Append(mkEnv("web", baseTime, formEvent(`{"form":{}}`)))
	a := openWithSchemas(t, src, reg, false)
	indexAll(t, a)
	b := openWithSchemas(t, src, reg, false)
	indexAll(t, b)
	if sa, sb := takeSnapshot(t, a), takeSnapshot(t, b); !sa.equal(sb) || sa.stats.Events != 1 || sa.stats.Errors != 1 {
		t.Fatalf("two indexes of one log differ or are wrong: %+v / %+v", sa.stats, sb.stats)
	}
}

// TestOpen_RebuildsOlderLayout: a database of layout 1 is dropped and
// indexed again from the log, with the same result as a new one.
func TestOpen_RebuildsOlderLayout(t *testing.T) {
	src := newFakeSource()
	mixedLog(src, 300, 3)
	dir := t.TempDir()
	ix := openTest(t, dir, src)
	indexAll(t, ix)
	want := takeSnapshot(t, ix)
	if err := ix.db.Set(appendMetaKey(nil, metaVersion), appendUint64(nil, 1), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	re := openTest(t, dir, src)
	if re.IndexedSeq() != 0 {
		t.Fatalf("reopened at %d, want a rebuild from 0", re.IndexedSeq())
	}
	indexAll(t, re)
	if got := takeSnapshot(t, re); !got.equal(want) {
		t.Fatalf("rebuilt %+v, want %+v", got.stats, want.stats)
	}
	if err := re.db.Set(appendMetaKey(nil, metaVersion), appendUint64(nil, layoutVersion+1), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := re.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, Source: src}); err == nil {
		t.Fatal("a newer layout was opened")
	}
}

// TestRevalidation_Chunks: a revalidation over many failures runs in
// bounded chunks, takes turns with new events, and resumes where it was
// after the index is closed half-way, ending where an uninterrupted run
// ends.
func TestRevalidation_Chunks(t *testing.T) {
	src, reg := newFakeSource(), newFakeRegistry()
	reg.put("form interaction", "submit", `{"required":["page"]}`, 0)
	const failures = 3 * revalidationChunk
	for range failures / 128 {
		var envs []theeye.Envelope
		for range 128 {
			envs = append(envs, mkEnv("web", baseTime, formEvent(`{"form":{"first_name":"A"}}`)))
		}
		src.Append(envs...)
	}
	reg.put("form interaction", "submit", formSchema, src.LastSeq())
	rv := reg.revalidate(theeye.Revalidation{}, src.LastSeq())

	dir := t.TempDir()
	ix := openTest(t, dir, src, func(c *Config) { c.Rules = reg })
	step := func() {
		t.Helper()
		if _, _, err := ix.indexBatch(); err != nil {
			t.Fatal(err)
		}
	}
	for ix.IndexedSeq() < src.LastSeq() {
		step()
	}
	step() // one chunk
	r, err := ix.Revalidation(rv.ID)
	if err != nil || r.Status != RevalidationRunning || r.Checked != revalidationChunk {
		t.Fatalf("after one chunk: %+v, %v; want running with %d checked", r, err, revalidationChunk)
	}
	// A new event is indexed between two chunks.
	src.Append(mkEnv("web", baseTime, formEvent(`{"form":{"first_name":"New"}}`)))
	step()
	if ix.IndexedSeq() != src.LastSeq() {
		t.Fatalf("indexed %d of %d: the new event waited for the revalidation", ix.IndexedSeq(), src.LastSeq())
	}
	step() // a second chunk
	if r, _ := ix.Revalidation(rv.ID); r.Checked != 2*revalidationChunk {
		t.Fatalf("after two chunks: %+v", r)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	re := openTest(t, dir, src, func(c *Config) { c.Rules = reg })
	indexAll(t, re)
	got, err := re.WaitRevalidation(context.Background(), rv.ID)
	if err != nil || got.Checked != failures || got.Accepted != failures || got.Failing != 0 {
		t.Fatalf("resumed: %+v, %v; want %d checked and accepted", got, err, failures)
	}
	fresh := openTest(t, "", src, func(c *Config) { c.Rules = reg })
	indexAll(t, fresh)
	if a, b := takeSnapshot(t, re), takeSnapshot(t, fresh); !a.equal(b) || a.stats.Events != failures+1 || a.stats.Errors != 0 {
		t.Fatalf("resumed %+v, uninterrupted %+v", a.stats, b.stats)
	}
}
