//go:build cgo

package main

// pebbleOnGoHeap: with cgo, Pebble allocates its block caches and
// memtables with C malloc, outside the Go heap and its limit.
const pebbleOnGoHeap = false
