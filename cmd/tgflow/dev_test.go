package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/nats/embedded"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/ingest"
)

// syncBuffer is a bytes.Buffer safe for the service goroutines that write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeService runs until its context ends (fail nil) or returns fail at once, and records
// why its context ended.
type fakeService struct {
	fail    error
	mu      sync.Mutex
	stopped error // context.Cause of the run context when Run returned
}

func (f *fakeService) Run(ctx context.Context) error {
	if f.fail != nil {
		return f.fail
	}
	<-ctx.Done()
	f.mu.Lock()
	f.stopped = context.Cause(ctx)
	f.mu.Unlock()
	return nil
}

func (f *fakeService) cause() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

var errTestOver = errors.New("test over: the caller stopped dev")

// TestDevStopsEverythingUnlessAnOperatorIsNeeded runs fake services through runServices:
// an error from any service stops every service; an error marked services.ErrNeedsOperator
// (whichever service returns it) stops that service alone while there are others, and is
// returned when it is the only one.
func TestDevStopsEverythingUnlessAnOperatorIsNeeded(t *testing.T) {
	errBroken := errors.New("projector broken")
	errRevoked := services.NeedsOperator("proj-x: credentials revoked")
	tests := []struct {
		name       string
		fail       error
		failing    int // index of the failing service among n
		n          int
		stopsAll   bool
		wantErr    error // returned by runServices; nil for none
		wantStderr string
	}{
		{name: "any error stops all (first service)", fail: errBroken, failing: 0, n: 3, stopsAll: true, wantErr: errBroken},
		{name: "any error stops all (last service)", fail: errBroken, failing: 2, n: 3, stopsAll: true, wantErr: errBroken},
		{name: "needs an operator: others keep running", fail: errRevoked, failing: 1, n: 3, wantStderr: "svc1 stopped: proj-x: credentials revoked"},
		{name: "wrapped needs-operator error from the first service", fail: fmt.Errorf("%w: %w", errRevoked, errBroken), failing: 0, n: 2,
			wantStderr: "svc0 stopped: proj-x: credentials revoked: projector broken"},
		{name: "ingest's auth error needs an operator", fail: fmt.Errorf("%w: AUTH_KEY_UNREGISTERED", ingest.ErrTelegramAuth), failing: 1, n: 2,
			wantStderr: "svc1 stopped: ingest: the Telegram session is unusable"},
		{name: "needs an operator, alone: returned", fail: errRevoked, failing: 0, n: 1, stopsAll: true, wantErr: errRevoked},
	}
	env := natstest.Start(t)
	c := &conn{NC: env.NC, JS: env.JS}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fakes := make([]*fakeService, tc.n)
			var reg services.Registry
			for i := range fakes {
				fakes[i] = &fakeService{}
				if i == tc.failing {
					fakes[i].fail = tc.fail
				}
				f := fakes[i]
				reg = append(reg, services.Spec{Name: fmt.Sprintf("svc%d", i),
					New: func(context.Context, services.Deps) (services.Service, error) { return f, nil }})
			}
			var stdout, stderr syncBuffer
			a := &app{stdout: &stdout, stderr: &stderr, env: map[string]string{}}
			var b config.Base
			if err := config.Load(&b, map[string]string{"TGFLOW_HTTP_ADDR": ""}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			done := make(chan error, 1)
			go func() {
				done <- runServices(ctx, a, &b, c, slog.New(slog.NewTextHandler(io.Discard, nil)), reg, runOptions{})
			}()
			var err error
			returned := false
			natstest.Eventually(t, 10*time.Second, "the failure to be handled", func() bool {
				select {
				case err = <-done:
					returned = true
					return true
				default:
					return tc.wantStderr != "" && strings.Contains(stderr.String(), tc.wantStderr)
				}
			})
			if returned != tc.stopsAll {
				t.Fatalf("runServices returned on its own: %v, want %v (err %v, stderr %q)", returned, tc.stopsAll, err, stderr.String())
			}
			if !returned {
				cancel(errTestOver)
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("runServices did not return after its context ended")
				}
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("runServices = %v, want %v", err, tc.wantErr)
			}
			for i, f := range fakes {
				if i == tc.failing {
					continue
				}
				cause := f.cause()
				if tc.stopsAll && !errors.Is(cause, context.Canceled) {
					t.Errorf("svc%d stopped by %v, want dev to stop it", i, cause)
				}
				if !tc.stopsAll && !errors.Is(cause, errTestOver) {
					t.Errorf("svc%d stopped by %v, want it to run until the caller stopped dev", i, cause)
				}
			}
		})
	}
}

