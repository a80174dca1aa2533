package raftnode

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/theeye/theeye/log"
)

// FuzzReadBackup: the backup reader never panics, refuses whatever is not
// a well-formed backup with ErrBadBackup, and accepts only files that are.
// Mutated files fail the SHA-256 of the trailer long before anything
// else, so with fix set the fuzzer's bytes get a header CRC and a trailer
// that match them: what is left to refuse is the structure (the meta
// line, the frames, their seqs and Raft indexes), and a file accepted
// then must hold exactly the frames its header announces.
func FuzzReadBackup(f *testing.F) {
	seeds := [][]byte{
		backupOf(f, testLog(f, 1, 3), testState(12), 20, 4),
		backupOf(f, testLog(f, 101, 2), testState(11), 30, 2),
		backupOf(f, testLog(f, 1, 0), testState(3), 5, 1),
	}
	for i, s := range seeds {
		// The same bytes in every fuzzing process: a fixed taken-at time.
		binary.LittleEndian.PutUint64(s[48:], 1_700_000_000_000)
		seeds[i] = fixChecksums(s)
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = fixChecksums(data)
		}
		info, err := VerifyBackup(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("a refusal that is not ErrBadBackup: %v", err)
			}
			return
		}
		if !fix {
			// Without a SHA-256 collision, only the files made whole are valid.
			if !bytes.Equal(data, seeds[0]) && !bytes.Equal(data, seeds[1]) && !bytes.Equal(data, seeds[2]) {
				t.Fatalf("accepted a file no writer made: %q", data)
			}
		}
		checkAccepted(t, data, info)
	})
}

// fixChecksums gives data a header CRC and a trailer that match its bytes,
// taking the first 64 as the header and the last 56 as the trailer.
func fixChecksums(data []byte) []byte {
	if len(data) < BackupHeaderSize+BackupTrailerSize {
		return data
	}
	data = bytes.Clone(data)
	binary.LittleEndian.PutUint32(data[60:], crc32c(data[:60]))
	body := data[:len(data)-BackupTrailerSize]
	sum := sha256.Sum256(body)
	return appendTrailer(body, uint64(len(body)-BackupHeaderSize), sum[:])
}

// checkAccepted checks, without the reader, what an accepted file must be:
// its frames, decoded one after the other after the meta line, hold the
// header's seqs exactly and end where the trailer begins.
func checkAccepted(t *testing.T, data []byte, info BackupInfo) {
	if info.Size != int64(len(data)) || info.State == nil {
		t.Fatalf("accepted %d bytes, info says %d; state %v", len(data), info.Size, info.State)
	}
	body := data[BackupHeaderSize : len(data)-BackupTrailerSize]
	nl := bytes.IndexByte(body, '\n')
	if nl < 0 {
		t.Fatal("accepted a body without a meta line")
	}
	rest, next, frames := body[nl+1:], info.FirstSeq, 0
	for len(rest) > 0 {
		h, _, n, err := log.DecodeFrame(rest)
		if err != nil || h.FirstSeq != next {
			t.Fatalf("accepted a body whose frame at seq %d is %+v, %v", next, h, err)
		}
		rest, next, frames = rest[n:], h.LastSeq()+1, frames+1
	}
	if next != info.LastSeq+1 || frames != info.Frames {
		t.Fatalf("accepted frames up to seq %d (%d frames), the header says %d (%d)", next-1, frames, info.LastSeq, info.Frames)
	}
}
