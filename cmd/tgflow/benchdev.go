package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/cmd/tgflow/internal/proctest"
	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/projsvc"
)

func init() { benchSubcommands["dev"] = runBenchDev }

// errBenchDev marks a bench dev run that could not measure.
var errBenchDev = errors.New("bench dev")

// benchDevOptions configure one `tgflow bench dev` run.
type benchDevOptions struct {
	Posts    int
	Channels int
	Seed     uint64
	Embedder string // TGFLOW_EMBEDDER of the dev process
	Bin      string // the tgflow binary that runs `dev`
	Dir      string // data dir, dev's log, the heap profile
	// Env is the dev process's environment (TGFLOW_* of the caller); the bench sets the
	// ports, the data dir and the embedder over it. With TGFLOW_POSTGRES_URL set, dev uses
	// that server (no Postgres child).
	Env     map[string]string
	Timeout time.Duration // until every post is in Postgres and every consumer idle
	// Settle is how long the process stays idle before the final figures are read.
	Settle time.Duration
	Out    io.Writer // progress lines
}

// procMem is one look at a process's memory (bytes, from /proc/<pid>/status and smaps_rollup).
type procMem struct {
	RSS, HWM, PSS int64
}

// benchDevResult is what one run measured. Every figure comes from the run.
type benchDevResult struct {
	Posts, Facts, Images int
	Fed                  time.Duration // publishing the corpus into dev's log
	Took                 time.Duration // first publish → every post in Postgres, every consumer idle
	PostsPerS            float64
	Final                procMem // the dev process, after Settle
	Peak                 int64   // VmHWM of the dev process at the end (its peak RSS)
	SampledPeak          int64   // the highest VmRSS seen by the 1 s sampler
	HeapInuse, HeapAlloc int64   // the dev process's Go heap (go_memstats_*), at the end
	GoSys                int64   // bytes of memory the Go runtime holds from the OS
	MemLimit             int64   // the Go runtime's memory limit (go_gc_gomemlimit_bytes)
	PG                   procMem // the Postgres processes, summed, at the end (0 with an external server)
	PGProcs              int
	PGPeakPSS            int64 // the highest summed PSS the sampler saw
	PostsInPG            int   // posts rows (not deleted) in Postgres at the end
	EmbeddedInPG         int   // post_embeddings rows
	WantPostsInPG        int   // the corpus's posts minus its deletions
	HeapProfile          string
	Load                 string // uptime's load averages at the end
}

func runBenchDev(ctx context.Context, a *app, args []string) (err error) {
	fs := newFlags("bench dev", a)
	posts := fs.Int("posts", 100000, "posts in the generated corpus (with albums, links to a local page server, images, edits, deletions)")
	channels := fs.Int("channels", 0, "channels the posts are spread over (default posts/200, at least 6)")
	kind := fs.String("embedder", embedder.KindHashing, "TGFLOW_EMBEDDER of the dev process: hashing or use")
	bin := fs.String("tgflow", "", "the tgflow binary that runs `dev` (default: this one)")
	dir := fs.String("dir", "", "data dir, dev's log and the heap profile (default: a new temporary directory, removed at the end)")
	timeout := fs.Duration("timeout", time.Hour, "give up when the posts are not all in Postgres after this long")
	settle := fs.Duration("settle", 10*time.Second, "idle time before the final figures are read")
	seed := fs.Uint64("seed", 0, "corpus seed (default: the time)")
	ocr := fs.Bool("ocr", false, "let vision run Tesseract on every image (TGFLOW_VISION_OCR); off by default: a tesseract process per image manages about 4 images/s on 2 cores, and 100k posts carry about 35k images")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *posts < 10 {
		return fmt.Errorf("%w: --posts must be at least 10", errUsage)
	}
	if *kind != embedder.KindHashing && *kind != embedder.KindUSE {
		return fmt.Errorf("%w: --embedder: %q is not hashing or use", errUsage, *kind)
	}
	env := maps.Clone(a.env)
	env["TGFLOW_VISION_OCR"] = strconv.FormatBool(*ocr)
	o := benchDevOptions{Posts: *posts, Channels: *channels, Seed: *seed, Embedder: *kind, Bin: *bin, Dir: *dir,
		Env: env, Timeout: *timeout, Settle: *settle, Out: a.stdout}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Bin == "" {
		if o.Bin, err = os.Executable(); err != nil {
			return err
		}
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "tgflow-bench-dev-")
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(d)) }()
		o.Dir = d
	}
	if *kind == embedder.KindUSE && o.Env["TGFLOW_MODELS_DIR"] == "" {
		b, _, err := a.base()
		if err != nil {
			return err
		}
		mdir, ok, err := benchModelsDir(a, b)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the USE model is not in %s (tgflow models pull, or set TGFLOW_MODELS_DIR)", errBenchDev, mdir)
		}
		o.Env["TGFLOW_MODELS_DIR"] = mdir
	}
	r, err := benchDev(ctx, o)
	if err != nil {
		return err
	}
	printBenchDev(a.stdout, o, r)
	return nil
}

