package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The embedded server's URL is recorded in <data dir>/nats.url for other tools; when it
// cannot be written the command fails and says so, rather than leaving a stale file.
func TestEmbeddedURLFileWriteFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "nats.url"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + dir}, "nats", "apply")
	if err == nil || !strings.Contains(err.Error(), "nats.url") {
		t.Fatalf("err = %v, want the failed write of nats.url", err)
	}
	ok := t.TempDir()
	if _, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + ok}, "nats", "apply"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(ok, "nats.url"))
	if err != nil || !strings.HasPrefix(string(b), "nats://127.0.0.1:") {
		t.Fatalf("nats.url = %q, %v", b, err)
	}
}
