package main

import (
	"strings"
	"testing"
)

// Channels added while ingest does not run are listed at once, with why they wait.
func TestChannelsLsListsSubscriptionsAtOnce(t *testing.T) {
	env := []string{"TGFLOW_DATA_DIR=" + t.TempDir()}
	out, _, err := tgflow(t, env, "channels", "add", "@durov", "t.me/telegram")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "subscribed @durov") || !strings.Contains(out, "TGFLOW_TG_APP_ID") {
		t.Fatalf("channels add:\n%s", out)
	}
	out, _, err = tgflow(t, env, "channels", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"@durov", "@telegram"} {
		found := false
		for line := range strings.SplitSeq(out, "\n") {
			found = found || strings.HasPrefix(line, name+" ") && strings.Contains(line, "waiting for ingest")
		}
		if !found {
			t.Errorf("%s is not listed as waiting for ingest:\n%s", name, out)
		}
	}
	if !strings.Contains(out, "2 change(s) waiting for ingest: ingest is not configured: TGFLOW_TG_APP_ID and TGFLOW_TG_APP_HASH are not set") {
		t.Errorf("ls does not say why:\n%s", out)
	}
}
