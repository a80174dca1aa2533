package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The raft.LogStore and raft.StableStore contract: bounds, gaps, deletions,
// reopening, closing, concurrent use, and a model-checked random run.

func TestLogStoreEmpty(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	checkBounds(t, s, 0, 0)
	var l raft.Log
	for _, i := range []uint64{0, 1, math.MaxUint64} {
		if err := s.GetLog(i, &l); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(%d) on empty store: %v, want raft.ErrLogNotFound", i, err)
		}
	}
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("StoreLogs(nil): %v", err)
	}
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatalf("DeleteRange on empty store: %v", err)
	}
	checkBounds(t, s, 0, 0)
}

func TestLogStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("config"), AppendedAt: time.Unix(1_700_000_000, 123_456_789)},
		{Index: 2, Term: 1, Type: raft.LogNoop},                                                    // nil Data, zero time
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: []byte{}, Extensions: []byte{}},           // empty, not nil
		{Index: 4, Term: 2, Type: raft.LogCommand, Data: []byte("d"), Extensions: []byte("ext-1")}, // extensions
		{Index: 5, Term: math.MaxUint64, Type: raft.LogBarrier, Extensions: []byte{0, 1, 2}},       // nil Data
		{Index: 6, Term: 3, Type: raft.LogType(200), Data: big, AppendedAt: time.Now()},            // big, odd type, monotonic clock
		{Index: 7, Term: 3, Type: raft.LogCommand, Data: []byte("x"), AppendedAt: time.Date(1969, 7, 20, 20, 17, 40, 5, time.UTC)},
		{Index: 8, Term: 3, Type: raft.LogCommand, Data: []byte("y"), AppendedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	}
	if err := s.StoreLog(logs[0]); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	if err := s.StoreLogs(logs[1:]); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
	check := func(s *Store) {
		t.Helper()
		checkBounds(t, s, 1, uint64(len(logs)))
		for _, want := range logs {
			// Start from a dirty struct: GetLog must overwrite every field.
			got := raft.Log{Data: []byte("stale"), Extensions: []byte("stale"), AppendedAt: time.Now()}
			if err := s.GetLog(want.Index, &got); err != nil {
				t.Fatalf("GetLog(%d): %v", want.Index, err)
			}
			if !logsEqual(&got, want) {
				t.Fatalf("GetLog(%d) = %+v\nwant %+v", want.Index, abbrev(&got), abbrev(want))
			}
		}
	}
	check(s)

	// The returned slices are copies: mutating them or appending to Data
	// does not touch the store or Extensions.
	var got raft.Log
	if err := s.GetLog(4, &got); err != nil {
		t.Fatal(err)
	}
	_ = append(got.Data, "overwrite"...)
	if string(got.Extensions) != "ext-1" {
		t.Fatalf("append to Data clobbered Extensions: %q", got.Extensions)
	}
	got.Data[0] = 'X'
	if err := s.GetLog(4, &got); err != nil || string(got.Data) != "d" {
		t.Fatalf("GetLog(4) after mutating a returned slice: %q, %v", got.Data, err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(openTestStore(t, dir))
}

func TestLogStoreStoreLogsInvalid(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	if err := s.StoreLogs([]*raft.Log{testLog(1), nil}); err == nil {
		t.Fatal("StoreLogs with a nil entry: no error")
	}
	if err := s.StoreLog(&raft.Log{Index: 0}); err == nil {
		t.Fatal("StoreLog of index 0: no error")
	}
	checkBounds(t, s, 0, 0)
}

func TestLogStoreGetLogMissing(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	storeRange(t, s, 10, 20)
	var l raft.Log
	for _, i := range []uint64{0, 1, 9, 21, math.MaxUint64} {
		if err := s.GetLog(i, &l); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(%d): %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func TestLogStoreGaps(t *testing.T) {
	// raft may store entries after a gap (after installing a snapshot).
	dir := t.TempDir()
	s := openTestStore(t, dir)
	storeRange(t, s, 1, 5)
	storeRange(t, s, 100, 105)
	checkBounds(t, s, 1, 105)
	present := func(i uint64) bool { return i >= 1 && i <= 5 || i >= 100 && i <= 105 }
	checkPresent(t, s, present, 0, 110)

	// A prefix delete that ends inside the gap moves First to the next key.
	if err := s.DeleteRange(1, 50); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 100, 105)

	// A store below First moves First down.
	storeRange(t, s, 7, 8)
	checkBounds(t, s, 7, 105)
	// A suffix delete that starts inside the gap moves Last to the key before.
	if err := s.DeleteRange(50, 200); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 7, 8)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, openTestStore(t, dir), 7, 8)
}

