// Package bench owns The Eye's benchmark suite: a load generator (closed and
// open loop, HDR latency histograms), the management of real theeye
// processes on loopback, the workloads W1–W7 with their baselines measured
// in the same run, and the results (JSON, Markdown, PNG charts).
//
// The program that runs it all is bench/cmd/eyebench (`make bench`,
// `make bench-quick`); `go test ./bench/...` runs only fast unit tests.
package bench
