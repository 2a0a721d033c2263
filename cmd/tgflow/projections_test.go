package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/services/projsvc/projsvctest"
)

// TestProjectionsVerifyExitStatus runs `tgflow projections verify NAME` for each backend on
// the model the log gives (exit 0), then after a change behind the projector's back (exit 1,
// the changed section named).
func TestProjectionsVerifyExitStatus(t *testing.T) {
	script := projectiontest.NewScript()
	for _, b := range projsvctest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			nenv := natstest.Start(t)
			projsvctest.PublishScript(t, nenv.JS, script.Facts)
			env := b.Env(t)
			live, closeFn := projsvctest.Open(t, b.Name, env)
			projsvctest.ApplyConsumed(t, live, b.Consumer, script.Facts)
			closeFn()
			vars := []string{"TGFLOW_NATS_URL=" + nenv.URL, "TGFLOW_DATA_DIR=" + t.TempDir()}
			for k, v := range env {
				vars = append(vars, k+"="+v)
			}

			out, errOut, err := tgflow(t, vars, "projections", "verify", b.Name)
			if code := exitCode(err); code != 0 || !strings.Contains(out, "equals a rebuild from the log") {
				t.Fatalf("verify on the model the log gives: exit %d (%v)\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
			}

			d := b.Drifts[0]
			d.Apply(t, env)
			out, errOut, err = tgflow(t, vars, "projections", "verify", b.Name)
			if code := exitCode(err); code != 1 {
				t.Fatalf("verify after changing %s: exit %d (%v), want 1\nstdout:\n%s\nstderr:\n%s", d.Name, code, err, out, errOut)
			}
			want := fmt.Sprintf("differs: %s: ", d.Section)
			if !strings.Contains(out, want) || strings.Count(out, "differs: ") != 1 {
				t.Fatalf("verify after changing %s printed\n%s\nwant one line %q…", d.Name, out, want)
			}
		})
	}
}
