// Package theeye defines the domain of The Eye: events and the envelope the
// accepting node stamps on them, applications, keys and scopes, validation
// reason codes and the pure validation function every node and every replay
// share, and the error type whose codes the HTTP API maps to statuses.
//
// It imports nothing of ours; log/, index/, raftnode/ and api/ meet through
// these types.
package theeye
