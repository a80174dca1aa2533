package index

import (
	"bytes"
	"testing"
)

// FuzzDecodeValues feeds arbitrary bytes to the decoders of the values a
// scan reads (app-prefixed bodies and pointers, error headers, dedupe
// values): none may panic, what they accept must re-encode to the same
// bytes, and their slices must stay inside the input.
func FuzzDecodeValues(f *testing.F) {
	f.Add(appendAppValue(nil, "web", `{"seq":1}`))
	f.Add(appendAppValue(nil, "", "page interaction"))
	f.Add(appendErrorHeader(nil, 5, "web", "c", "n"))
	f.Add(appendDedupeValue(nil, 7, []byte(`{"id":"x"}`)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add(appendRevalidationResult(nil, revalidationResult{Checked: 3, Resume: appendErrorKey(nil, 5, 9)}))
	f.Add(appendRevalidationResult(nil, revalidationResult{Checked: 3, Accepted: 1, Done: true}))
	f.Fuzz(func(t *testing.T, v []byte) {
		if app, rest, err := decodeAppValue(v); err == nil {
			if got := appendAppValue(nil, string(app), string(rest)); !bytes.Equal(got, v) && canonicalUvarintPrefix(v) {
				t.Fatalf("app value %x decoded to (%q, %q), re-encoded %x", v, app, rest, got)
			}
			if len(app)+len(rest) > len(v) || cap(app) != len(app) {
				t.Fatalf("app value %x: slices out of bounds", v)
			}
		}
		if h, rec, err := decodeErrorValue(v); err == nil {
			if len(h.app)+len(h.category)+len(h.name)+len(rec) > len(v) {
				t.Fatalf("error value %x: slices longer than the input", v)
			}
		}
		if r, err := decodeRevalidationResult(v); err == nil {
			if got := appendRevalidationResult(nil, r); !bytes.Equal(got, v) && len(v) != 24 {
				t.Fatalf("revalidation value %x decoded to %+v, re-encoded %x", v, r, got)
			}
			if r.Done == (r.Resume != nil) {
				t.Fatalf("revalidation value %x: done %v with resume key %x", v, r.Done, r.Resume)
			}
		}
		if seq, hash, err := decodeDedupeValue(v); err == nil {
			if got := append(appendUint64(nil, seq), hash[:]...); !bytes.Equal(got, v) {
				t.Fatalf("dedupe value %x re-encoded %x", v, got)
			}
		}
	})
}

// canonicalUvarintPrefix reports whether v starts with a minimal uvarint
// (a padded one, such as 0x80 0x00, decodes but re-encodes shorter).
func canonicalUvarintPrefix(v []byte) bool {
	for i, b := range v {
		if b < 0x80 {
			return i == 0 || b != 0
		}
	}
	return false
}
