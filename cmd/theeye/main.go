// Command theeye runs a node of The Eye: `theeye serve` with no flags runs
// a single-node cluster on 127.0.0.1:8080 with its data in ./theeye-data.
//
// Flags and the THEEYE_* environment, the Config type and its defaults live
// here only; the packages below take plain config structs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "theeye:", err)
		os.Exit(1)
	}
}
