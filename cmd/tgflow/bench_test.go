package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/internal/testenv"
)

// benchLine is one run's line of `tgflow bench pipeline`.
var benchLine = regexp.MustCompile(`^(ceiling|pipeline \(hashing\))\s+(\d+) posts/s,\s+(\d+) posts/cpu-s \((\d+) posts in (\S+), (\S+) CPU\); ` +
	`latency p50 (\S+) p99 (\S+) max (\S+) \(at 40 posts/s, (\d+) posts\); peak RSS (\d+) MiB(?:; Postgres server CPU (\S+) \((\d+) posts/cpu-s with it\))?$`)

// stageLine is one runner's line under a run with --stages.
var stageLine = regexp.MustCompile(`^(\S+)\s+(\d+) calls,\s+(\S+) in the handler \(busy (\S+) of the wall time\)(?:; (\d+) batches of (\d+) messages on average)?$`)

var ratioLine = regexp.MustCompile(`^ratio \(hashing\)\s+(\S+) of the ceiling's posts/s, (\S+) of its posts/cpu-s(?: \((\S+) counting the Postgres server's CPU\))?$`)

// A small run prints every figure of both the pipeline and its ceiling, each plausible
// (positive rates, p50 ≤ p99 ≤ max, every post's latency, a peak RSS), and leaves no
// schema behind; with --stages, each run's four consumers say what they did (every post
// through each stage, the projector's batches). No figure is compared with a target: this
// machine is shared.
func TestBenchPipelinePrintsEveryFigure(t *testing.T) {
	url := testenv.NewPostgresDB(t)
	out, errOut, err := tgflow(t, []string{"TGFLOW_POSTGRES_URL=" + url},
		"bench", "pipeline", "--posts", "200", "--rate", "40", "--rate-posts", "60", "--stages")
	if err != nil {
		t.Fatalf("bench pipeline: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("\n%s", out)
	seen := map[string]bool{}
	run := ""
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if m := stageLine.FindStringSubmatch(line); m != nil && run != "" {
			seen[run+" "+m[1]] = true
			calls, _ := strconv.Atoi(m[2])
			batches, _ := strconv.Atoi(m[5])
			switch m[1] {
			case "tagger", "enricher", "embedder":
				if calls != 200 {
					t.Errorf("%s: %s handled %d posts, want 200", run, m[1], calls)
				}
			case "proj-postgres-v1":
				// Four facts per post (parsed, tagged, enriched, embedded), in batches.
				if msgs, _ := strconv.Atoi(m[6]); batches == 0 || calls != batches || batches*msgs < 700 || batches*msgs > 900 {
					t.Errorf("%s: projector %d applies of %d batches of %s facts, want about 800 facts", run, calls, batches, m[6])
				}
			}
			continue
		}
		if m := benchLine.FindStringSubmatch(line); m != nil {
			seen[m[1]] = true
			run = m[1]
			num := func(i int) int {
				n, err := strconv.Atoi(m[i])
				if err != nil {
					t.Fatalf("%s: %q: %v", m[1], m[i], err)
				}
				return n
			}
			dur := func(i int) time.Duration {
				d, err := time.ParseDuration(m[i])
				if err != nil {
					t.Fatalf("%s: %q: %v", m[1], m[i], err)
				}
				return d
			}
			if num(2) <= 0 || num(3) <= 0 {
				t.Errorf("%s: rates %s posts/s, %s posts/cpu-s", m[1], m[2], m[3])
			}
			if num(4) != 200 || dur(5) <= 0 || dur(6) <= 0 {
				t.Errorf("%s: %s posts in %s, %s CPU", m[1], m[4], m[5], m[6])
			}
			if p50, p99, mx := dur(7), dur(8), dur(9); p50 <= 0 || p50 > p99 || p99 > mx || mx > time.Minute {
				t.Errorf("%s: latency p50 %s p99 %s max %s", m[1], p50, p99, mx)
			}
			if num(10) != 60 {
				t.Errorf("%s: latency of %s posts, want the 60 of the rate phase", m[1], m[10])
			}
			if rss := num(11); rss < 10 || rss > 8<<10 {
				t.Errorf("%s: peak RSS %d MiB", m[1], rss)
			}
			// The test's Postgres runs on this machine: the pipeline reports the server's CPU
			// (the ceiling uses no Postgres).
			if m[1] == "pipeline (hashing)" && (m[12] == "" || dur(12) <= 0 || num(13) <= 0 || num(13) > num(3)) {
				t.Errorf("%s: Postgres server CPU %q, %q posts/cpu-s with it", m[1], m[12], m[13])
			}
			continue
		}
		if m := ratioLine.FindStringSubmatch(line); m != nil {
			seen["ratio"] = true
			if m[3] == "" {
				t.Errorf("ratio without the Postgres server's CPU: %s", line)
			}
			for _, s := range m[1:] {
				if r, err := strconv.ParseFloat(s, 64); err != nil || r <= 0 || r > 10 {
					t.Errorf("ratio %q (%v)", s, err)
				}
			}
		}
	}
	want := []string{"ceiling", "pipeline (hashing)", "ratio"}
	for _, r := range want[:2] {
		for _, c := range []string{"tagger", "enricher", "embedder", "proj-postgres-v1"} {
			want = append(want, r+" "+c)
		}
	}
	for _, want := range want {
		if !seen[want] {
			t.Errorf("no %s line in:\n%s", want, out)
		}
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'bench\_%'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d bench schemas left behind", left)
	}
}

// An embedder the bench does not know, and a missing subcommand, are usage errors.
func TestBenchUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"bench"}, "needs a subcommand"},
		{"unknown subcommand", []string{"bench", "nope"}, `no subcommand "nope"`},
		{"unknown embedder", []string{"bench", "pipeline", "--embedder", "openai"}, `"openai" is not hashing or use`},
		{"no posts", []string{"bench", "pipeline", "--posts", "0"}, "--posts must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tgflow(t, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: %v, want an error saying %q", tt.args, err, tt.want)
			}
		})
	}
}
