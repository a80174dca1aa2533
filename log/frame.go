package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Frame layout constants; see the package documentation.
const (
	// HeaderSize is the size of a frame header. Payloads are padded so every
	// header starts at a multiple of 8 within its segment.
	HeaderSize = 32
	// FormatVersion is the version byte every frame this package writes
	// carries, and the only one it reads.
	FormatVersion = 1
	// MaxPayloadSize bounds a frame's stored payload and what a reader agrees
	// to decompress one into. Raft entries are far smaller (--max-body is
	// 8 MiB); the bound keeps a damaged length from allocating gigabytes.
	MaxPayloadSize = 256 << 20

	frameAlign = 8
)

// Frame is one Raft entry's worth of events, as the FSM hands it to Append.
type Frame struct {
	RaftIndex uint64 // the Raft log index the frame came from
	Count     uint32 // number of envelopes in the payload (>=1)
	Codec     Codec
	Payload   []byte // envelopes, already compressed with Codec
}

// FrameHeader is the decoded 32-byte header of a stored frame.
type FrameHeader struct {
	Length    uint32 // payload bytes, not counting the padding
	CRC       uint32 // CRC-32C of header bytes [8:32] and the payload
	RaftIndex uint64
	FirstSeq  uint64
	Count     uint32
	Codec     Codec
}

// Size returns the bytes the frame occupies in its segment: the header plus
// the payload padded to a multiple of 8.
func (h FrameHeader) Size() int64 { return HeaderSize + int64(padded(h.Length)) }

// LastSeq returns the seq of the frame's last event.
func (h FrameHeader) LastSeq() uint64 { return h.FirstSeq + uint64(h.Count) - 1 }

func padded(n uint32) uint64 { return (uint64(n) + frameAlign - 1) &^ (frameAlign - 1) }

// AppendFrame appends the encoding of f, whose first event takes seq
// firstSeq, to dst: header, payload, zero padding. It rejects frames a reader
// would reject.
func AppendFrame(dst []byte, firstSeq uint64, f Frame) ([]byte, error) {
	if err := checkFrame(firstSeq, f); err != nil {
		return dst, err
	}
	start := len(dst)
	size := HeaderSize + int(padded(uint32(len(f.Payload))))
	dst = append(dst, make([]byte, size)...) // optimised to a memclr, no allocation
	b := dst[start:]
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(f.Payload)))
	binary.LittleEndian.PutUint64(b[8:16], f.RaftIndex)
	binary.LittleEndian.PutUint64(b[16:24], firstSeq)
	binary.LittleEndian.PutUint32(b[24:28], f.Count)
	b[28] = byte(f.Codec)
	b[29] = FormatVersion
	copy(b[HeaderSize:], f.Payload)
	binary.LittleEndian.PutUint32(b[4:8], frameCRC(b[:HeaderSize], f.Payload))
	return dst, nil
}

func checkFrame(firstSeq uint64, f Frame) error {
	switch {
	case f.Count == 0:
		return fmt.Errorf("frame at raft index %d: %w", f.RaftIndex, ErrEmptyFrame)
	case !f.Codec.Valid():
		return fmt.Errorf("frame at raft index %d: %v: %w", f.RaftIndex, f.Codec, ErrUnknownCodec)
	case len(f.Payload) > MaxPayloadSize:
		return fmt.Errorf("frame at raft index %d: payload of %d bytes: %w", f.RaftIndex, len(f.Payload), ErrTooLarge)
	case firstSeq == 0 || uint64(f.Count) > math.MaxUint64-firstSeq:
		return fmt.Errorf("frame at raft index %d: seqs %d+%d: %w", f.RaftIndex, firstSeq, f.Count, ErrSeqOverflow)
	}
	return nil
}

// ParseHeader decodes and checks a frame header without looking at the
// payload: the version, the codec, count >= 1, the reserved bytes, the
// payload length bound, and that first seq + count fits in a uint64 (so the
// last seq is below MaxUint64 and the next frame's seq is representable).
// The CRC is not checked.
func ParseHeader(b []byte) (FrameHeader, error) {
	if len(b) < HeaderSize {
		return FrameHeader{}, fmt.Errorf("frame header: %d of %d bytes: %w", len(b), HeaderSize, ErrTruncated)
	}
	h := FrameHeader{
		Length:    binary.LittleEndian.Uint32(b[0:4]),
		CRC:       binary.LittleEndian.Uint32(b[4:8]),
		RaftIndex: binary.LittleEndian.Uint64(b[8:16]),
		FirstSeq:  binary.LittleEndian.Uint64(b[16:24]),
		Count:     binary.LittleEndian.Uint32(b[24:28]),
		Codec:     Codec(b[28]),
	}
	switch {
	case b[29] != FormatVersion:
		return h, fmt.Errorf("frame header: version %d: %w", b[29], ErrCorrupt)
	case b[30] != 0 || b[31] != 0:
		return h, fmt.Errorf("frame header: reserved bytes not zero: %w", ErrCorrupt)
	case !h.Codec.Valid():
		return h, fmt.Errorf("frame header: %v: %w", h.Codec, ErrCorrupt)
	case h.Count == 0:
		return h, fmt.Errorf("frame header: count 0: %w", ErrCorrupt)
	case h.Length > MaxPayloadSize:
		return h, fmt.Errorf("frame header: payload length %d: %w", h.Length, ErrCorrupt)
	case h.FirstSeq == 0 || uint64(h.Count) > math.MaxUint64-h.FirstSeq:
		return h, fmt.Errorf("frame header: seqs %d+%d: %w", h.FirstSeq, h.Count, ErrCorrupt)
	}
	return h, nil
}

// DecodeFrame decodes the frame at the start of b: ParseHeader, then the
// payload's presence, its CRC and its zero padding. payload aliases b; n is
// the size of the frame including padding. It never panics, whatever b holds.
func DecodeFrame(b []byte) (h FrameHeader, payload []byte, n int, err error) {
	h, err = ParseHeader(b)
	if err != nil {
		return h, nil, 0, err
	}
	size := h.Size()
	if int64(len(b)) < size {
		return h, nil, 0, fmt.Errorf("frame at seq %d: %d of %d bytes: %w", h.FirstSeq, len(b), size, ErrTruncated)
	}
	payload = b[HeaderSize : HeaderSize+int(h.Length) : HeaderSize+int(h.Length)]
	if got := frameCRC(b[:HeaderSize], payload); got != h.CRC {
		return h, nil, 0, fmt.Errorf("frame at seq %d: crc %08x, header says %08x: %w", h.FirstSeq, got, h.CRC, ErrChecksum)
	}
	for _, c := range b[HeaderSize+int(h.Length) : size] {
		if c != 0 {
			return h, nil, 0, fmt.Errorf("frame at seq %d: padding not zero: %w", h.FirstSeq, ErrCorrupt)
		}
	}
	return h, payload, int(size), nil
}

// frameCRC is the CRC-32C (Castagnoli) of header bytes [8:32] followed by
// the payload. crc32.MakeTable returns the package's cached table for
// Castagnoli (hardware accelerated on amd64 and arm64), so there is no
// package-level state here.
func frameCRC(header, payload []byte) uint32 {
	t := crc32.MakeTable(crc32.Castagnoli)
	return crc32.Update(crc32.Update(0, t, header[8:HeaderSize]), t, payload)
}

// crc32c is the CRC-32C of b.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
