//go:build race

package log

// raceEnabled is true under -race, which makes sync.Pool drop items and so
// adds allocations that allocation tests must not count.
const raceEnabled = true
