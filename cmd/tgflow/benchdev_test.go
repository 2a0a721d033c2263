package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tgflow/tgflow/cmd/tgflow/internal/proctest"
	"github.com/tgflow/tgflow/internal/testenv"
)

// TestBenchDevMeasuresARealRun runs `tgflow bench dev`'s measurement on a small corpus: a
// `tgflow dev` process of its own (built from this module) fed through its embedded NATS
// server into a Postgres database of the test's own. Every figure of the report must come
// from that run: the posts it counted are the rows the database holds, the memory figures
// are the process's, the heap profile is a profile.
func TestBenchDevMeasuresARealRun(t *testing.T) {
	pgURL := testenv.NewPostgresDB(t)
	dir := t.TempDir()
	bin := proctest.Build(t, dir, "github.com/tgflow/tgflow/cmd/tgflow")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("corpus seed %d", seed)
	var out bytes.Buffer
	o := benchDevOptions{Posts: 60, Seed: seed, Embedder: "hashing", Bin: bin, Dir: dir, Timeout: 3 * time.Minute, Settle: time.Second, Out: &out,
		Env: map[string]string{"TGFLOW_POSTGRES_URL": pgURL, "TGFLOW_VISION_OCR": "false"}}
	r, err := benchDev(ctx, o)
	if err != nil {
		t.Fatalf("bench dev: %v\n%s", err, out.String())
	}
	printBenchDev(&out, o, r)
	t.Log(out.String())

	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var posts, deleted int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM tgflow.posts`).Scan(&posts, &deleted); err != nil {
		t.Fatal(err)
	}
	if r.Posts != 60 || posts+deleted != r.Posts {
		t.Errorf("Postgres holds %d posts and %d deleted ones; the corpus had %d (report says %d)", posts, deleted, 60, r.Posts)
	}
	if r.PostsInPG != posts || r.WantPostsInPG != posts {
		t.Errorf("report: %d posts in Postgres (want %d); the database holds %d", r.PostsInPG, r.WantPostsInPG, posts)
	}
	if r.Took <= 0 || r.PostsPerS <= 0 || r.PostsPerS != float64(r.Posts)/r.Took.Seconds() {
		t.Errorf("took %v at %v posts/s: not this run's figures", r.Took, r.PostsPerS)
	}
	// A Go process of this size holds tens of MiB; none holds less than 10.
	if r.Final.RSS < 10<<20 || r.Peak < r.Final.RSS || r.SampledPeak < r.Final.RSS || r.Peak > 4<<30 {
		t.Errorf("dev's RSS %d, peak %d, sampled peak %d: not a process's figures", r.Final.RSS, r.Peak, r.SampledPeak)
	}
	if r.HeapInuse <= 0 || r.HeapAlloc <= 0 || r.HeapAlloc > r.HeapInuse || r.GoSys < r.HeapInuse || r.GoSys > r.Peak*2 {
		t.Errorf("Go heap in use %d, live %d, runtime total %d: not the process's figures (RSS peak %d)", r.HeapInuse, r.HeapAlloc, r.GoSys, r.Peak)
	}
	// dev bounds its Go heap by default (TGFLOW_DEV_MEMORY_LIMIT): the process says so.
	if r.MemLimit != 256<<20 {
		t.Errorf("dev's Go memory limit is %d, want the default 256 MiB", r.MemLimit)
	}
	if r.PGProcs != 0 {
		t.Errorf("%d Postgres processes counted for an external server", r.PGProcs)
	}
	prof, err := os.ReadFile(r.HeapProfile)
	if err != nil {
		t.Fatal(err)
	}
	if len(prof) < 100 || prof[0] != 0x1f || prof[1] != 0x8b { // pprof's gzipped protobuf
		t.Errorf("heap profile %s is not a profile (%d bytes)", r.HeapProfile, len(prof))
	}
	if !strings.Contains(out.String(), "posts in Postgres") {
		t.Errorf("report lacks the posts line:\n%s", out.String())
	}
}

func TestReadProcMemOfThisProcess(t *testing.T) {
	m, err := readProcMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS || m.PSS <= 0 {
		t.Errorf("this process: %+v", m)
	}
	ppid, ok := parentPID(os.Getpid())
	if !ok || ppid != os.Getppid() {
		t.Errorf("parentPID = %d, %v; want %d", ppid, ok, os.Getppid())
	}
}
