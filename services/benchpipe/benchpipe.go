// Package benchpipe measures the text pipeline end to end on an embedded NATS server:
// posts.parsed facts published into the log, the real tagger, enricher and embedder stages
// and the Postgres projection in this process, until each post's row in Postgres says it is
// embedded — and, in the same invocation, the ceiling: the same topology (the same durable
// consumers, the same runtime) with no-op handlers that re-emit a minimal output fact per
// input and a projection that only acknowledges its batches. `tgflow bench pipeline` prints
// both and their ratio.
package benchpipe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/embedded"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
)

// Mode is what runs behind the log.
type Mode string

const (
	// ModePipeline is the real stages (tagger, enricher, embedder) and proj-postgres.
	ModePipeline Mode = "pipeline"
	// ModeCeiling is the same consumers with no-op handlers and a no-op projection.
	ModeCeiling Mode = "ceiling"
)

// ErrBench marks a run that could not measure (a stage failed, posts never arrived).
var ErrBench = errors.New("bench")

// Options configure one run.
type Options struct {
	Mode  Mode
	Posts int // posts of the throughput phase (all published at once)
	// Rate, when > 0, adds a latency phase: RatePosts more posts offered at Rate posts/s
	// once the throughput phase has drained. The latency figures are then this phase's.
	Rate      float64
	RatePosts int
	// Env is the stages' environment (TGFLOW_*): TGFLOW_EMBEDDER, TGFLOW_POSTGRES_URL,
	// TGFLOW_POSTGRES_SCHEMA, TGFLOW_DATA_DIR, ... ModePipeline needs TGFLOW_POSTGRES_URL.
	Env     map[string]string
	TempDir string // the embedded server's store (required)
	Logger  *slog.Logger
	// Specs are the real services of ModePipeline (the tagger, enricher, embedder and
	// proj-postgres specs; the caller passes them so that this package does not pick them).
	Specs []services.Spec
	// Timeout bounds each phase (default 10 minutes).
	Timeout time.Duration
}

// Result is what one run measured.
type Result struct {
	Mode      Mode
	Posts     int
	Wall      time.Duration // throughput phase: first publish → last post done
	CPU       time.Duration // the process's CPU time over the throughput phase
	PostsPerS float64
	// PostsPerCPUS is posts per CPU second of the process (the embedded server, the
	// stages, the projection, the bench itself): the figure a busy shared machine disturbs
	// least.
	PostsPerCPUS float64
	Latency      Latency // the latency phase's with Rate, else the throughput phase's
	LatencyAt    float64 // offered posts/s of the latency figures (0: all at once)
	PeakRSS      int64   // bytes, VmHWM over this run (reset at its start where Linux allows)
	PeakRSSNew   bool    // the peak was reset at the start (else it is the process's peak)
	// ServerCPU is the local Postgres server's CPU time over the throughput phase (pgcpu.go);
	// ServerCPUOK says it was measured (the pipeline, a server on this machine).
	ServerCPU   time.Duration
	ServerCPUOK bool
	// Stages is what each runner did over the throughput phase (handler or Apply time,
	// batches): where the wall time went.
	Stages []StageStat
}

// Latency summarises publish → done times.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

func summarise(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return Latency{N: len(d), P50: q(0.50), P99: q(0.99), Max: d[len(d)-1]}
}

// key names a post.
type key struct {
	ch  events.ChannelID
	msg int64
}

// tracker holds each post's publish time and the time it was seen done.
type tracker struct {
	mu    sync.Mutex
	sent  map[key]time.Time
	order []key // publish order
	done  map[key]time.Duration
	wake  chan struct{}
}

func newTracker() *tracker {
	return &tracker{sent: map[key]time.Time{}, done: map[key]time.Duration{}, wake: make(chan struct{}, 1)}
}

func (t *tracker) publishing(k key, at time.Time) {
	t.mu.Lock()
	t.sent[k] = at
	t.order = append(t.order, k)
	t.mu.Unlock()
}

// finished records k done at at; keys never published (or seen before) are ignored.
func (t *tracker) finished(k key, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sent[k]
	if !ok {
		return
	}
	if _, seen := t.done[k]; seen {
		return
	}
	t.done[k] = at.Sub(s)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.done)
}

// latencies are the done posts' latencies among keys.
func (t *tracker) latencies(keys []key) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]time.Duration, 0, len(keys))
	for _, k := range keys {
		if d, ok := t.done[k]; ok {
			out = append(out, d)
		}
	}
	return out
}

