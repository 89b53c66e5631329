// Command ttq is the timeline-consistent snapshot and time-travel query
// engine: a SQL shell, a loader, a server and a demo. The work lives in
// package command; main only wires it to the process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"ttq/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := command.Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
