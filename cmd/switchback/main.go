// Command switchback moves partners from an old webhook pipeline to a new
// one, a cohort at a time, and back in one step. Run "switchback help".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		if err != errUsage {
			fmt.Fprintln(os.Stderr, "switchback:", err)
		}
		os.Exit(exitCode(err))
	}
}
