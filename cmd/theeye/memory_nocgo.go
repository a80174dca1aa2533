//go:build !cgo

package main

// pebbleOnGoHeap: without cgo, Pebble allocates its block caches and
// memtables on the Go heap, so the Go memory limit must count them.
const pebbleOnGoHeap = true