// Run runs one mode on a fresh embedded server.
func Run(ctx context.Context, o Options) (res Result, err error) {
	if o.Posts <= 0 {
		return res, fmt.Errorf("%w: posts must be positive", ErrBench)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	res.Mode, res.Posts = o.Mode, o.Posts
	res.PeakRSSNew = resetPeakRSS()
	// Every goroutine of this run (the embedded server's, the stages') carries the mode as a
	// profile label, so one CPU profile of `tgflow bench pipeline` splits into its runs.
	defer pprof.SetGoroutineLabels(ctx)
	ctx = pprof.WithLabels(ctx, pprof.Labels("mode", string(o.Mode)))
	pprof.SetGoroutineLabels(ctx)

	srv, err := embedded.Start(embedded.Options{DataDir: o.TempDir})
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		return res, fmt.Errorf("%w: connect: %w", ErrBench, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	if _, err := topology.Apply(ctx, js, topology.ApplyOptions{Consumers: []string{}}); err != nil {
		return res, fmt.Errorf("%w: topology: %w", ErrBench, err)
	}

	tr := newTracker()
	runCtx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		close(errs)
		for e := range errs {
			err = errors.Join(err, e)
		}
	}()
	goRun := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			// The label names the service in a CPU profile (go tool pprof -tagfocus); the
			// goroutines it starts inherit it.
			pprof.Do(runCtx, pprof.Labels("service", name), func(ctx context.Context) {
				if err := run(ctx); err != nil && runCtx.Err() == nil {
					errs <- fmt.Errorf("%w: %s: %w", ErrBench, name, err)
					cancel()
				}
			})
		})
	}
	reg := prometheus.NewRegistry()
	metrics := worker.NewMetrics(reg)
	var ready []<-chan struct{}
	var server *serverCPU
	var serverOK bool
	switch o.Mode {
	case ModePipeline:
		if o.Env["TGFLOW_POSTGRES_URL"] == "" {
			return res, fmt.Errorf("%w: the pipeline needs TGFLOW_POSTGRES_URL", ErrBench)
		}
		d := services.Deps{JS: js, Logger: o.Logger, Metrics: metrics, Registry: reg, Env: maps.Clone(o.Env)}
		for _, s := range o.Specs {
			svc, err := s.New(runCtx, d)
			if err != nil {
				return res, fmt.Errorf("%w: %s: %w", ErrBench, s.Name, err)
			}
			goRun(s.Name, svc.Run)
		}
		w, err := newRowWatcher(ctx, o.Env, tr)
		if err != nil {
			return res, err
		}
		defer w.close()
		goRun("postgres poll", w.run)
		server, serverOK = newServerCPU(ctx, w.pool)
		ready = append(ready, w.ready)
	case ModeCeiling:
		runs, err := ceiling(js, metrics, o.Logger, tr)
		if err != nil {
			return res, err
		}
		for name, r := range runs {
			goRun(name, r)
		}
	default:
		return res, fmt.Errorf("%w: mode %q", ErrBench, o.Mode)
	}

	if err := waitReady(runCtx, js, ready, o.Timeout); err != nil {
		return res, err
	}
	pub, err := publish.New(js, publish.Options{})
	if err != nil {
		return res, err
	}
	// Throughput: every post published at once.
	keys := make([]key, o.Posts)
	stages0, err := stageCounts(reg)
	if err != nil {
		return res, err
	}
	cpu0, err := cpuTime()
	if err != nil {
		return res, err
	}
	var server0 time.Duration
	if serverOK {
		server0, serverOK = server.read()
	}
	start := time.Now()
	b := pub.Batch()
	for i := range o.Posts {
		ev := Post(i)
		p := ev.Data.(*events.PostParsed)
		keys[i] = key{p.ChannelID, p.MessageID}
		tr.publishing(keys[i], time.Now())
		if err := b.Add(runCtx, ev); err != nil {
			return res, fmt.Errorf("%w: publish: %w", ErrBench, err)
		}
	}
	if _, err := b.Wait(runCtx); err != nil {
		return res, fmt.Errorf("%w: publish: %w", ErrBench, err)
	}
	if err := waitDone(runCtx, tr, o.Posts, o.Timeout); err != nil {
		return res, err
	}
	res.Wall = time.Since(start)
	cpu1, err := cpuTime()
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if serverOK {
		var server1 time.Duration
		server1, res.ServerCPUOK = server.read()
		res.ServerCPU = server1 - server0
	}
	stages1, err := stageCounts(reg)
	if err != nil {
		return res, err
	}
	res.Stages = stageDiff(stages0, stages1)
	res.PostsPerS = float64(o.Posts) / res.Wall.Seconds()
	res.PostsPerCPUS = float64(o.Posts) / res.CPU.Seconds()
	res.Latency = summarise(tr.latencies(keys))

	if o.Rate > 0 && o.RatePosts > 0 {
		// Latency at an offered rate: one post every 1/Rate, each published (and acked by
		// the log) on its own, as live ingest does.
		every := time.Duration(float64(time.Second) / o.Rate)
		keys = keys[:0]
		next := time.Now()
		for i := o.Posts; i < o.Posts+o.RatePosts; i++ {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-runCtx.Done():
					return res, runCtx.Err()
				}
			}
			next = next.Add(every)
			ev := Post(i)
			p := ev.Data.(*events.PostParsed)
			k := key{p.ChannelID, p.MessageID}
			keys = append(keys, k)
			tr.publishing(k, time.Now())
			if err := b.Add(runCtx, ev); err != nil {
				return res, fmt.Errorf("%w: publish: %w", ErrBench, err)
			}
		}
		if _, err := b.Wait(runCtx); err != nil {
			return res, fmt.Errorf("%w: publish: %w", ErrBench, err)
		}
		if err := waitDone(runCtx, tr, o.Posts+o.RatePosts, o.Timeout); err != nil {
			return res, err
		}
		res.Latency, res.LatencyAt = summarise(tr.latencies(keys)), o.Rate
	}
	res.PeakRSS, err = peakRSS()
	if err != nil {
		return res, err
	}
	if err := dlqEmpty(ctx, js); err != nil {
		return res, err
	}
	return res, nil
}

