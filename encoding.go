package theeye

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
)

// Small helpers that several packages need and that need nothing but the
// standard library: they live here once.

// UvarintLen returns len(binary.AppendUvarint(nil, x)): decoders use it to
// refuse varints that are not minimal.
func UvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// VarintLen returns len(binary.AppendVarint(nil, x)).
func VarintLen(x int64) int {
	ux := uint64(x) << 1 // zig-zag, as binary.PutVarint does
	if x < 0 {
		ux = ^ux
	}
	return UvarintLen(ux)
}

// JSONSyntaxError returns where (the 0-based offset of the bad byte) and
// why b is not valid JSON, as encoding/json says it, for error messages.
func JSONSyntaxError(b []byte) (offset int64, message string) {
	var raw json.RawMessage
	err := json.Unmarshal(b, &raw)
	if err == nil {
		return int64(len(b)), "invalid JSON"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// encoding/json counts the bytes read, the bad one included.
		return max(se.Offset-1, 0), err.Error()
	}
	return int64(len(b)), err.Error()
}

// PrintfLogger gives a *slog.Logger the printf-style methods Pebble's
// Logger interface has (Infof, Errorf, Fatalf), so that the index and the
// Raft log store log through slog without this package importing Pebble.
// Pebble's informational chatter (flushes, compactions, WAL recycling)
// goes to Debug so that it stays quiet.
type PrintfLogger struct{ L *slog.Logger }

// Infof logs at Debug.
func (p PrintfLogger) Infof(format string, args ...any) {
	if p.L.Enabled(context.Background(), slog.LevelDebug) {
		p.L.Debug(fmt.Sprintf(format, args...))
	}
}

// Errorf logs at Error.
func (p PrintfLogger) Errorf(format string, args ...any) {
	p.L.Error(fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble for states it cannot continue from, and Pebble
// expects it not to return. A library must not exit the process, so it
// logs and panics.
func (p PrintfLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.L.Error(msg, "fatal", true)
	panic("pebble: " + msg)
}
