package index

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// tuple is what a session/category key orders by.
type tuple struct {
	s   string
	ts  int64
	seq uint64
}

func compareTuple(a, b tuple) int {
	if c := strings.Compare(a.s, b.s); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ts, b.ts); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

func sign(x int) int { return cmp.Compare(x, 0) }

// randString draws from an alphabet rich in the bytes the escaping cares
// about.
func randString(r *rand.Rand) string {
	alphabet := []byte{0x00, 0x01, 0x02, 0xFE, 0xFF, 'a', 'b'}
	b := make([]byte, r.IntN(6))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func randTS(r *rand.Rand) int64 {
	switch r.IntN(5) {
	case 0:
		return math.MinInt64 + r.Int64N(3)
	case 1:
		return math.MaxInt64 - r.Int64N(3)
	case 2:
		return r.Int64N(5) - 2
	default:
		return int64(r.Uint64())
	}
}

func randSeq(r *rand.Rand) uint64 {
	if r.IntN(3) == 0 {
		return r.Uint64N(4)
	}
	return r.Uint64()
}

func TestKeyEncoding_RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		a, b := randString(r), randString(r)
		ts, seq := randTS(r), randSeq(r)

		if s, gts, gseq, err := decodeSessionKey(appendSessionKey(nil, a, ts, seq)); err != nil || s != a || gts != ts || gseq != seq {
			t.Fatalf("session key (%q,%d,%d): got (%q,%d,%d), %v", a, ts, seq, s, gts, gseq, err)
		}
		if s, gts, gseq, err := decodeCategoryKey(appendCategoryKey(nil, a, ts, seq)); err != nil || s != a || gts != ts || gseq != seq {
			t.Fatalf("category key (%q,%d,%d): got (%q,%d,%d), %v", a, ts, seq, s, gts, gseq, err)
		}
		if c, n, gts, gseq, err := decodeNameKey(appendNameKey(nil, a, b, ts, seq)); err != nil || c != a || n != b || gts != ts || gseq != seq {
			t.Fatalf("name key (%q,%q,%d,%d): got (%q,%q,%d,%d), %v", a, b, ts, seq, c, n, gts, gseq, err)
		}
		if gts, gseq, err := decodeTimeKey(appendTimeKey(nil, ts, seq)); err != nil || gts != ts || gseq != seq {
			t.Fatalf("time key: %v", err)
		}
		if gts, gseq, err := decodeErrorKey(appendErrorKey(nil, ts, seq)); err != nil || gts != ts || gseq != seq {
			t.Fatalf("error key: %v", err)
		}
		if ga, gid, err := decodeDedupeKey(appendDedupeKey(nil, a, b)); err != nil || ga != a || gid != b {
			t.Fatalf("dedupe key (%q,%q): got (%q,%q), %v", a, b, ga, gid, err)
		}
		if name, err := decodeMetaKey(appendMetaKey(nil, a)); err != nil || name != a {
			t.Fatalf("meta key %q: got %q, %v", a, name, err)
		}
		if k := appendSessionKey(nil, a, ts, seq); seqOfKey(k) != seq {
			t.Fatalf("seqOfKey: got %d, want %d", seqOfKey(k), seq)
		}
	}
}

// TestKeyEncoding_Order is the property the range scans rest on: keys sort
// like the tuples they encode.
func TestKeyEncoding_Order(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		a := tuple{randString(r), randTS(r), randSeq(r)}
		b := tuple{randString(r), randTS(r), randSeq(r)}
		if r.IntN(3) == 0 {
			b.s = a.s // exercise the ts and seq parts
		}
		checkOrder(t, a, b)
	}
}

func checkOrder(t *testing.T, a, b tuple) {
	t.Helper()
	want := sign(compareTuple(a, b))
	if got := sign(bytes.Compare(appendSessionKey(nil, a.s, a.ts, a.seq), appendSessionKey(nil, b.s, b.ts, b.seq))); got != want {
		t.Fatalf("session keys of %+v and %+v compare %d, want %d", a, b, got, want)
	}
	if got := sign(bytes.Compare(appendNameKey(nil, a.s, "n", a.ts, a.seq), appendNameKey(nil, b.s, "n", b.ts, b.seq))); got != want {
		t.Fatalf("name keys of %+v and %+v compare %d, want %d", a, b, got, want)
	}
	if got, want := sign(bytes.Compare(appendString(nil, a.s), appendString(nil, b.s))), strings.Compare(a.s, b.s); got != want {
		t.Fatalf("strings %q and %q compare %d, want %d", a.s, b.s, got, want)
	}
	if got, want := sign(bytes.Compare(appendTimestamp(nil, a.ts), appendTimestamp(nil, b.ts))), cmp.Compare(a.ts, b.ts); got != want {
		t.Fatalf("timestamps %d and %d compare %d, want %d", a.ts, b.ts, got, want)
	}
	if got, want := sign(bytes.Compare(appendUint64(nil, a.seq), appendUint64(nil, b.seq))), cmp.Compare(a.seq, b.seq); got != want {
		t.Fatalf("seqs %d and %d compare %d, want %d", a.seq, b.seq, got, want)
	}
}

