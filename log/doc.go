// Package log owns The Eye's append-only event log on disk: segment files,
// frames and their CRCs, payload compression, sealing, fsync, tail recovery
// and readers by seq.
//
// The FSM on every node appends one frame per Raft entry; the log assigns
// each event the next seq (dense, from 1), so every node gives the same
// event the same seq. The indexer tails the log with Changed and ReadFrom.
// log/DESIGN.md has the crash-safety argument per operation, the recovery
// procedure, limitations and assumptions.
//
// # Files
//
// A log is a directory:
//
//	00000000000000000001.seg   segment; the name is the seq of its first event, %020d
//	00000000000000012345.seg   ...; only the last segment is ever written
//	00000000000000012345.seg.broken   the segment as found before a torn tail was cut off
//	SYNCED                     the sync mark: how far the last Sync fsynced (32 bytes)
//	LOCK                       held while the log is open
//
// A segment is a sequence of frames and nothing else. The active (last)
// segment is sealed, fsynced and never written again, when the next frame
// would take it past Config.SegmentSize; the next segment is then created
// and the directory fsynced before any frame goes into it.
//
// # Frames
//
// A frame is a 32-byte header and a payload zero-padded to a multiple of 8
// bytes, so every header is 8-byte aligned. Header, little-endian:
//
//	[0:4]   payload length, u32 (not counting padding; at most MaxPayloadSize)
//	[4:8]   CRC-32C (Castagnoli) of header bytes [8:32] followed by the payload
//	[8:16]  Raft index of the entry the frame came from, u64
//	[16:24] seq of the frame's first event, u64
//	[24:28] number of events, u32, >= 1
//	[28]    codec: 0 none, 1 s2 (one block), 2 zstd (one frame, no zstd checksum)
//	[29]    format version, 1
//	[30:32] zero
//
// Readers check the version, the codec, count >= 1, the reserved and padding
// bytes, the CRC, that each frame's first seq follows the previous frame's
// last, and that Raft indexes strictly increase.
//
// # Payload
//
// Decompressed, a payload is Count envelopes back to back, each
//
//	uvarint(len(body)) body
//	body = zigzag varint ReceivedAt | uvarint(len(App)) App | ID (16 bytes) | Raw (the rest of body)
//
// with minimally encoded varints. AppendEnvelope and DecodeEnvelope are the
// codec; Compressor compresses a built payload.
//
// # Durability
//
// Append writes and does not fsync. Sync fsyncs the active segment and
// records the point reached in SYNCED; the FSM calls it from
// FSMSnapshot.Persist, before Raft may truncate its own log, and Close calls
// it. There is no background sync in this package. After a crash Raft
// re-applies the entries after its last snapshot and the FSM skips those
// whose Raft index is at or below LastRaftIndex, so whatever unsynced tail
// was lost is written again, with the same seqs.
//
// # Reading
//
// Open keeps, per segment, the first seq and offset of every frame (16 bytes
// per frame), from a header-only scan of sealed segments and a full,
// CRC-checked scan of the last one; Append extends it. ReadFrom binary
// searches it, preads whole frames through file handles kept open, checks
// their CRC and decompresses into reused buffers.
package log
