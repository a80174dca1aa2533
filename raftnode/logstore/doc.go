// Package logstore owns the Raft log and stable store of a member: a
// raft.LogStore and raft.StableStore on a Pebble instance of its own, the
// on-disk encoding of its keys and raft.Log records, and the background
// compaction that gives back the space of truncated log prefixes.
//
// Every write is one Pebble batch committed with pebble.Sync: the StoreLogs
// fsync is the durability point of every acknowledged write. Open a Store
// with Open; raftnode puts a raft.LogCache in front of it. See DESIGN.md
// beside this file.
package logstore
