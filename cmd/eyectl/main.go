// Command eyectl is the command line of The Eye, built on the client
// package: it sends events from files (NDJSON or a JSON array, gzipped or
// not), queries them back by session, category and time range, follows new
// ones, lists the events that failed validation, and manages apps, keys,
// schemas and the cluster.
//
// It is configured by flags or by THEEYE_SERVER and THEEYE_KEY, prints an
// aligned table on a terminal and NDJSON in a pipe (--output changes it),
// and says what to do in one line when something fails. Exit codes are
// listed by `eyectl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
