// Package api owns The Eye's HTTP interface (API.md): ingest, the session,
// category/time and errors queries, apps and keys, cluster status and
// membership, health, readiness, Prometheus metrics and the OpenAPI
// document, on julienschmidt/httprouter.
//
// It hides net/http from cmd/: one Server type, every route registered in
// routes(), one error writer mapping theeye error codes to statuses and
// API.md's error body. It consumes the node and the index through the
// narrow interfaces Node and Index, so it never touches Raft or Pebble keys.
//
// Ingest does one cheap pass over the body: json.Valid, then a structural
// walk that finds each element's bytes without building maps (split.go).
// Full parsing and validation happen once, later, in the indexer.
package api
