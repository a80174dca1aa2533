package log

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/theeye/theeye"
)

// benchEvents returns n envelopes shaped like the calibration data
// (CALIBRATION.md section 5): ~300-byte JSON events with 400 sessions, 9
// categories, 8 path templates with random ids, random numbers.
func benchEvents(n int) []theeye.Envelope {
	rng := rand.New(rand.NewPCG(1, 2))
	categories := [...]string{"page", "click", "form", "scroll", "error", "search", "cart", "auth", "video"}
	paths := [...]string{"/products/%d", "/users/%d/orders", "/search?q=%d", "/cart/%d", "/blog/%d", "/help/%d", "/checkout/%d/pay", "/api/v1/items/%d"}
	hosts := [...]string{"www.example.com", "shop.example.com", "m.example.com", "api.example.com", "blog.example.com"}
	sessions := make([]string, 400)
	for i := range sessions {
		sessions[i] = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
	}
	out := make([]theeye.Envelope, n)
	ts := int64(1_735_689_600_000_000_000)
	for i := range out {
		ts += int64(rng.IntN(1_000_000))
		var id theeye.EventID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		raw := fmt.Appendf(nil,
			`{"session_id":%q,"category":%q,"name":"event_%d","timestamp":"2025-01-01T00:%02d:%02d.%03dZ","data":{"host":%q,"path":%q,"method":%q,"status":%d,"duration_ms":%d,"bytes":%d,"ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}}`,
			sessions[rng.IntN(len(sessions))], categories[rng.IntN(len(categories))], rng.IntN(20),
			rng.IntN(60), rng.IntN(60), rng.IntN(1000),
			hosts[rng.IntN(len(hosts))], fmt.Sprintf(paths[rng.IntN(len(paths))], rng.IntN(100000)),
			[...]string{"GET", "POST"}[rng.IntN(2)], [...]int{200, 200, 200, 201, 304, 404, 500}[rng.IntN(7)],
			rng.IntN(2000), rng.IntN(1<<20))
		out[i] = theeye.Envelope{ReceivedAt: ts, App: [...]string{"shop", "blog", "admin"}[rng.IntN(3)], ID: id, Raw: raw}
	}
	return out
}

// BenchmarkAppend measures what the FSM pays per Raft entry: encode the
// envelopes, compress the payload, append the frame (write, no fsync, on
// real files; seals every 64 MiB fsync).
func BenchmarkAppend(b *testing.B) {
	events := benchEvents(4096)
	for _, codec := range allCodecs {
		for _, n := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("codec=%v/events=%d", codec, n), func(b *testing.B) {
				l, err := Open(b.TempDir(), Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				comp := newTestCompressor(b)
				var raw, payload []byte
				var rawBytes, stored int64
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					raw = raw[:0]
					for range n {
						raw = AppendEnvelope(raw, &events[i%len(events)])
						i++
					}
					payload, err = comp.Compress(codec, payload[:0], raw)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := l.Append(Frame{RaftIndex: l.LastRaftIndex() + 1, Count: uint32(n), Codec: codec, Payload: payload}); err != nil {
						b.Fatal(err)
					}
					rawBytes += int64(len(raw))
					stored += HeaderSize + int64(padded(uint32(len(payload))))
				}
				b.SetBytes(rawBytes / int64(b.N))
				b.ReportMetric(float64(rawBytes)/float64(stored), "ratio")
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkReadFrom measures the indexer's side: read events back by seq,
// one frame (events=100) or a run of frames (events=10000) per call.
func BenchmarkReadFrom(b *testing.B) {
	events := benchEvents(4096)
	const perFrame = 100
	const frames = 400
	for _, codec := range allCodecs {
		b.Run(fmt.Sprintf("codec=%v", codec), func(b *testing.B) {
			l, err := Open(b.TempDir(), Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			comp := newTestCompressor(b)
			var raw, payload []byte
			var rawBytes int64
			for f := range frames {
				raw = raw[:0]
				for j := range perFrame {
					e := &events[(f*perFrame+j)%len(events)]
					raw = AppendEnvelope(raw, e)
					rawBytes += int64(len(e.Raw))
				}
				if payload, err = comp.Compress(codec, payload[:0], raw); err != nil {
					b.Fatal(err)
				}
				if _, err := l.Append(Frame{RaftIndex: uint64(f + 1), Count: perFrame, Codec: codec, Payload: payload}); err != nil {
					b.Fatal(err)
				}
			}
			rawPerEvent := rawBytes / (frames * perFrame)
			fn := func(uint64, *theeye.Envelope) error { return nil }
			for _, n := range []int{100, 10000} {
				b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(rawPerEvent * int64(n))
					from := uint64(1)
					for b.Loop() {
						got, err := l.ReadFrom(from, n, fn)
						if err != nil || got != n {
							b.Fatalf("ReadFrom(%d, %d) = %d, %v", from, n, got, err)
						}
						from += uint64(n)
						if from+uint64(n) > l.LastSeq()+1 {
							from = 1
						}
					}
					b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
				})
			}
		})
	}
}

// BenchmarkEnvelope measures the envelope codec alone.
func BenchmarkEnvelope(b *testing.B) {
	events := benchEvents(256)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(EnvelopeSize(&events[0])))
		var buf []byte
		i := 0
		for b.Loop() {
			buf = AppendEnvelope(buf[:0], &events[i%len(events)])
			i++
		}
	})
	b.Run("decode", func(b *testing.B) {
		var buf []byte
		for i := range events {
			buf = AppendEnvelope(buf, &events[i])
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(buf) / len(events)))
		var e theeye.Envelope
		var apps appCache
		rest := buf
		for b.Loop() {
			if len(rest) == 0 {
				rest = buf
			}
			k, err := decodeEnvelope(rest, &e, &apps)
			if err != nil {
				b.Fatal(err)
			}
			rest = rest[k:]
		}
	})
}

// BenchmarkCompress measures the codecs alone on one frame's payload.
func BenchmarkCompress(b *testing.B) {
	events := benchEvents(1000)
	for _, codec := range allCodecs {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("codec=%v/events=%d", codec, n), func(b *testing.B) {
				var raw []byte
				for i := range n {
					raw = AppendEnvelope(raw, &events[i])
				}
				comp := newTestCompressor(b)
				var out []byte
				var err error
				b.ReportAllocs()
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					if out, err = comp.Compress(codec, out[:0], raw); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(raw))/float64(len(out)), "ratio")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/event")
			})
		}
	}
}