func FuzzKeyEncoding(f *testing.F) {
	f.Add("a", "a\x00", int64(-1), int64(1), uint64(1), uint64(2))
	f.Add("\x00\xff", "\x00", int64(math.MinInt64), int64(math.MaxInt64), uint64(0), uint64(math.MaxUint64))
	f.Add("", "\x00\x01", int64(0), int64(0), uint64(7), uint64(7))
	f.Fuzz(func(t *testing.T, sa, sb string, ta, tb int64, qa, qb uint64) {
		a, b := tuple{sa, ta, qa}, tuple{sb, tb, qb}
		checkOrder(t, a, b)
		s, ts, seq, err := decodeSessionKey(appendSessionKey(nil, sa, ta, qa))
		if err != nil || s != sa || ts != ta || seq != qa {
			t.Fatalf("round trip (%q,%d,%d): got (%q,%d,%d), %v", sa, ta, qa, s, ts, seq, err)
		}
		// Decoders never panic, and what they accept re-encodes to itself.
		for _, k := range [][]byte{[]byte(sa), []byte(sb), append([]byte{ksSession}, sa...), append([]byte{ksName}, sb...)} {
			if s, ts, seq, err := decodeSessionKey(k); err == nil && !bytes.Equal(appendSessionKey(nil, s, ts, seq), k) {
				t.Fatalf("decodeSessionKey accepted non-canonical %x", k)
			}
			if c, n, ts, seq, err := decodeNameKey(k); err == nil && !bytes.Equal(appendNameKey(nil, c, n, ts, seq), k) {
				t.Fatalf("decodeNameKey accepted non-canonical %x", k)
			}
		}
	})
}

func TestDecodeString_Rejects(t *testing.T) {
	f := func(b string) {
		t.Helper()
		if s, rest, err := decodeString([]byte(b)); err == nil {
			t.Errorf("decodeString(%q) = %q, %q; want an error", b, s, rest)
		}
	}
	f("")
	f("abc")          // no terminator
	f("a\x00")        // cut escape
	f("a\x00\x02")    // unknown escape
	f("a\x00\xff")    // escaped NUL, no terminator
	f("\x00\x00\x01") // NUL not escaped
}

func TestPrefixSuccessor(t *testing.T) {
	f := func(in, want []byte) {
		t.Helper()
		if got := prefixSuccessor(in); !bytes.Equal(got, want) {
			t.Errorf("prefixSuccessor(%x) = %x, want %x", in, got, want)
		}
	}
	f([]byte("t"), []byte("u"))
	f([]byte{'s', 0x00, 0x01}, []byte{'s', 0x00, 0x02})
	f([]byte{'a', 0xFF, 0xFF}, []byte{'b'})
	f([]byte{0xFF}, nil)
}

func TestTimeRange(t *testing.T) {
	p := []byte{ksTime}
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	lo, hi, empty := timeRange(p, time.Time{}, time.Time{})
	if empty || !bytes.Equal(lo, p) || !bytes.Equal(hi, []byte("u")) {
		t.Errorf("unbounded: %x %x %v", lo, hi, empty)
	}
	lo, hi, empty = timeRange(p, t0, t0.Add(time.Second))
	if empty || !bytes.Equal(lo, appendTimestamp(p[:1:1], t0.UnixNano())) || !bytes.Equal(hi, appendTimestamp(p[:1:1], t0.Add(time.Second).UnixNano())) {
		t.Errorf("bounded: %x %x %v", lo, hi, empty)
	}
	if _, _, empty = timeRange(p, t0, t0); !empty {
		t.Error("[t0, t0) is not empty")
	}
	if _, _, empty = timeRange(p, t0.Add(time.Second), t0); !empty {
		t.Error("from after to is not empty")
	}
	if _, _, empty = timeRange(p, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}); !empty {
		t.Error("from after year 2262 is not empty")
	}
	lo, hi, empty = timeRange(p, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	if empty || !bytes.Equal(lo, p) || !bytes.Equal(hi, []byte("u")) {
		t.Errorf("out-of-range bounds are not clamped: %x %x %v", lo, hi, empty)
	}
}
