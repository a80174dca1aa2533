package log

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/theeye/theeye"
)

func envelopeCases() []theeye.Envelope {
	return []theeye.Envelope{
		{},
		{ReceivedAt: 1, App: "a", Raw: []byte(`{}`)},
		{ReceivedAt: -1, App: "shop", ID: theeye.EventID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Raw: []byte(`{"name":"view"}`)},
		{ReceivedAt: math.MaxInt64, App: strings.Repeat("x", 300), Raw: bytes.Repeat([]byte("y"), 70000)},
		{ReceivedAt: math.MinInt64, App: "ünïcödé", ID: theeye.EventID{0xff}},
		testEnvelope(42),
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	var buf []byte
	cases := envelopeCases()
	for i := range cases {
		before := len(buf)
		buf = AppendEnvelope(buf, &cases[i])
		if got := len(buf) - before; got != EnvelopeSize(&cases[i]) {
			t.Errorf("case %d: EnvelopeSize = %d, encoded %d bytes", i, EnvelopeSize(&cases[i]), got)
		}
	}
	rest := buf
	for i := range cases {
		e, n, err := DecodeEnvelope(rest)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !equalEnvelope(&e, &cases[i]) {
			t.Fatalf("case %d: got %+v, want %+v", i, e, cases[i])
		}
		if cap(e.Raw) != len(e.Raw) {
			t.Errorf("case %d: Raw capacity %d not clipped to %d", i, cap(e.Raw), len(e.Raw))
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left over", len(rest))
	}
}

func TestDecodeEnvelopeRawAliasesInput(t *testing.T) {
	e := testEnvelope(7)
	b := AppendEnvelope(nil, &e)
	got, _, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 'X'
	if got.Raw[len(got.Raw)-1] != 'X' {
		t.Fatal("Raw does not alias the input")
	}
}

func TestDecodeEnvelopeTruncated(t *testing.T) {
	for i, e := range envelopeCases() {
		b := AppendEnvelope(nil, &e)
		for n := range len(b) {
			if _, _, err := DecodeEnvelope(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("case %d cut to %d of %d bytes: err = %v, want ErrCorrupt", i, n, len(b), err)
			}
		}
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"overlong length varint", []byte{0x80, 0x00}},
		{"length varint overflow", bytes.Repeat([]byte{0xff}, 11)},
		{"length past end", []byte{5, 0, 0}},
		{"overlong received_at", append([]byte{19, 0x80, 0x00, 0}, make([]byte, 16)...)},
		{"app past body", append([]byte{18, 0, 100}, make([]byte, 16)...)},
		{"short id", []byte{3, 0, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := DecodeEnvelope(tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestDecodeEnvelopeReusesApp(t *testing.T) {
	a, b := testEnvelope(1), testEnvelope(2) // same app
	buf := AppendEnvelope(AppendEnvelope(nil, &a), &b)
	var e theeye.Envelope
	n, err := decodeEnvelope(buf, &e, nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := decodeEnvelope(buf[n:], &e, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding an envelope of the same app allocates %v times", allocs)
	}
	// With a cache, alternating apps do not allocate either.
	var apps appCache
	c := testEnvelope(5) // another app
	buf = AppendEnvelope(buf, &c)
	allocs = testing.AllocsPerRun(100, func() {
		for rest := buf; len(rest) > 0; {
			k, err := decodeEnvelope(rest, &e, &apps)
			if err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding with an app cache allocates %v times", allocs)
	}
	if e.App != c.App {
		t.Fatalf("App %q, want %q", e.App, c.App)
	}
}
