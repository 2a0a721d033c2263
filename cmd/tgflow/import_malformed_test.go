package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/export"
)

// `tgflow import` of each malformed export, against a running server whose log already
// holds facts, fails with the position of the problem and leaves the log as it was: the
// same number of messages, the same last sequence; and no spool file behind.
func TestImportMalformedExportsLeaveTheLogUnchanged(t *testing.T) {
	tmp := t.TempDir() // where import spools the parsed export
	t.Setenv("TMPDIR", tmp)
	noSpool := func() {
		t.Helper()
		left, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Fatalf("%d file(s) left in TMPDIR, first %s", len(left), left[0].Name())
		}
	}
	env := natstest.Start(t)
	vars := []string{"TGFLOW_NATS_URL=" + env.URL, "TGFLOW_DATA_DIR=" + t.TempDir()}
	if _, _, err := tgflow(t, vars, "import", "../../testdata/exports/channel"); err != nil {
		t.Fatal(err)
	}
	state := func() jetstream.StreamState {
		t.Helper()
		s, err := env.JS.Stream(context.Background(), topology.LogStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State
	}
	if state().Msgs == 0 {
		t.Fatal("the valid import published nothing")
	}
	noSpool()
	files, err := filepath.Glob("../../testdata/exports/malformed/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("malformed fixtures: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			before := state()
			_, _, err := tgflow(t, vars, "import", f)
			var pe *export.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("import %s: %v, want a *export.ParseError", f, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("(byte %d)", pe.Offset)) {
				t.Fatalf("error %q does not name the byte offset %d", err, pe.Offset)
			}
			after := state()
			if after.Msgs != before.Msgs || after.LastSeq != before.LastSeq {
				t.Fatalf("log went from %d messages (last %d) to %d (last %d)", before.Msgs, before.LastSeq, after.Msgs, after.LastSeq)
			}
			noSpool()
		})
	}
}
