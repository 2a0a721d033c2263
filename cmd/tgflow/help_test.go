package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// firstSub is a subcommand of each command that takes one before its flags.
var firstSub = map[string]string{
	"bench": "pipeline", "nats": "apply", "dlq": "ls", "projections": "status", "migrate": "status",
	"models": "ls", "channels": "ls",
}

// Asked for --help, a command prints its flags and does nothing else: no server, no
// Postgres, no benchmark (bench pipeline used to run the whole benchmark after its help).
func TestHelpFlagRunsNothing(t *testing.T) {
	dir := t.TempDir()
	for _, c := range commands() {
		if c.name == "version" || c.name == "config" {
			continue // no flags
		}
		t.Run(c.name, func(t *testing.T) {
			args := []string{c.name, "--help"}
			if sub, ok := firstSub[c.name]; ok {
				args = []string{c.name, sub, "--help"}
			}
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // anything that starts work would see a cancelled context
			err := run(ctx, args, &out, &errOut, []string{"TGFLOW_DATA_DIR=" + dir + "/" + c.name, "TGFLOW_HTTP_ADDR="})
			if !errors.Is(err, errHelp) {
				t.Fatalf("tgflow %s --help: err %v, want errHelp (usage printed, nothing run); stderr:\n%s", c.name, err, errOut.String())
			}
			if exitCode(err) != 0 {
				t.Errorf("exit status %d, want 0", exitCode(err))
			}
			if !strings.Contains(errOut.String(), "tgflow "+c.name) {
				t.Errorf("no flag usage printed: %q", errOut.String())
			}
		})
	}
}
