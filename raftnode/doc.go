// Package raftnode owns this member's hashicorp/raft instance: the FSM that
// appends committed event entries to log/ and applies replicated
// configuration (apps, keys, node addresses), the Pebble-backed Raft log
// store (through its subpackage raftnode/logstore), snapshots, the
// transport, membership, the group committer that coalesces concurrent
// ingest requests into one Raft entry, the offline recovery of a cluster
// that has lost its quorum (Recover), and backups: their format, taking
// one from a live node (Node.Backup), checking one (VerifyBackup) and
// restoring one into a new node's dirs, offline (Restore).
//
// The request path: Append encodes the envelopes, queues them, and the
// commit loop packs every waiting request (bounded by events, bytes and
// the number of entries in flight) into one compressed entry for
// raft.Apply. The answer comes back only once the entry is committed on a
// quorum and applied on this node, with the seq of each request's last
// event. See DESIGN.md beside this file.
package raftnode
