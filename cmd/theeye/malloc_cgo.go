//go:build cgo && linux

package main

/*
#include <malloc.h>

// Runs before the Go runtime starts any thread: glibc fixes its arena
// limit the first time a thread needs an arena of its own, so a mallopt
// from Go's init comes too late (measured: 321 MiB instead of 272).
__attribute__((constructor)) static void theeye_limit_malloc_arenas(void) {
	mallopt(M_ARENA_MAX, 2);
}
*/
import "C"

// With cgo, Pebble allocates its cache blocks with C malloc from many
// threads, and glibc's default of up to eight arenas per core kept freed
// blocks spread over arenas it does not give back: bench W7 on a 2M-event
// store, 354 MiB peak RSS with the default, 272 MiB with two arenas
// (MALLOC_ARENA_MAX=2), for the same W4 latencies. The constructor above
// sets that limit for every start of the binary.