// --until-idle on a consumer it cannot read gives up with the reason, not only "not idle".
func TestWaitIdleSaysWhyItGaveUp(t *testing.T) {
	env := natstest.Start(t)
	err := waitIdle(context.Background(), env.JS, []string{"no-such-consumer"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no-such-consumer") {
		t.Fatalf("waitIdle = %v, want the consumer it could not read", err)
	}
}

// reachableDir is a temp dir every user can enter. As root, dev runs the embedded Postgres
// as an unprivileged user, which cannot enter t.TempDir's mode-0700 directory.
func reachableDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// pgSnapshot is what the test reads of the embedded Postgres after a run.
type pgSnapshot struct {
	system                                                   string // the cluster's identifier: a new initdb changes it
	posts, withText, textWithoutTags, untagged, tags, topics int
	embeddings, postsWithoutEmbedding                        int
	checkpoint                                               int64
}

// readEmbeddedPostgres opens the cluster dev left in dataDir (dev stopped it) and reads it.
func readEmbeddedPostgres(t *testing.T, dataDir string) pgSnapshot {
	t.Helper()
	ctx := context.Background()
	s, err := embeddedpg.Open(ctx, embeddedpg.Options{Dir: filepath.Join(dataDir, "postgres"), NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var snap pgSnapshot
	for _, q := range []struct {
		sql  string
		dest any
	}{
		{"SELECT system_identifier::text FROM pg_control_system()", &snap.system},
		{"SELECT count(*) FROM tgflow.posts WHERE version IS NOT NULL", &snap.posts},
		{"SELECT count(*) FROM tgflow.posts WHERE coalesce(text, '') <> ''", &snap.withText},
		{`SELECT count(*) FROM tgflow.posts p WHERE coalesce(p.text, '') <> ''
			AND NOT EXISTS (SELECT 1 FROM tgflow.post_tags t WHERE (t.channel_id, t.message_id) = (p.channel_id, p.message_id))`, &snap.textWithoutTags},
		{`SELECT count(*) FROM tgflow.posts p LEFT JOIN tgflow.pipeline_progress g USING (channel_id, message_id)
			WHERE g.tagged_version IS NULL`, &snap.untagged},
		{"SELECT count(*) FROM tgflow.post_tags", &snap.tags},
		{"SELECT count(*) FROM tgflow.post_topics", &snap.topics},
		{"SELECT count(*) FROM tgflow.post_embeddings", &snap.embeddings},
		{`SELECT count(*) FROM tgflow.posts p
			WHERE NOT EXISTS (SELECT 1 FROM tgflow.post_embeddings e WHERE (e.channel_id, e.message_id) = (p.channel_id, p.message_id))`, &snap.postsWithoutEmbedding},
		{"SELECT max(seq) FROM tgflow.projection_checkpoints", &snap.checkpoint},
	} {
		if err := conn.QueryRow(ctx, q.sql).Scan(q.dest); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return snap
}

// logFacts counts facts in the log dev left in dataDir, from subject counts.
func logFacts(t *testing.T, dataDir string, filters ...string) (counts []int, lastSeq uint64) {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{DataDir: dataDir, Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	nc, js := natstest.Connect(t, srv.ClientURL())
	defer nc.Close()
	for _, f := range filters {
		counts = append(counts, natstest.Count(t, js, f))
	}
	s, err := js.Stream(context.Background(), "TGFLOW")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return counts, info.State.LastSeq
}

// consumerLags parses the LAG column of the summary's consumer table.
func consumerLags(t *testing.T, out string) map[string]string {
	t.Helper()
	lags := map[string]string{}
	in := false
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 4 && f[0] == "CONSUMER" && f[4] == "LAG": // ACK FLOOR is two fields
			in = true
		case in && len(f) == 0:
			return lags
		case in:
			lags[f[0]] = f[3]
		}
	}
	t.Fatalf("no consumer table in:\n%s", out)
	return nil
}

// The README's first command: dev with the sample fills the embedded Postgres (every post,
// its tags, topics, embeddings) and prints the summary; a second run reuses the cluster and
// the log and adds nothing. As root, the cluster belongs to the unprivileged user.
func TestDevFillsTheEmbeddedPostgresAndSummarises(t *testing.T) {
	dir := reachableDir(t)
	out, errOut, err := tgflow(t, nil, "dev", "--data-dir", dir, "--sample", "--until-idle")
	if err != nil {
		t.Fatalf("dev: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"sample: 4 channel(s)", "log TGFLOW: ", "FACTS IN THE LOG", "POSTGRES (tgflow)", "applied up to",
		"where the data lives:", "embedded PostgreSQL " + embeddedpg.Version + " run as ",
		"qdrant      off: TGFLOW_QDRANT_ADDR is not set", "neo4j       off: TGFLOW_NEO4J_URI is not set",
		"next:", "stream info TGFLOW", "consumer report TGFLOW",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
	lags := consumerLags(t, out)
	for _, c := range []string{"tagger", "enricher", "embedder", "vision", "albums", "trends", "proj-postgres-v1"} {
		if lags[c] != "0" {
			t.Errorf("consumer %s: lag %q, want 0", c, lags[c])
		}
	}
	// The projections that are off are said once, with their variables, not per warning.
	if strings.Count(errOut, "not running (not configured") != 1 || !strings.Contains(errOut, "proj-qdrant  TGFLOW_QDRANT_ADDR is not set") || strings.Contains(errOut, "skipped proj-") {
		t.Errorf("the services that are off are not said once:\n%s", errOut)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "postgres", "password"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errOut, strings.TrimSpace(string(pw))) {
		t.Fatal("the Postgres password is printed")
	}
	if t.Failed() {
		t.Fatalf("summary:\n%s", out)
	}
	// dev stopped the server it started.
	for _, f := range []string{filepath.Join(dir, "postgres", "cluster", "data", "postmaster.pid"), embeddedpg.URLFile(filepath.Join(dir, "postgres"))} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after dev: %v (the server still runs?)", f, err)
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(embeddedpg.DefaultOSUser)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "postgres", "cluster", "data"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; strconv.Itoa(int(uid)) != u.Uid {
			t.Errorf("as root, PGDATA belongs to uid %d, want %s (%s)", uid, embeddedpg.DefaultOSUser, u.Uid)
		}
		if !strings.Contains(out, "run as "+embeddedpg.DefaultOSUser) {
			t.Errorf("the summary does not say the server ran as %s", embeddedpg.DefaultOSUser)
		}
	}

	counts, lastSeq := logFacts(t, dir, "posts.parsed.>")
	first := readEmbeddedPostgres(t, dir)
	t.Logf("log: %d posts, last seq %d; Postgres: %+v", counts[0], lastSeq, first)
	switch {
	case counts[0] == 0 || first.posts != counts[0]:
		t.Errorf("Postgres holds %d posts, the log %d", first.posts, counts[0])
	case first.untagged != 0 || first.textWithoutTags != 0 || first.tags == 0:
		t.Errorf("%d posts never tagged, %d posts with text have no tags (%d tags in all)", first.untagged, first.textWithoutTags, first.tags)
	case first.topics == 0:
		t.Error("no topics in Postgres")
	case first.postsWithoutEmbedding != 0 || first.embeddings != first.posts:
		t.Errorf("%d embeddings rows for %d posts", first.embeddings, first.posts)
	case first.checkpoint != int64(lastSeq):
		t.Errorf("the Postgres checkpoint is %d, the log's last seq %d", first.checkpoint, lastSeq)
	}
	// The summary's posts row: facts in the log, rows in Postgres.
	if m := regexp.MustCompile(`(?m)^posts +(\d+) +(\d+)$`).FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(counts[0]) || m[2] != strconv.Itoa(first.posts) {
		t.Errorf("summary's posts row %q, want %d facts and %d rows", m, counts[0], first.posts)
	}

	// Again: the same cluster (no new initdb), the same log, nothing added.
	out2, errOut2, err := tgflow(t, nil, "dev", "--data-dir", dir, "--sample", "--until-idle")
	if err != nil {
		t.Fatalf("second dev: %v\n%s", err, errOut2)
	}
	if !strings.Contains(out2, "published 0 facts") || !strings.Contains(out2, fmt.Sprintf("last seq %d;", lastSeq)) {
		t.Fatalf("second run added facts:\n%s", out2)
	}
	if second := readEmbeddedPostgres(t, dir); second != first {
		t.Fatalf("second run changed Postgres:\nfirst  %+v\nsecond %+v", first, second)
	}
	if _, again := logFacts(t, dir); again != lastSeq {
		t.Fatalf("log last seq %d after the second run, %d before", again, lastSeq)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Laptop mode's other commands use the Postgres of a running dev (and leave it running);
// before dev ever ran, the reading ones create no cluster.
func TestLaptopCommandsUseTheRunningDevsPostgres(t *testing.T) {
	dir := reachableDir(t)
	env := []string{"TGFLOW_DATA_DIR=" + dir, fmt.Sprintf("TGFLOW_EMBEDDED_PORT=%d", freePort(t))}
	pgDir := filepath.Join(dir, "postgres")

	out, _, err := tgflow(t, env, "projections", "status")
	if err != nil || !strings.Contains(out, "not configured: TGFLOW_POSTGRES_URL is not set") {
		t.Fatalf("status before dev ran: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(pgDir, "cluster")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("projections status created a cluster: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var devOut, devErr syncBuffer
	done := make(chan error, 1)
	go func() {
		base := []string{"TGFLOW_HTTP_ADDR=", "TGFLOW_LOG_LEVEL=warn", "TGFLOW_EMBEDDER=hashing"}
		done <- run(ctx, []string{"dev", "--sample"}, &devOut, &devErr, append(base, env...))
	}()
	var devURL []byte
	natstest.Eventually(t, 2*time.Minute, "dev's Postgres to run", func() bool {
		select {
		case err := <-done:
			t.Fatalf("dev returned: %v\n%s", err, devErr.String())
		default:
		}
		devURL, err = os.ReadFile(embeddedpg.URLFile(pgDir))
		return err == nil
	})
	// The projector has created its schema (search reads it).
	natstest.Eventually(t, time.Minute, "the read schema", func() bool {
		conn, err := pgx.Connect(ctx, strings.TrimSpace(string(devURL)))
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var ok bool
		return conn.QueryRow(ctx, "SELECT to_regclass('tgflow.posts') IS NOT NULL").Scan(&ok) == nil && ok
	})
	pidFile := filepath.Join(pgDir, "cluster", "data", "postmaster.pid")
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "projections status", args: []string{"projections", "status"}, want: `postgres +proj-postgres-v1 +\d+ +\d+`},
		{name: "migrate status", args: []string{"migrate", "status"}, want: `schema tgflow\n`},
		{name: "search", args: []string{"search", "космос", "--json"}, want: `^\[`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := tgflow(t, env, tc.args...)
			if err != nil || !regexp.MustCompile(tc.want).MatchString(out) {
				t.Fatalf("tgflow %v: %v\n%s\n%s", tc.args, err, out, errOut)
			}
			// The same server, still running: same URL, same postmaster.
			if u, err := os.ReadFile(embeddedpg.URLFile(pgDir)); err != nil || string(u) != string(devURL) {
				t.Fatalf("after tgflow %v: URL file %v (changed or gone)", tc.args, err)
			}
			if p, err := os.ReadFile(pidFile); err != nil || !bytes.Equal(p, pid) {
				t.Fatalf("after tgflow %v: the postmaster changed or stopped (%v)", tc.args, err)
			}
		})
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev: %v\n%s", err, devErr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("dev did not stop")
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dev left its Postgres running: %v", err)
	}
}

// A bad embedded-Postgres setting stops dev before it writes anything.
func TestDevRefusesABadEmbeddedPostgresSetting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, _, err := tgflow(t, []string{"TGFLOW_DATA_DIR=" + dir, "TGFLOW_POSTGRES_OS_USER=root"}, "dev", "--until-idle")
	if err == nil || !strings.Contains(err.Error(), "TGFLOW_POSTGRES_OS_USER") {
		t.Fatalf("err = %v, want one naming TGFLOW_POSTGRES_OS_USER", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data dir was made before the setting was refused: %v", err)
	}
}

// A running dev gives the heap's free memory back each time its pipeline goes idle, once per
// idle spell: after a burst of work it would otherwise keep it, since an idle process
// allocates nothing and so runs no collection.
func TestDevReturnsFreeMemoryWhenIdle(t *testing.T) {
	env := natstest.Start(t)
	old := idlePoll
	idlePoll = 50 * time.Millisecond
	t.Cleanup(func() { idlePoll = old })
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })

	burst()      // 64 MiB freed before the pipeline goes idle
	runtime.GC() // freed but, without a release, kept by the process
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	go func() { defer close(done); releaseWhenIdle(ctx, env.JS, nil, log) }()
	released := func() int { return strings.Count(logs.String(), "pipeline idle: free memory returned") }
	natstest.Eventually(t, 10*time.Second, "a release once idle", func() bool { return released() == 1 })
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if kept, keptBefore := after.HeapIdle-after.HeapReleased, before.HeapIdle-before.HeapReleased; kept >= keptBefore || kept > 16<<20 {
		t.Fatalf("free heap kept by the process: %d MiB before the release, %d MiB after", keptBefore>>20, kept>>20)
	}
	time.Sleep(10 * idlePoll) // still idle: no second release
	if n := released(); n != 1 {
		t.Fatalf("%d releases in one idle spell, want 1", n)
	}
	if _, err := env.JS.Publish(ctx, "channels.test.busy", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "a second release after the log grew", func() bool { return released() == 2 })
}

// burst allocates 64 MiB and drops it, as a burst of work would.
//
//go:noinline
func burst() {
	garbage := make([][]byte, 64)
	for i := range garbage {
		garbage[i] = make([]byte, 1<<20)
		garbage[i][0] = byte(i)
	}
	runtime.KeepAlive(garbage)
}
