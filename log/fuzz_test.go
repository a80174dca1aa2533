package log

import (
	"bytes"
	"errors"
	"testing"

	"github.com/theeye/theeye"
)

// fuzzDecodeLimit keeps decompression bombs found by the fuzzer cheap.
const fuzzDecodeLimit = 1 << 20

// FuzzDecodeFrame decodes arbitrary bytes as a frame. It must never panic;
// a frame that decodes must re-encode to the same bytes. Because a random
// input almost never passes the CRC, the input is also wrapped, as the
// payload, into a well-formed frame with a codec and count taken from it,
// so the decompressors and the envelope decoder see fuzzed bytes too.
func FuzzDecodeFrame(f *testing.F) {
	for _, codec := range allCodecs {
		for _, count := range []int{1, 3} {
			f.Add(testFrame(f, codec, 1, count))
		}
		c := newTestCompressor(f)
		p, err := c.Compress(codec, []byte{byte(codec)}, testPayload(1, 2))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(p, 1)) // wrapped: codec byte, payload, count-1
	}
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	dec := newTestDecompressor(f, fuzzDecodeLimit)

	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, n, err := DecodeFrame(data)
		if err == nil {
			if n <= 0 || n > len(data) || int64(n) != h.Size() {
				t.Fatalf("n = %d for %d bytes, Size %d", n, len(data), h.Size())
			}
			again, err := AppendFrame(nil, h.FirstSeq, Frame{RaftIndex: h.RaftIndex, Count: h.Count, Codec: h.Codec, Payload: payload})
			if err != nil {
				t.Fatalf("decoded frame does not encode: %v", err)
			}
			if !bytes.Equal(again, data[:n]) {
				t.Fatalf("re-encoded frame differs")
			}
			_ = decodePayload(dec, h, payload)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}

		if len(data) == 0 {
			return
		}
		codec := Codec(data[0] % 3)
		count := uint32(data[len(data)-1]%8) + 1
		frame, err := AppendFrame(nil, 1, Frame{RaftIndex: 1, Count: count, Codec: codec, Payload: data[1:]})
		if err != nil {
			t.Fatal(err)
		}
		h, payload, _, err = DecodeFrame(frame)
		if err != nil {
			t.Fatalf("well-formed frame rejected: %v", err)
		}
		if err := decodePayload(dec, h, payload); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("payload error %v wraps neither ErrCorrupt nor ErrTooLarge", err)
		}
	})
}

// decodePayload decompresses a payload and decodes its Count envelopes the
// way ReadFrom does.
func decodePayload(d *decompressor, h FrameHeader, payload []byte) error {
	raw, err := d.decompress(h.Codec, payload)
	if err != nil {
		return err
	}
	var e theeye.Envelope
	var apps appCache
	for range h.Count {
		k, err := decodeEnvelope(raw, &e, &apps)
		if err != nil {
			return err
		}
		raw = raw[k:]
	}
	if len(raw) != 0 {
		return ErrCorrupt
	}
	return nil
}

// FuzzDecodeEnvelope decodes arbitrary bytes as an envelope. It must never
// panic, and an envelope that decodes must re-encode to the bytes it came
// from (the encoding is canonical).
func FuzzDecodeEnvelope(f *testing.F) {
	for _, e := range envelopeCases() {
		if len(e.Raw) < 1000 {
			f.Add(AppendEnvelope(nil, &e))
		}
	}
	f.Add(testPayload(1, 3))
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x00})

	f.Fuzz(func(t *testing.T, data []byte) {
		e, n, err := DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d for %d bytes", n, len(data))
		}
		if EnvelopeSize(&e) != n {
			t.Fatalf("EnvelopeSize %d, consumed %d", EnvelopeSize(&e), n)
		}
		if again := AppendEnvelope(nil, &e); !bytes.Equal(again, data[:n]) {
			t.Fatalf("re-encoded envelope differs:\n% x\n% x", again, data[:n])
		}
	})
}
