// Package index owns a node's Pebble index: the background indexer that
// tails the event log, validates each event and writes its keys together
// with its cursor in one atomic batch, and the query side that serves range
// scans with opaque cursors.
//
// # Keyspaces
//
// One Pebble instance, one prefix byte per keyspace. Keys use an
// order-preserving tuple encoding (keys.go is the only code that builds or
// reads them):
//
//	str  = bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x01 (prefix-free, sorts like the string)
//	ts   = 8 bytes big-endian of signed Unix nanoseconds with the sign bit flipped
//	seq  = 8 bytes big-endian
//
//	prefix | key                              | value                                   | written for
//	-------+----------------------------------+-----------------------------------------+---------------------------
//	's'    | str(session_id) ts seq           | app*, then the rendered event JSON      | valid events
//	'c'    | str(category) ts seq             | app*, then the rendered event JSON      | valid events
//	'n'    | str(category) str(name) ts seq   | app*                                    | valid events
//	't'    | ts seq                           | app*, then the category                 | valid events
//	'x'    | ts(received_at) seq              | uvarint(reason mask), then app,         | invalid events
//	       |                                  | category, name (uvarint len + bytes),   |
//	       |                                  | then the error record JSON              |
//	'd'    | str(app) str(client id)          | seq, 16 bytes of SHA-256(raw event)     | events with a client "id"
//	'f'    | str(session_id) seq              | received_at, Unix ns (uint64)           | invalid events (erasure
//	       |                                  |                                         | finds a session's x keys)
//	'r'    | id (uint64 big-endian)           | checked, accepted, failing (3 x uint64) | revalidation requests run
//	'z'    | id (uint64 big-endian)           | JSON: stage, erased seqs, key ranges,   | session erasures begun
//	       |                                  | done_at                                 |
//	'u'    | interval secs(bucket start)      | uint64 big-endian: valid events with a  | counts for GET /v1/stats,
//	       | str(category) str(name)          | timestamp in the bucket (never 0: a     | by interval 'm' (1m), 'h'
//	       |                                  | count at zero is deleted)               | (1h), 'd' (1d)
//	'm'    | str(name)                        | uint64 big-endian                       | version (layout 6), cursor,
//	       |                                  |                                         | counters, last revalidation
//	       |                                  |                                         | run, purged (retention)
//
//	app* = uvarint length of the app, then the app
//	secs = 8 bytes big-endian of signed Unix seconds with the sign bit flipped (UTC bucket starts)
//
// ts in s, c, n and t is the event's timestamp. Every time-ordered key ends
// with (ts, seq), so a scan of one session, category, category and name, or
// of everything, is one bounded iterator ordered by timestamp with ties
// broken by seq (invariant 8). The body is stored twice, under the session
// key and under the category key, so a session query and a category query
// each read their events in one range scan. An n or t pointer names the
// category copy: the category (from the n key, or from the t value) and the
// (ts, seq) its own key ends with, so a scan in time order reads bodies of
// a category in time order. The value of every key starts with the app, so
// the app filter never reads past it.
// The reason mask has one bit per reason code (values.go, append-only), so
// the errors' reason and app filters never parse JSON.
//
// # Indexing
//
// The indexer reads up to Config.BatchSize events past its cursor from the
// Source, judges each with verdict.Judge by the rules in force at its seq
// (the cluster config's policy against the envelope's received_at, never
// the wall clock, and the JSON Schema version of its type, both chosen by
// the versions' EffectiveSeq, so the verdict does not depend on when the
// indexer runs: invariants 3 and 10), drops (app, id) retries in log order (invariant 7; the
// same id with another raw payload is a duplicate_id_conflict error), and
// writes the keys, the new
// cursor (m "cursor") and the counters in one Pebble batch committed
// NoSync (invariant 5: the log is the source of truth, so a crash loses at
// most whole batches, which are indexed again). A valid event writes s, c,
// n, t and adds to its counts in u; an invalid one writes only x
// (invariant 6); a duplicate writes nothing.
//
// # Event counts
//
// rollup.go: every batch that makes events valid (indexing, revalidation)
// or takes valid events away (a retention purge, an erasure) changes the u
// counts of their minute, hour and day and type in the same batch as their
// keys and the cursor, so the counts are exact at every committed seq, come
// back with the cursor after a crash, and are the same on every node. A
// batch sums its changes by minute and type in memory, derives the hours
// and days, and writes each distinct key once (Get, add, Set or Delete).
// EventStats reads them and the cursor from one snapshot: one scan of
// [from, to) in the interval's keys, or, for a category (and name), a seek
// per bucket. Retention: stats lose an expired event when the purge deletes
// its keys, shortly after event queries hide it (they hide by seq; a count
// by timestamp cannot).
//
// # Revalidation
//
// A revalidation request is replicated config (raftnode records it with
// its Raft index, the ID, and the log's last seq, AtSeq). The indexer
// stops its batches at AtSeq, and when its cursor is exactly AtSeq runs
// the request in a batch of its own: it judges the matching x records
// again (events read back from the Source) by the rules (schemas and
// cluster config) registered before the request's ID, turns those that pass into events
// (s, c, n, t; x deleted), rewrites the reasons of those that still
// fail, and writes r/<id>, m "revalidated" and the totals in the same
// batch. The indexer reads Source.LastSeq before the requests, so it never
// runs past a request it has not seen. Every node, and a rebuild from the
// log, runs each request once at the same position against the same
// schemas: the same result everywhere.
//
// # Retention and erasure
//
// Retention (purge.go): the replicated cut (Rules.RetainFrom) hides the
// events below it from every query at once, and the indexer deletes their
// keys in chunks of purgeChunk events found from the events in the log,
// taking turns with new events, with m "purged" in the same batch; log/
// drops a segment only once PurgedBelow has passed it.
//
// Erasure of a session (erase.go): raftnode's eraser calls
// EraseSessionKeys until done (the s keys of the session and the f keys
// of its failed events find every other key: c, n, t, x, d), which records
// the erased seqs in z/<id> in the same batch as each chunk's deletions;
// then CompactErased rewrites the sstables over the deleted key ranges to
// the bottom level, so no file of the index holds the erased bytes (it
// writes no WAL). A restart resumes from z/<id>.
//
// # Queries
//
// Events and Errors scan one keyspace with IterOptions bounds computed from
// the query (time bounds appended to the prefix; the prefix successor as
// the exclusive upper bound), SeekGE or SeekLT, a fresh iterator every
// 4096 keys so long exports do not pin memtables, and, for n and t, a
// second iterator over c that finds each body with SeekPrefixGE (bloom
// filters). A cursor is the base64url of a version byte, the
// keyspace byte and the last key returned; it must lie inside the query's
// bounds.
package index