// consumers are the durable consumers of a run: both modes use the same.
var consumers = []string{topology.ConsumerTagger, topology.ConsumerEnricher, topology.ConsumerEmbedder, topology.ConsumerProjPostgres}

// waitReady waits until every consumer of the run exists and each ready channel is closed,
// so that the measured time holds no start-up (a schema migration, a model load).
func waitReady(ctx context.Context, js jetstream.JetStream, ready []<-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, name := range consumers {
		for {
			if _, err := js.Consumer(ctx, topology.LogStream, name); err == nil {
				break
			} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("%w: consumer %s: %w", ErrBench, name, err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: consumer %s not created after %s", ErrBench, name, timeout)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("%w: waiting for consumer %s: %w", ErrBench, name, ctx.Err())
			}
		}
	}
	for _, r := range ready {
		select {
		case <-r:
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("%w: not ready after %s", ErrBench, timeout)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting to start: %w", ErrBench, ctx.Err())
		}
	}
	return nil
}

// waitDone waits until n posts are done.
func waitDone(ctx context.Context, tr *tracker, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for tr.count() < n {
		select {
		case <-tr.wake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("%w: %d of %d posts done after %s", ErrBench, tr.count(), n, timeout)
		case <-ctx.Done():
			return fmt.Errorf("%w: %d of %d posts done: %w", ErrBench, tr.count(), n, ctx.Err())
		}
	}
	return nil
}

// dlqEmpty fails when a stage dead-lettered something: a run that lost posts measured
// nothing.
func dlqEmpty(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, topology.DLQStream)
	if err != nil {
		return fmt.Errorf("%w: DLQ: %w", ErrBench, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: DLQ: %w", ErrBench, err)
	}
	if info.State.Msgs != 0 {
		return fmt.Errorf("%w: the DLQ holds %d messages (tgflow dlq ls says why)", ErrBench, info.State.Msgs)
	}
	return nil
}

var (
	ruWords = strings.Fields("релиз версия компилятор сервер база данных очередь сообщений поток событий кластер " +
		"обновление безопасность уязвимость библиотека интерфейс производительность память процессор сеть запрос " +
		"ответ клиент пользователь команда разработчики проект открытый исходный код тестирование сборка " +
		"развёртывание контейнер облако хранилище индекс поиск вектор модель обучение данные анализ отчёт")
	enWords = strings.Fields("release version compiler server database queue messages stream events cluster " +
		"update security vulnerability library interface performance memory processor network request " +
		"response client user team developers project open source code testing build deploy container " +
		"cloud storage index search vector model training data analysis report")
	benchTags = []string{"#golang", "#nats", "#postgres", "#kubernetes", "#ml", "#security", "#новости", "#релиз"}
)

// Post is post number i of a run: 20–45 words in Russian or English (a hashtag in one of
// three) over 7 channels, deterministic in i.
func Post(i int) events.Event {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	words := ruWords
	if i%2 == 1 {
		words = enWords
	}
	n := 20 + r.IntN(26)
	parts := make([]string, 0, n+1)
	for range n {
		parts = append(parts, words[r.IntN(len(words))])
	}
	var hashtags []string
	if i%3 == 0 {
		h := benchTags[r.IntN(len(benchTags))]
		parts = append(parts, h)
		hashtags = []string{strings.TrimPrefix(h, "#")}
	}
	text := strings.Join(parts, " ") + "."
	p := events.Post{PostRef: events.PostRef{ChannelID: events.ChannelID(100 + i%7), MessageID: int64(1 + i)}, ChannelUsername: fmt.Sprintf("bench%d", i%7),
		Date: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second), Text: text, Hashtags: hashtags}
	return events.PostEvent(&events.PostParsed{Post: p})
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peak RSS: VmHWM %q: %w", rest, err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/self/status")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: "5" into clear_refs), so that a run
// reports its own peak; false where that is not possible (the peak is then the process's).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
