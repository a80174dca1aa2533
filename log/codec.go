package log

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec says how a frame payload is compressed.
type Codec uint8

// The codecs a frame may use. The value is stored in byte 28 of the frame
// header, so these numbers are part of the on-disk format.
const (
	CodecNone Codec = 0 // payload stored as is
	CodecS2   Codec = 1 // one s2 block (s2.Encode)
	CodecZstd Codec = 2 // one zstd frame (Encoder.EncodeAll, SpeedFastest, no zstd checksum)
)

// String returns the name ParseCodec accepts: "none", "s2" or "zstd".
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

// Valid reports whether c is a codec this version of the format knows.
func (c Codec) Valid() bool { return c <= CodecZstd }

// ParseCodec parses "none", "s2" or "zstd".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none":
		return CodecNone, nil
	case "s2":
		return CodecS2, nil
	case "zstd":
		return CodecZstd, nil
	}
	return 0, fmt.Errorf("parse codec %q: %w", s, ErrUnknownCodec)
}

// Compressor compresses frame payloads.
//
// It is safe for concurrent use, but it owns exactly one zstd encoder, so
// concurrent zstd calls run one after the other; a goroutine that needs to
// compress in parallel with others should have its own Compressor. The s2 and
// none codecs keep no state.
type Compressor struct {
	zstd *zstd.Encoder
}

// NewCompressor returns a Compressor; call Close when done with it.
func NewCompressor() (*Compressor, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		// The frame's CRC-32C already covers the compressed bytes.
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	return &Compressor{zstd: enc}, nil
}

// Compress appends src compressed with codec to dst and returns the extended
// slice. src must not be longer than MaxPayloadSize, which is also the most a
// reader will decompress.
func (c *Compressor) Compress(codec Codec, dst, src []byte) ([]byte, error) {
	if len(src) > MaxPayloadSize {
		return dst, fmt.Errorf("compress %d bytes: %w", len(src), ErrTooLarge)
	}
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecS2:
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("compress %d bytes with s2: %w", len(src), ErrTooLarge)
		}
		dst = slices.Grow(dst, n)
		out := s2.Encode(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(out)], nil
	case CodecZstd:
		return c.zstd.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("compress with %v: %w", codec, ErrUnknownCodec)
}

// Close releases the encoder. The Compressor must not be used afterwards.
func (c *Compressor) Close() {
	_ = c.zstd.Close() // EncodeAll-only use: Close has nothing to flush
}

// decompressor undoes Compress. It is not safe for concurrent use: each
// reader borrows one from the Log's free list. The slice it returns stays
// valid until the next call.
type decompressor struct {
	zstd  *zstd.Decoder
	limit int    // largest decompressed payload accepted
	buf   []byte // reused output buffer for s2 and zstd
}

func newDecompressor(limit int) (*decompressor, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(limit)),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd decoder: %w", err)
	}
	return &decompressor{zstd: dec, limit: limit}, nil
}

func (d *decompressor) decompress(codec Codec, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return src, nil
	case CodecS2:
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("s2 payload: %w: %w", ErrCorrupt, err)
		}
		if n > d.limit {
			return nil, fmt.Errorf("s2 payload decodes to %d bytes: %w", n, ErrTooLarge)
		}
		if cap(d.buf) < n {
			d.buf = make([]byte, n)
		}
		out, err := s2.Decode(d.buf[:n], src)
		if err != nil {
			return nil, fmt.Errorf("s2 payload: %w: %w", ErrCorrupt, err)
		}
		return out, nil
	case CodecZstd:
		out, err := d.zstd.DecodeAll(src, d.buf[:0])
		if cap(out) > cap(d.buf) {
			d.buf = out[:0]
		}
		if err != nil {
			if err == zstd.ErrDecoderSizeExceeded {
				return nil, fmt.Errorf("zstd payload: %w: %w", ErrTooLarge, err)
			}
			return nil, fmt.Errorf("zstd payload: %w: %w", ErrCorrupt, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("decompress %v: %w", codec, ErrUnknownCodec)
}

// trim drops a buffer grown by one unusually large frame, so an idle reader
// does not pin it.
func (d *decompressor) trim() {
	if cap(d.buf) > maxRetainedBuffer {
		d.buf = nil
	}
}

func (d *decompressor) close() { d.zstd.Close() }
