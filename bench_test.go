package theeye_test

import (
	"testing"
	"time"

	"github.com/theeye/theeye"
)

// BenchmarkParseEvent: the indexer's per-event parse and validation
// (no schema), the brief's form-submit example.
func BenchmarkParseEvent(b *testing.B) {
	raw := []byte(`{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "form interaction", "name": "submit", "data": {"host": "www.consumeraffairs.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}}, "timestamp": "2021-01-01 09:15:27.243860"}`)
	recv := time.Date(2021, 1, 1, 10, 0, 0, 0, time.UTC)
	b.Run("event=brief-submit", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, rs := theeye.ParseEvent(raw, recv, theeye.DefaultPolicy()); len(rs) != 0 {
				b.Fatal(rs)
			}
		}
	})
	// What the indexer calls: the log holds only JSON ingest validated.
	b.Run("event=brief-submit/valid", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, rs := theeye.ParseValidEvent(raw, recv, theeye.DefaultPolicy()); len(rs) != 0 {
				b.Fatal(rs)
			}
		}
	})
}