func TestLogStoreDeleteRange(t *testing.T) {
	cases := []struct {
		name    string
		steps   [][2]uint64
		first   uint64
		last    uint64
		present func(uint64) bool
	}{
		{"prefix", [][2]uint64{{1, 40}}, 41, 100, func(i uint64) bool { return i > 40 }},
		{"prefix from below first", [][2]uint64{{0, 40}}, 41, 100, func(i uint64) bool { return i > 40 }},
		{"two prefixes", [][2]uint64{{1, 40}, {41, 60}}, 61, 100, func(i uint64) bool { return i > 60 }},
		{"suffix", [][2]uint64{{71, 100}}, 1, 70, func(i uint64) bool { return i <= 70 }},
		{"suffix past last", [][2]uint64{{71, math.MaxUint64}}, 1, 70, func(i uint64) bool { return i <= 70 }},
		{"middle", [][2]uint64{{30, 60}}, 1, 100, func(i uint64) bool { return i < 30 || i > 60 }},
		{"prefix and suffix", [][2]uint64{{1, 40}, {71, 100}}, 41, 70, func(i uint64) bool { return i > 40 && i <= 70 }},
		{"single first", [][2]uint64{{1, 1}}, 2, 100, func(i uint64) bool { return i > 1 }},
		{"single last", [][2]uint64{{100, 100}}, 1, 99, func(i uint64) bool { return i < 100 }},
		{"everything", [][2]uint64{{1, 100}}, 0, 0, func(uint64) bool { return false }},
		{"everything and more", [][2]uint64{{0, math.MaxUint64}}, 0, 0, func(uint64) bool { return false }},
		{"outside", [][2]uint64{{101, 200}, {0, 0}}, 1, 100, func(uint64) bool { return true }},
		{"inverted", [][2]uint64{{60, 30}}, 1, 100, func(uint64) bool { return true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir)
			storeRange(t, s, 1, 100)
			for _, st := range tc.steps {
				if err := s.DeleteRange(st[0], st[1]); err != nil {
					t.Fatalf("DeleteRange(%d, %d): %v", st[0], st[1], err)
				}
			}
			present := func(i uint64) bool { return i >= 1 && i <= 100 && tc.present(i) }
			checkBounds(t, s, tc.first, tc.last)
			checkPresent(t, s, present, 0, 101)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTestStore(t, dir)
			checkBounds(t, s, tc.first, tc.last)
			checkPresent(t, s, present, 0, 101)

			// Appending after the deletions (raft does after a suffix
			// delete) works and keeps the bounds right.
			storeRange(t, s, 101, 110)
			wantFirst := tc.first
			if wantFirst == 0 {
				wantFirst = 101
			}
			checkBounds(t, s, wantFirst, 110)
		})
	}
}

func TestLogStoreSuffixReplace(t *testing.T) {
	// The follower conflict path: delete a suffix, then store new entries
	// with a new term at the same indexes.
	s := openTestStore(t, t.TempDir())
	storeRange(t, s, 1, 50)
	if err := s.DeleteRange(31, 50); err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(31); i <= 40; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 99, Data: []byte("new")})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 1, 40)
	var l raft.Log
	if err := s.GetLog(35, &l); err != nil || l.Term != 99 || string(l.Data) != "new" {
		t.Fatalf("GetLog(35) = %+v, %v", l, err)
	}
	if err := s.GetLog(45, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(45) = %v, want raft.ErrLogNotFound", err)
	}
}

func TestLogStoreReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	storeRange(t, s, 1, 1000)
	if err := s.DeleteRange(1, 250); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openTestStore(t, dir)
	checkBounds(t, s, 251, 1000)
	checkPresent(t, s, func(i uint64) bool { return i >= 251 && i <= 1000 }, 240, 1001)
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("GetUint64(CurrentTerm) = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-1" {
		t.Fatalf("Get(LastVoteCand) = %q, %v", v, err)
	}
}

func TestLogStoreClosed(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	storeRange(t, s, 1, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for name, err := range map[string]error{
		"GetLog":      s.GetLog(1, &l),
		"StoreLog":    s.StoreLog(testLog(4)),
		"DeleteRange": s.DeleteRange(1, 2),
		"Set":         s.Set([]byte("k"), []byte("v")),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Errorf("LastIndex after Close: %v", err)
	}
	if _, err := s.GetUint64([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("GetUint64 after Close: %v", err)
	}
}

func TestLogStoreOpenErrors(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Fatal("Open with empty Dir: no error")
	}
	dir := t.TempDir()
	_ = openTestStore(t, dir)
	// Pebble locks its directory: a second instance on the same Dir fails.
	if s2, err := Open(Config{Dir: dir}); err == nil {
		_ = s2.Close()
		t.Fatal("second Open on the same Dir: no error")
	} else if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error lacks the directory: %v", err)
	}
}

func TestStableStore(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)

	// Missing keys: the exact error raft relies on.
	if v, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" || v != nil {
		t.Fatalf("Get(missing) = %q, %v; want nil, \"not found\"", v, err)
	}
	if !errors.Is(func() error { _, err := s.Get([]byte("missing")); return err }(), ErrKeyNotFound) {
		t.Fatal("Get(missing) is not ErrKeyNotFound")
	}
	if v, err := s.GetUint64([]byte("missing")); err == nil || err.Error() != "not found" || v != 0 {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, \"not found\"", v, err)
	}

	// Set/Get, overwrite, empty value, binary key.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Set([]byte("a"), []byte("1")))
	must(s.Set([]byte("a"), []byte("22")))
	must(s.Set([]byte("empty"), nil))
	must(s.Set([]byte{0, 0xff}, []byte{1, 2, 3}))
	val := []byte("caller-owned")
	must(s.Set([]byte("owned"), val))
	val[0] = 'X' // the store must have copied it

	must(s.SetUint64([]byte("u"), 0))
	must(s.SetUint64([]byte("max"), math.MaxUint64))
	must(s.SetUint64([]byte("t"), 42))
	must(s.SetUint64([]byte("t"), 43))

	// The stable keyspace does not leak into the log keyspace and back.
	must(s.Set([]byte("l"), []byte("not a log")))
	checkBounds(t, s, 0, 0)
	storeRange(t, s, 1, 3)
	if _, err := s.Get([]byte{0, 0, 0, 0, 0, 0, 0, 1}); err != ErrKeyNotFound {
		t.Fatalf("a log entry is visible through Get: %v", err)
	}

	check := func(s *Store) {
		t.Helper()
		for k, want := range map[string]string{"a": "22", "empty": "", "\x00\xff": "\x01\x02\x03", "owned": "caller-owned", "l": "not a log"} {
			got, err := s.Get([]byte(k))
			if err != nil || string(got) != want {
				t.Fatalf("Get(%q) = %q, %v; want %q", k, got, err, want)
			}
		}
		for k, want := range map[string]uint64{"u": 0, "max": math.MaxUint64, "t": 43} {
			got, err := s.GetUint64([]byte(k))
			if err != nil || got != want {
				t.Fatalf("GetUint64(%q) = %d, %v; want %d", k, got, err, want)
			}
		}
		// A value of the wrong size is an error, not a silent 0.
		if _, err := s.GetUint64([]byte("a")); err == nil || !errors.Is(err, errCorruptLog) {
			t.Fatalf("GetUint64 of a 2-byte value: %v", err)
		}
		checkBounds(t, s, 1, 3)
	}
	check(s)
	must(s.Close())
	check(openTestStore(t, dir))
}

