package log

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// testPayload returns count test envelopes starting at seq first, encoded.
func testPayload(first uint64, count int) []byte {
	var b []byte
	for i := range count {
		e := testEnvelope(first + uint64(i))
		b = AppendEnvelope(b, &e)
	}
	return b
}

func newTestCompressor(t testing.TB) *Compressor {
	t.Helper()
	c, err := NewCompressor()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newTestDecompressor(t testing.TB, limit int) *decompressor {
	t.Helper()
	d, err := newDecompressor(limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// testFrame returns an encoded frame of count events starting at first.
func testFrame(t testing.TB, codec Codec, first uint64, count int) []byte {
	t.Helper()
	payload, err := newTestCompressor(t).Compress(codec, nil, testPayload(first, count))
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendFrame(nil, first, Frame{RaftIndex: 77, Count: uint32(count), Codec: codec, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCodecNames(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseCodec("lz4"); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf("ParseCodec(lz4): err = %v", err)
	}
	if s := Codec(9).String(); s != "codec(9)" || Codec(9).Valid() {
		t.Errorf("Codec(9) = %q, valid %v", s, Codec(9).Valid())
	}
}

func TestCompressRoundTrip(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		c := newTestCompressor(t)
		d := newTestDecompressor(t, MaxPayloadSize)
		for _, src := range [][]byte{nil, []byte("x"), testPayload(1, 100)} {
			prefix := []byte("prefix")
			out, err := c.Compress(codec, prefix, src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatal("Compress did not append to dst")
			}
			got, err := d.decompress(codec, out[len(prefix):])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("round trip of %d bytes gave %d bytes", len(src), len(got))
			}
		}
	})
	if _, err := newTestCompressor(t).Compress(Codec(3), nil, []byte("x")); !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("codec 3: err = %v", err)
	}
}

func TestDecompressLimit(t *testing.T) {
	src := bytes.Repeat([]byte("a"), 1<<20)
	d := newTestDecompressor(t, 1<<10)
	if _, err := d.decompress(CodecS2, s2.Encode(nil, src)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("s2: err = %v, want ErrTooLarge", err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if _, err := d.decompress(CodecZstd, enc.EncodeAll(src, nil)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("zstd: err = %v, want ErrTooLarge", err)
	}
	for _, codec := range []Codec{CodecS2, CodecZstd} {
		if _, err := d.decompress(codec, []byte("garbage!")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v garbage: err = %v, want ErrCorrupt", codec, err)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		d := newTestDecompressor(t, MaxPayloadSize)
		for _, count := range []int{1, 3, 100} {
			b := testFrame(t, codec, 1000, count)
			if len(b)%frameAlign != 0 {
				t.Fatalf("frame of %d bytes is not 8-aligned", len(b))
			}
			b = append(b, "next frame"...)
			h, payload, n, err := DecodeFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != int(h.Size()) || n != len(b)-len("next frame") {
				t.Fatalf("n = %d, Size = %d, encoded %d", n, h.Size(), len(b)-len("next frame"))
			}
			want := FrameHeader{Length: uint32(len(payload)), CRC: h.CRC, RaftIndex: 77, FirstSeq: 1000, Count: uint32(count), Codec: codec}
			if h != want {
				t.Fatalf("header %+v, want %+v", h, want)
			}
			if h.LastSeq() != 1000+uint64(count)-1 {
				t.Fatalf("LastSeq = %d", h.LastSeq())
			}
			raw, err := d.decompress(h.Codec, payload)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, testPayload(1000, count)) {
				t.Fatal("payload differs")
			}
		}
	})
}

func TestDecodeFrameTruncated(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		b := testFrame(t, codec, 1, 5)
		for n := range len(b) {
			_, _, _, err := DecodeFrame(b[:n])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut to %d of %d bytes: err = %v, want ErrTruncated", n, len(b), err)
			}
		}
	})
}

// TestDecodeFrameBitFlip flips every bit of a frame in turn: the decoder
// must reject each one (etcd TestReadRecord style, exhaustively).
func TestDecodeFrameBitFlip(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		b := testFrame(t, codec, 1, 3)
		for i := range len(b) * 8 {
			c := bytes.Clone(b)
			c[i/8] ^= 1 << (i % 8)
			if _, _, _, err := DecodeFrame(c); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d (byte %d) flipped: err = %v, want ErrCorrupt", i, i/8, err)
			}
		}
	})
}

func TestParseHeaderRejects(t *testing.T) {
	good := testFrame(t, CodecNone, 1, 1)
	for _, tc := range []struct {
		name string
		edit func(b []byte)
	}{
		{"version 0", func(b []byte) { b[29] = 0 }},
		{"version 2", func(b []byte) { b[29] = 2 }},
		{"unknown codec", func(b []byte) { b[28] = 3 }},
		{"count 0", func(b []byte) { clear(b[24:28]) }},
		{"reserved byte", func(b []byte) { b[31] = 1 }},
		{"first seq 0", func(b []byte) { clear(b[16:24]) }},
		{"seq overflow", func(b []byte) { copy(b[16:24], bytes.Repeat([]byte{0xff}, 8)) }},
		{"payload too long", func(b []byte) { copy(b[0:4], []byte{0xff, 0xff, 0xff, 0xff}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.edit(b)
			if _, err := ParseHeader(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := ParseHeader(good); err != nil {
		t.Fatal(err)
	}
}

func TestAppendFrameRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first uint64
		f     Frame
		want  error
	}{
		{"count 0", 1, Frame{RaftIndex: 1, Codec: CodecNone}, ErrEmptyFrame},
		{"unknown codec", 1, Frame{RaftIndex: 1, Count: 1, Codec: 7}, ErrUnknownCodec},
		{"seq 0", 0, Frame{RaftIndex: 1, Count: 1}, ErrSeqOverflow},
		{"seq overflow", 1<<64 - 2, Frame{RaftIndex: 1, Count: 2}, ErrSeqOverflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendFrame([]byte("keep"), tc.first, tc.f)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if string(b) != "keep" {
				t.Fatalf("dst changed to %q", b)
			}
		})
	}
}

// TestGoldenFrame pins the on-disk format: a frame of two envelopes with
// codec none must encode to exactly testdata/frame_v1.golden (hex). Run
// with -update after a deliberate format change (and bump FormatVersion).
func TestGoldenFrame(t *testing.T) {
	payload := testPayload(1, 2)
	b, err := AppendFrame(nil, 1, Frame{RaftIndex: 5, Count: 2, Codec: CodecNone, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	got := hex.Dump(b)
	path := filepath.Join("testdata", "frame_v1.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("frame encoding changed:\n%s\nwant:\n%s", got, want)
	}
	// The header fields at their documented offsets.
	if !strings.HasPrefix(got, "00000000  ") || b[29] != FormatVersion || b[28] != byte(CodecNone) || b[8] != 5 || b[16] != 1 || b[24] != 2 {
		t.Fatalf("header layout: % x", b[:HeaderSize])
	}
}
