// Command tgflow is the one binary of the system: `tgflow <service>` runs one service,
// `tgflow dev` runs all of them in one process with an embedded NATS server, and the other
// subcommands operate the log (nats apply, dlq, config, version).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "tgflow:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is the process status for run's error: 0 on success, 2 for a usage error, 1 for
// any other failure (among them a verify that found differences).
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

var errUsage = errors.New("usage")

// exitCoder is an error that chooses its exit status (tgflow doctor: 2 when it cannot
// connect).
type exitCoder interface{ ExitCode() int }

// errHelp is returned by a command asked for -h/--help: it printed its usage and did
// nothing else; the exit status is 0.
var errHelp = errors.New("help requested")

// app is one invocation: its arguments, streams and environment.
type app struct {
	stdout, stderr io.Writer
	env            map[string]string
}
