package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

// readmeForRecipes is the file whose "## Operating tgflow" section holds the recipes: the
// README itself, so that what operators read is what runs.
var readmeForRecipes = "../../README.md"

// operatingRecipes returns the command lines of the "## Operating tgflow" section of md: every
// line of a ```sh block that starts with "nats " or "tgflow ", in order.
func operatingRecipes(md string) ([]string, error) {
	_, section, ok := strings.Cut(md, "\n## Operating tgflow\n")
	if !ok {
		return nil, errors.New(`no "## Operating tgflow" section`)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var out []string
	inBlock := false
	for _, line := range strings.Split(section, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```"):
			inBlock = !inBlock && trimmed == "```sh"
		case inBlock && (strings.HasPrefix(trimmed, "nats ") || strings.HasPrefix(trimmed, "tgflow ")):
			out = append(out, trimmed)
		}
	}
	return out, nil
}

// shellWords splits a recipe like a POSIX shell would for the quoting the recipes use:
// words separated by blanks, single quotes kept together.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			return words, nil // a comment
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"plain", "nats stream report", []string{"nats", "stream", "report"}},
		{"quoted wildcard", "nats stream view TGFLOW 5 --subject 'posts.*.1234567890'", []string{"nats", "stream", "view", "TGFLOW", "5", "--subject", "posts.*.1234567890"}},
		{"comment", "nats kv ls   # buckets", []string{"nats", "kv", "ls"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shellWords(tc.line)
			if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("%q → %q (%v), want %q", tc.line, got, err, tc.want)
			}
		})
	}
}

// natsCLI builds the pinned nats CLI (tools.mod) once per test.
func natsCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats")
	cmd := exec.Command("go", "build", "-modfile=tools.mod", "-o", bin, "github.com/nats-io/natscli/nats")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the nats CLI: %v\n%s", err, out)
	}
	return bin
}

// syncWriter collects a process's output for polling.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Every recipe of README.md's "Operating tgflow" section runs against a live embedded
// server holding posts of channel 1234567890 (tagged by a running tagger) and a dead letter
// of the tagger: each nats command exits 0 and, where the recipe promises it, shows the
// thing asked for; each tgflow command succeeds (doctor may find the test's system
// unhealthy: exit 1 is an answer, 2 is not).
func TestOperatingRecipesRunAgainstALiveServer(t *testing.T) {
	md, err := os.ReadFile(readmeForRecipes)
	if err != nil {
		t.Fatal(err)
	}
	recipes, err := operatingRecipes(string(md))
	if err != nil {
		t.Fatalf("%s: %v", readmeForRecipes, err)
	}
	// The recipes the issue asks for are all there.
	all := strings.Join(recipes, "\n")
	for _, want := range []string{"nats stream report", "nats consumer report TGFLOW", "nats stream get TGFLOW", "nats sub ", "--stream DLQ --all", "tgflow doctor", "tgflow projections rebuild", "tgflow projections verify", "tgflow dlq replay", "tgflow dlq drop"} {
		if !strings.Contains(all, want) {
			t.Errorf("no recipe %q in the Operating tgflow section", want)
		}
	}
	nats := natsCLI(t)
	nenv := natstest.Start(t)
	ctx := context.Background()
	if _, err := topology.Apply(ctx, nenv.JS, topology.ApplyOptions{}); err != nil { // every consumer, as `nats apply --all`
		t.Fatal(err)
	}
	var never atomic.Bool
	runTestStage(t, nenv.JS, topology.ConsumerTagger, events.ProducerTagger, poisonTagger(&never))
	publishFacts(t, nenv.JS, dlqPost(1234567890, 1, "first post"), dlqPost(1234567890, 2, "poison"), dlqPost(1234567890, 3, "third post"))
	natstest.Eventually(t, 10*time.Second, "two posts tagged, the poison dead-lettered", func() bool {
		return natstest.Count(t, nenv.JS, "posts.tagged.1234567890") == 2 && deadLetters(t, nenv.JS) == 1 &&
			consumerDone(nenv.JS, topology.ConsumerTagger)
	})
	tgEnv := []string{"TGFLOW_NATS_URL=" + nenv.URL, "TGFLOW_POSTGRES_URL=" + testenv.NewPostgresDB(t)}
	natsEnv := append(os.Environ(), "NATS_URL="+nenv.URL)

	// What some recipes must show.
	shows := map[string]string{
		"nats stream report":                                "TGFLOW",
		"nats consumer report TGFLOW":                       "tagger",
		"nats stream get TGFLOW -S posts.parsed.1234567890": "org.tgflow.post.parsed.v1",
		"nats stream subjects DLQ":                          "dlq.tagger",
		"nats stream view DLQ 5 --subject dlq.tagger":       "Tgflow-Dlq-Reason",
		"tgflow dlq ls --consumer tagger":                   "poison",
		"tgflow dlq show 1":                                 "Tgflow-Dlq-Class",
	}
	next := int64(10)
	for _, recipe := range recipes {
		words, err := shellWords(recipe)
		if err != nil {
			t.Fatalf("%s: %v", recipe, err)
		}
		var out string
		switch words[0] {
		case "tgflow":
			var errOut string
			out, errOut, err = tgflow(t, tgEnv, words[1:]...)
			if err != nil && !(words[1] == "doctor" && errors.Is(err, errDoctorUnhealthy)) {
				t.Errorf("%s: %v\n%s\n%s", recipe, err, out, errOut)
				continue
			}
		case "nats":
			if words[1] == "sub" && !strings.Contains(recipe, "--wait") {
				// Follow live: start it, publish a post the tagger tags, see the tagged fact, stop.
				var w syncWriter
				cmd := exec.Command(nats, words[1:]...)
				cmd.Env, cmd.Stdout, cmd.Stderr = natsEnv, &w, &w
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				natstest.Eventually(t, 10*time.Second, recipe+" subscribed", func() bool { return strings.Contains(w.String(), "Subscribing") })
				next++
				publishFacts(t, nenv.JS, dlqPost(1234567890, next, "a live post"))
				natstest.Eventually(t, 10*time.Second, recipe+" shows the tagged post", func() bool { return strings.Contains(w.String(), "posts.tagged.1234567890") })
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				if err := cmd.Wait(); err == nil {
					t.Errorf("%s exited by itself", recipe)
				}
				out = w.String()
				break
			}
			runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			cmd := exec.CommandContext(runCtx, nats, words[1:]...)
			cmd.Env = natsEnv
			b, err := cmd.CombinedOutput()
			cancel()
			out = string(b)
			if err != nil {
				t.Errorf("%s: %v\n%s", recipe, err, out)
				continue
			}
		default:
			t.Fatalf("recipe %q", recipe)
		}
		if strings.TrimSpace(out) == "" {
			t.Errorf("%s printed nothing", recipe)
		}
		if want, ok := shows[recipe]; ok && !strings.Contains(out, want) {
			t.Errorf("%s: no %q in\n%s", recipe, want, out)
		}
		t.Logf("$ %s\n%s", recipe, out)
	}
}