func TestStableStoreRaftContract(t *testing.T) {
	// raft.HasExistingState treats "not found" from GetUint64 as "no state"
	// and anything else as a failure.
	s := openTestStore(t, t.TempDir())
	snaps := raft.NewInmemSnapshotStore()
	existing, err := raft.HasExistingState(s, s, snaps)
	if err != nil || existing {
		t.Fatalf("HasExistingState on an empty store = %v, %v; want false, nil", existing, err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	existing, err = raft.HasExistingState(s, s, snaps)
	if err != nil || !existing {
		t.Fatalf("HasExistingState after SetUint64(CurrentTerm) = %v, %v; want true, nil", existing, err)
	}
}

func TestLogStoreConcurrent(t *testing.T) {
	// An appender, a truncator (like raft's snapshot goroutine) and readers
	// at the same time; afterwards the cached bounds match Pebble.
	s := openTestStore(t, t.TempDir())
	const total, batch, keep = 2000, 10, 100
	appendedCh := make(chan uint64, total/batch)
	var appended atomic.Uint64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(1)
	go func() { // appender
		defer wg.Done()
		defer close(appendedCh)
		for i := uint64(1); i <= total; i += batch {
			logs := make([]*raft.Log, batch)
			for j := range logs {
				logs[j] = testLog(i + uint64(j))
			}
			if err := s.StoreLogs(logs); err != nil {
				errc <- err
				return
			}
			appended.Store(i + batch - 1)
			appendedCh <- i + batch - 1
		}
	}()
	wg.Add(1)
	go func() { // truncator: keeps the newest `keep` entries
		defer wg.Done()
		for last := range appendedCh {
			first, _ := s.FirstIndex()
			if last < 2*keep || last%50 != 0 {
				continue
			}
			if err := s.DeleteRange(first, last-keep); err != nil {
				errc <- err
				return
			}
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			var l raft.Log
			for i := 0; i < 500 || appended.Load() < total; i++ {
				floor := appended.Load() // stored before we read the bounds
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				if first > last || last < floor {
					errc <- fmt.Errorf("bounds %d, %d with %d appended", first, last, floor)
					return
				}
				// The newest entries are never truncated.
				if last > 0 {
					if err := s.GetLog(last, &l); err != nil || l.Index != last {
						errc <- fmt.Errorf("GetLog(%d): %w", last, err)
						return
					}
				}
				// The oldest may be truncated meanwhile: found or ErrLogNotFound.
				if err := s.GetLog(first, &l); err != nil && err != raft.ErrLogNotFound {
					errc <- fmt.Errorf("GetLog(%d): %w", first, err)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	checkBounds(t, s, total-keep+1, total)
}

// Random interleavings of StoreLogs and DeleteRange against a model.
func TestLogStoreRandomOps(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[uint64]bool{}
	modelBounds := func() (uint64, uint64) {
		var f, l uint64
		for i := range model {
			if f == 0 || i < f {
				f = i
			}
			l = max(l, i)
		}
		return f, l
	}
	for range 200 {
		switch rng.IntN(3) {
		case 0, 1:
			from := uint64(rng.IntN(500) + 1)
			n := uint64(rng.IntN(20) + 1)
			storeRange(t, s, from, from+n-1)
			for i := from; i < from+n; i++ {
				model[i] = true
			}
		case 2:
			a, b := uint64(rng.IntN(530)), uint64(rng.IntN(530))
			if err := s.DeleteRange(min(a, b), max(a, b)); err != nil {
				t.Fatal(err)
			}
			for i := min(a, b); i <= max(a, b); i++ {
				delete(model, i)
			}
		}
		f, l := modelBounds()
		checkBounds(t, s, f, l)
	}
	checkPresent(t, s, func(i uint64) bool { return model[i] }, 0, 530)
}
