package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/nats/natstest"
)

func tgflow(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	// The lexical embedder keeps these tests off pip (services/embedder tests the USE model).
	base := []string{"TGFLOW_EMBEDDED_PORT=0", "TGFLOW_HTTP_ADDR=", "TGFLOW_LOG_LEVEL=warn", "TGFLOW_EMBEDDER=hashing"}
	err := run(context.Background(), args, &out, &errOut, append(base, env...))
	return out.String(), errOut.String(), err
}

func TestDevUntilIdleExitsCleanly(t *testing.T) {
	dir := t.TempDir()
	// --no-postgres: the log alone (TestDevFillsTheEmbeddedPostgresAndSummarises runs the rest).
	out, errOut, err := tgflow(t, nil, "dev", "--data-dir", dir, "--sample", "--until-idle", "--no-postgres")
	if err != nil {
		t.Fatalf("dev: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "sample: 4 channel(s)") || !strings.Contains(out, "log TGFLOW: ") || !strings.Contains(out, "POSTGRES: off") {
		t.Fatalf("summary missing:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--no-postgres made %s/postgres: %v", dir, err)
	}
	// Laptop mode keeps its data: a second run reuses the log and publishes nothing new.
	out, errOut, err = tgflow(t, nil, "dev", "--data-dir", dir, "--sample", "--until-idle", "--no-postgres")
	if err != nil {
		t.Fatalf("second dev: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "published 0 facts") {
		t.Fatalf("second run:\n%s", out)
	}
}

func TestNATSApplyTwiceReportsNoChange(t *testing.T) {
	env := []string{"TGFLOW_DATA_DIR=" + t.TempDir()}
	// Each invocation starts its own embedded server over the same data directory, as two
	// runs of the command would.
	first, _, err := tgflow(t, env, "nats", "apply", "--all")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, "created") {
		t.Fatalf("first apply:\n%s", first)
	}
	second, _, err := tgflow(t, env, "nats", "apply", "--all")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(second, "created") || strings.Contains(second, "updated") || !strings.Contains(second, "no change") {
		t.Fatalf("second apply:\n%s", second)
	}
}

func TestBadConfigNamesEveryVariable(t *testing.T) {
	_, _, err := tgflow(t, []string{"TGFLOW_LOG_FORMAT=xml", "TGFLOW_EMBEDDED_PORT=port"}, "nats", "apply")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"TGFLOW_LOG_FORMAT", "TGFLOW_EMBEDDED_PORT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"nats"}, {"dlq", "replay", "x"}, {"dev", "--no-such-flag"}} {
		_, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + t.TempDir()}, args...)
		if !errors.Is(err, errUsage) {
			t.Errorf("tgflow %v: err = %v, want a usage error", args, err)
		}
	}
}

func TestConfigListsVariablesWithSecretsMasked(t *testing.T) {
	out, _, err := tgflow(t, []string{"TGFLOW_NATS_CREDS=/secret/path"}, "config")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TGFLOW_NATS_URL", "TGFLOW_DATA_DIR", "TGFLOW_HTTP_ADDR"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %s", want)
		}
	}
}

func TestDLQListOnEmptyLog(t *testing.T) {
	out, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + t.TempDir()}, "dlq", "ls")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0 dead letter(s)") {
		t.Fatalf("dlq ls:\n%s", out)
	}
}

func TestImportRejectsMalformedExportWithPosition(t *testing.T) {
	dir := t.TempDir()
	_, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + dir}, "import", "../../testdata/exports/malformed/bad_date.json")
	if err == nil || !strings.Contains(err.Error(), "byte") {
		t.Fatalf("err = %v, want the position of the problem", err)
	}
	out, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + dir}, "import", "../../testdata/exports/channel")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "published") {
		t.Fatalf("import output:\n%s", out)
	}
}

// TGFLOW_NATS_URL switches a command from the embedded server to an external one.
func TestExternalNATSURL(t *testing.T) {
	env := natstest.Start(t)
	out, _, err := tgflow(t, []string{"TGFLOW_NATS_URL=" + env.URL, "TGFLOW_DATA_DIR=" + t.TempDir()}, "nats", "apply", "--all")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "consumer    tagger             created") {
		t.Fatalf("apply on the external server:\n%s", out)
	}
	if _, err := env.JS.Consumer(context.Background(), "TGFLOW", "tagger"); err != nil {
		t.Fatalf("the consumer is not on the external server: %v", err)
	}
	_, _, err = tgflow(t, []string{"TGFLOW_NATS_URL=nats://127.0.0.1:1", "TGFLOW_DATA_DIR=" + t.TempDir()}, "nats", "apply")
	if err == nil || !strings.Contains(err.Error(), "connect to NATS at nats://127.0.0.1:1") {
		t.Fatalf("unreachable server: %v", err)
	}
}

// Every environment variable any service reads is documented in the README.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range configs() {
		for _, v := range config.Vars(c) {
			n++
			// Its row in the Configuration table, with its default ("–" for none).
			def := "–"
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			if row := "| `" + v.Name + "` | " + def + " |"; !strings.Contains(string(readme), row) {
				t.Errorf("README has no row %q", row)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d variables found", n)
	}
}

// A service's configuration is validated before anything starts: a rejected value neither
// serves /metrics nor starts the embedded NATS server first.
func TestBadServiceConfigStopsBeforeServing(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{name: "one service", env: []string{"TGFLOW_PROJ_BATCH=0", "TGFLOW_POSTGRES_URL=postgres://u@127.0.0.1:1/db"},
			args: []string{"proj-postgres"}, want: "TGFLOW_PROJ_BATCH"},
		{name: "dev", env: []string{"TGFLOW_TG_APP_ID=12345"}, args: []string{"dev", "--until-idle"}, want: "TGFLOW_TG_APP_HASH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := append([]string{"TGFLOW_DATA_DIR=" + dir, "TGFLOW_HTTP_ADDR=127.0.0.1:0", "TGFLOW_LOG_LEVEL=info"}, tc.env...)
			_, errOut, err := tgflow(t, env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
			if strings.Contains(errOut, "serving /metrics") || strings.Contains(errOut, "NATS server started") {
				t.Fatalf("started before its configuration was rejected:\n%s", errOut)
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Fatalf("the data directory was written before the configuration was rejected: %v %v", entries, err)
			}
		})
	}
}

// TGFLOW_HTTP_ADDR= (empty) disables the HTTP server; unset, it listens on the default.
func TestEmptyHTTPAddrDisablesTheServer(t *testing.T) {
	out, _, err := tgflow(t, []string{"TGFLOW_HTTP_ADDR="}, "config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "TGFLOW_HTTP_ADDR=\n") {
		t.Fatalf("an empty TGFLOW_HTTP_ADDR is not empty:\n%s", out)
	}
	_, errOut, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + t.TempDir(), "TGFLOW_LOG_LEVEL=info"}, "dev", "--until-idle", "--no-postgres")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut, "serving /metrics") {
		t.Fatalf("dev serves HTTP with TGFLOW_HTTP_ADDR empty:\n%s", errOut)
	}
}