// benchDev starts `tgflow dev` as a process of its own (so that its memory is dev's alone,
// not the corpus's), feeds it a generated corpus through its embedded NATS server, waits until
// every post is in Postgres and every consumer is idle, and reads the process's memory.
func benchDev(ctx context.Context, o benchDevOptions) (res benchDevResult, err error) {
	if o.Channels <= 0 {
		o.Channels = max(6, o.Posts/200)
	}
	if o.Settle <= 0 {
		o.Settle = time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	pages := proctest.PageServer()
	defer pages.Close()
	corpus := proctest.NewCorpus(proctest.CorpusOptions{Posts: o.Posts, Channels: o.Channels, PageURL: pages.URL, Seed: o.Seed})
	res.Posts, res.Facts, res.Images = corpus.Posts, len(corpus.Facts), len(corpus.Images)
	res.WantPostsInPG = corpus.Posts - corpus.Deletes
	fmt.Fprintf(o.Out, "bench dev: corpus of %d posts (%d edits, %d deletions, %d albums, %d images; %d facts) over %d channels, seed %d\n",
		corpus.Posts, corpus.Edits, corpus.Deletes, corpus.Albums, len(corpus.Images), len(corpus.Facts), o.Channels, o.Seed)

	var ports [3]int
	for i := range ports {
		if ports[i], err = freeLoopbackPort(); err != nil {
			return res, err
		}
	}
	natsPort, httpAddr, pprofAddr := ports[0], fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	dataDir := filepath.Join(o.Dir, "data")
	env := maps.Clone(o.Env)
	maps.Copy(env, map[string]string{
		"TGFLOW_DATA_DIR": dataDir, "TGFLOW_EMBEDDED_PORT": strconv.Itoa(natsPort), "TGFLOW_NATS_URL": "",
		"TGFLOW_HTTP_ADDR": httpAddr, "TGFLOW_EMBEDDER": o.Embedder, "TGFLOW_FETCH_ALLOW_CIDRS": "127.0.0.0/8",
		"TGFLOW_LOG_LEVEL": "warn",
	})
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return res, err
	}
	logPath := filepath.Join(o.Dir, "dev.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.Command(o.Bin, "dev", "--pprof", pprofAddr)
	cmd.Stdout, cmd.Stderr = logf, logf
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("%w: start %s dev: %w", errBenchDev, o.Bin, err)
	}
	exited := make(chan struct{}) // closed when dev exited, with waitErr set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopped := false
	defer func() {
		if stopped {
			return
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			slog.Warn("bench dev: stop dev", "err", err)
		}
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			if err := cmd.Process.Kill(); err != nil {
				slog.Warn("bench dev: kill dev", "err", err)
			}
			<-exited
		}
	}()
	devFailed := func(e error) error {
		return fmt.Errorf("%w: %w; the end of dev's log (%s):\n%s", errBenchDev, e, logPath, tailFile(logPath, 20))
	}
	// Ready: the embedded Postgres started, the topology applied, every service running.
	if err := pollUntil(ctx, 5*time.Minute, exited, &waitErr, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return res, devFailed(fmt.Errorf("dev not ready: %w", err))
	}
	pid := cmd.Process.Pid
	pgURL, pgSchema := env["TGFLOW_POSTGRES_URL"], env["TGFLOW_POSTGRES_SCHEMA"]
	pgDir := laptopPostgresDir(dataDir)
	if pgURL == "" {
		b, err := os.ReadFile(embeddedpg.URLFile(pgDir))
		if err != nil {
			return res, devFailed(fmt.Errorf("the embedded Postgres's URL: %w", err))
		}
		pgURL = strings.TrimSpace(string(b))
	}
	if pgSchema == "" {
		var cfg projsvc.PostgresConfig
		if err := config.Load(&cfg, env); err != nil {
			return res, err
		}
		pgSchema = cfg.Schema
	}
	sample := func() {
		m, err := readProcMem(pid)
		if err == nil {
			res.SampledPeak = max(res.SampledPeak, m.RSS)
		}
		if pg, n := postgresMem(pgDir); n > 0 {
			res.PGPeakPSS = max(res.PGPeakPSS, pg.PSS)
		}
	}

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort), nats.MaxReconnects(-1))
	if err != nil {
		return res, fmt.Errorf("%w: connect to dev's NATS: %w", errBenchDev, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	media, err := js.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		return res, fmt.Errorf("%w: media store: %w", errBenchDev, err)
	}
	for key, b := range corpus.Images {
		if _, err := media.PutBytes(ctx, key, b); err != nil {
			return res, fmt.Errorf("%w: store image %s: %w", errBenchDev, key, err)
		}
	}
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		return res, err
	}
	// The stages' consumers: those of the fault run's services (ingest has no Telegram
	// session here; Qdrant and Neo4j are off unless configured).
	var consumers []string
	for _, name := range proctest.FaultServices {
		spec, ok := registry().Lookup(name)
		if !ok {
			return res, fmt.Errorf("%w: no service %s in this build", errBenchDev, name)
		}
		consumers = append(consumers, spec.Consumers...)
	}

	start := time.Now()
	tick := time.Now()
	for i := 0; i < len(corpus.Facts); i += 500 {
		batch := corpus.Facts[i:min(i+500, len(corpus.Facts))]
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		dups, err := pub.Publish(pctx, batch)
		cancel()
		if err != nil {
			return res, devFailed(fmt.Errorf("publish: %w", err))
		}
		if dups > 0 {
			return res, fmt.Errorf("%w: %d facts of the corpus were already in the log (a repeated event id)", errBenchDev, dups)
		}
		if time.Since(tick) > time.Second {
			sample()
			tick = time.Now()
		}
	}
	res.Fed = time.Since(start)
	fmt.Fprintf(o.Out, "fed %d facts in %s; waiting for the pipeline\n", len(corpus.Facts), res.Fed.Round(time.Millisecond))

	// Done: the posts are in Postgres and every consumer is idle.
	lastReport := time.Now()
	err = pollUntil(ctx, o.Timeout, exited, &waitErr, func() bool {
		sample()
		c, err := countPostgres(ctx, pgURL, pgSchema)
		if c != nil && time.Since(lastReport) > 30*time.Second {
			rss := "?"
			if m, err := readProcMem(pid); err == nil {
				rss = fmt.Sprintf("%d MiB", m.RSS>>20)
			}
			fmt.Fprintf(o.Out, "  %s: %d of %d posts in Postgres, dev's RSS %s; pending (unacknowledged) per consumer: %s\n",
				time.Since(start).Round(time.Second), c.posts, res.WantPostsInPG, rss, consumerLag(ctx, js, consumers))
			lastReport = time.Now()
		}
		if err != nil || c.posts < res.WantPostsInPG {
			return false
		}
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return waitIdle(ictx, js, consumers, 20*time.Second) == nil
	})
	if err != nil {
		return res, devFailed(fmt.Errorf("the posts did not all reach Postgres: %w", err))
	}
	res.Took = time.Since(start)
	res.PostsPerS = float64(corpus.Posts) / res.Took.Seconds()
	c, err := countPostgres(ctx, pgURL, pgSchema)
	if err != nil {
		return res, err
	}
	res.PostsInPG, res.EmbeddedInPG = c.posts, c.embedded

	// The final figures, after the process sat idle for Settle.
	select {
	case <-time.After(o.Settle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if res.Final, err = readProcMem(pid); err != nil {
		return res, fmt.Errorf("%w: memory of dev (pid %d): %w", errBenchDev, pid, err)
	}
	res.Peak = res.Final.HWM
	res.SampledPeak = max(res.SampledPeak, res.Final.RSS)
	res.PG, res.PGProcs = postgresMem(pgDir)
	res.PGPeakPSS = max(res.PGPeakPSS, res.PG.PSS)
	gm, err := scrapeMetrics("http://"+httpAddr+"/metrics", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_sys_bytes", "go_gc_gomemlimit_bytes")
	if err != nil {
		return res, fmt.Errorf("%w: dev's /metrics: %w", errBenchDev, err)
	}
	res.HeapInuse, res.HeapAlloc, res.GoSys, res.MemLimit = gm[0], gm[1], gm[2], gm[3]
	res.HeapProfile = filepath.Join(o.Dir, "heap.pprof")
	if err := fetchToFile("http://"+pprofAddr+"/debug/pprof/heap?gc=1", res.HeapProfile); err != nil {
		return res, fmt.Errorf("%w: heap profile: %w", errBenchDev, err)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}

	stopped = true
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return res, err
	}
	select {
	case <-exited:
		if waitErr != nil {
			return res, devFailed(fmt.Errorf("dev exited: %w", waitErr))
		}
	case <-time.After(2 * time.Minute):
		if err := cmd.Process.Kill(); err != nil {
			return res, err
		}
		<-exited
		return res, devFailed(errors.New("dev did not stop within 2 minutes of SIGTERM"))
	}
	return res, nil
}

func printBenchDev(w io.Writer, o benchDevOptions, r benchDevResult) {
	mib := func(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }
	ocr := "OCR off"
	if o.Env["TGFLOW_VISION_OCR"] != "false" {
		ocr = "OCR on"
	}
	fmt.Fprintf(w, "bench dev (%s embedder, %s): %d posts in Postgres (%d expected, %d embeddings) %s after the first publish: %.0f posts/s (feeding the log took %s)\n",
		o.Embedder, ocr, r.PostsInPG, r.WantPostsInPG, r.EmbeddedInPG, r.Took.Round(time.Second), r.PostsPerS, r.Fed.Round(time.Millisecond))
	limit := "none"
	if r.MemLimit > 0 && r.MemLimit < math.MaxInt64 {
		limit = mib(r.MemLimit)
	}
	fmt.Fprintf(w, "  tgflow dev:  RSS %s after %s idle, peak %s (VmHWM); Go heap in use %s (live objects %s), Go runtime total %s, GOMEMLIMIT %s\n",
		mib(r.Final.RSS), o.Settle, mib(r.Peak), mib(r.HeapInuse), mib(r.HeapAlloc), mib(r.GoSys), limit)
	if r.PGProcs > 0 {
		fmt.Fprintf(w, "  Postgres:    %d processes: PSS %s (RSS summed %s, counting shared memory once per process); peak PSS %s\n",
			r.PGProcs, mib(r.PG.PSS), mib(r.PG.RSS), mib(r.PGPeakPSS))
	} else {
		fmt.Fprintln(w, "  Postgres:    external (TGFLOW_POSTGRES_URL), not measured")
	}
	fmt.Fprintf(w, "  heap profile: %s (go tool pprof -top -sample_index=inuse_space %[1]s)\n", r.HeapProfile)
	fmt.Fprintf(w, "  load average at the end: %s\n", r.Load)
}

// readProcMem reads VmRSS and VmHWM from /proc/<pid>/status and Pss from smaps_rollup.
func readProcMem(pid int) (procMem, error) {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		switch f := strings.Fields(line); {
		case len(f) >= 2 && f[0] == "VmRSS:":
			m.RSS = kbField(f[1])
		case len(f) >= 2 && f[0] == "VmHWM:":
			m.HWM = kbField(f[1])
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				m.PSS = kbField(f[1])
			}
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

func kbField(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// postgresMem sums the memory of the embedded Postgres in dir: the postmaster and its
// children (backends, writers). n is 0 when none runs there.
func postgresMem(dir string) (sum procMem, n int) {
	pm, ok := embeddedpg.PostmasterPID(dir)
	if !ok {
		return sum, 0
	}
	pids := []int{pm}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return sum, 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); ok && ppid == pm {
			pids = append(pids, pid)
		}
	}
	for _, p := range pids {
		m, err := readProcMem(p)
		if err != nil {
			continue // a backend that exited meanwhile
		}
		sum.RSS += m.RSS
		sum.HWM += m.HWM
		sum.PSS += m.PSS
		n++
	}
	return sum, n
}

// parentPID reads the parent of pid from /proc/<pid>/stat.
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// scrapeMetrics reads the named unlabelled gauges from a Prometheus text endpoint, in order.
func scrapeMetrics(url string, names ...string) ([]int64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	vals := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		if v >= math.MaxInt64 { // "no limit" is 2^63-1, which a float64 rounds up past int64
			vals[f[0]] = math.MaxInt64
		} else {
			vals[f[0]] = int64(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]int64, len(names))
	for i, n := range names {
		v, ok := vals[n]
		if !ok {
			return nil, fmt.Errorf("%s has no %s", url, n)
		}
		out[i] = v
	}
	return out, nil
}

func fetchToFile(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}

// pollUntil calls done every 500 ms until it returns true, the timeout passes, the dev
// process exits (exited closed, *waitErr says how) or ctx ends.
func pollUntil(ctx context.Context, timeout time.Duration, exited <-chan struct{}, waitErr *error, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		select {
		case <-exited:
			return fmt.Errorf("dev exited: %v", *waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailFile is the last n lines of a file, for an error message.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// consumerLag says each consumer's pending and unacknowledged messages, for progress lines.
func consumerLag(ctx context.Context, js jetstream.JetStream, consumers []string) string {
	var parts []string
	for _, name := range consumers {
		ci, err := consumerInfo(ctx, js, name)
		if err != nil {
			parts = append(parts, name+" ?")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d (%d)", name, ci.NumPending, ci.NumAckPending))
	}
	return strings.Join(parts, ", ")
}
