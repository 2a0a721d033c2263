package projsvc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/projsvc"
	"github.com/tgflow/tgflow/services/projsvc/projsvctest"
)

// runProjector runs the live projector until the consumer is idle, then stops it.
func runProjector(t *testing.T, js jetstream.JetStream, consumer string, p projections.Projection, hook func(jetstream.Msg) error) {
	t.Helper()
	c, _ := topology.LookupConsumer(consumer)
	cfg := c.Config()
	cfg.AckWait = time.Second
	cfg.BackOff = nil
	run, err := worker.NewProjector(js, worker.Config{Consumer: cfg, Batch: 7, BeforeAck: hook,
		Metrics: worker.NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	natstest.Eventually(t, 30*time.Second, consumer+" idle", func() bool {
		return natstest.ConsumerIdle(js, consumer)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func snap(t *testing.T, p projections.Projection) projections.Snapshot {
	t.Helper()
	s, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Sort()
}

func TestRebuildVerifyStatus(t *testing.T) {
	for _, b := range projsvctest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			env := natstest.Start(t)
			script := projectiontest.NewScript()
			projsvctest.PublishScript(t, env.JS, script.Facts)
			live, closeFn := projsvctest.Open(t, b.Name, b.Env(t))
			defer closeFn()

			// A projector killed between its write and its ack (every first delivery) is
			// redelivered; the checkpoint makes the second apply a no-op.
			var withheld atomic.Int64
			runProjector(t, env.JS, b.Consumer, live, func(m jetstream.Msg) error {
				if meta, _ := m.Metadata(); meta.NumDelivered == 1 {
					withheld.Add(1)
					return errors.New("killed before ack")
				}
				return nil
			})
			if withheld.Load() == 0 {
				t.Fatal("the hook never withheld an ack")
			}
			want := snap(t, live)
			_, inPlace := live.(projections.InPlace)
			cons, _ := topology.LookupConsumer(b.Consumer)
			// Compare with a clean projection of the same facts (an in-place backend has one
			// graph: its Verify below rebuilds it cleanly and compares instead).
			if !inPlace {
				clean, closeClean := projsvctest.Open(t, b.Name, b.Env(t))
				defer closeClean()
				projsvctest.ApplyConsumed(t, clean, b.Consumer, script.Facts)
				if diff := snap(t, clean).Digest().Diff(want.Digest()); len(diff) > 0 {
					t.Fatalf("projector with withheld acks differs from a clean apply: %v", diff)
				}
			}

			r := projsvc.Replayer{JS: env.JS, Consumer: cons, Batch: 5, Logger: logx.Discard()}
			diff, err := projsvc.Verify(context.Background(), r, live, nil)
			if err != nil || len(diff) > 0 {
				t.Fatalf("verify on an honest model: %v %v", diff, err)
			}

			// An interrupted rebuild leaves the live model untouched and resumes.
			ctx, cancel := context.WithCancel(context.Background())
			if err := projsvc.Rebuild(ctx, r, live, cancelAfter{cancel: cancel}); err == nil {
				t.Fatal("interrupted rebuild returned no error")
			}
			cancel()
			if diff := snap(t, live).Digest().Diff(want.Digest()); len(diff) > 0 && !inPlace {
				t.Fatalf("interrupted rebuild changed the live model: %v", diff)
			}
			if err := projsvc.Rebuild(context.Background(), r, live, nil); err != nil {
				t.Fatal(err)
			}
			if diff := snap(t, live).Digest().Diff(want.Digest()); len(diff) > 0 {
				t.Fatalf("rebuilt model differs from the live one: %v", diff)
			}

			// A live model that applied another fact than the log's at the head is caught:
			// the log gets a deletion of one post, the live model the deletion of another.
			last := script.Facts[len(script.Facts)-1]
			logged := events.New(events.ProducerIngest, &events.PostDeleted{PostRef: projectiontest.PostForward, DeletedAt: projectiontest.T0}, projectiontest.T0)
			head := projsvctest.Publish(t, env.JS, logged)
			bogus := events.New(events.ProducerIngest, &events.PostDeleted{PostRef: projectiontest.PostEdited, DeletedAt: projectiontest.T0}, projectiontest.T0)
			if err := live.Apply(context.Background(), []projections.Fact{{Seq: head, Event: bogus}}); err != nil {
				t.Fatal(err)
			}
			diff, err = projsvc.Verify(context.Background(), r, live, nil)
			if err != nil || len(diff) == 0 {
				t.Fatalf("verify of a model that applied a fact not in the log: diff %v, err %v", diff, err)
			}

			st := projsvc.StatusOf(context.Background(), env.JS, b.Name, b.Consumer, live, 10*time.Millisecond)
			if st.Err != nil || st.Head != head || st.Checkpoint != head || head != last.Seq+1 {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

type cancelAfter struct{ cancel context.CancelFunc }

func (c cancelAfter) Start(uint64) {}
func (c cancelAfter) Add(int)      { c.cancel() }
func (c cancelAfter) Finish()      {}

// TestVerifyReportsDrift changes each live model behind its projector's back (a row's text, a
// tag; a point's payload, its vector; an edge, a node's property): verify must name the
// changed section and nothing else, and must find nothing on the model the log gives.
func TestVerifyReportsDrift(t *testing.T) {
	script := projectiontest.NewScript()
	for _, b := range projsvctest.Backends() {
		for _, d := range b.Drifts {
			t.Run(b.Name+"/"+d.Name, func(t *testing.T) {
				nenv := natstest.Start(t)
				projsvctest.PublishScript(t, nenv.JS, script.Facts)
				env := b.Env(t)
				live, closeFn := projsvctest.Open(t, b.Name, env)
				defer closeFn()
				projsvctest.ApplyConsumed(t, live, b.Consumer, script.Facts)
				cons, _ := topology.LookupConsumer(b.Consumer)
				r := projsvc.Replayer{JS: nenv.JS, Consumer: cons, Batch: 5, Logger: logx.Discard()}

				diff, err := projsvc.Verify(context.Background(), r, live, nil)
				if err != nil || len(diff) > 0 {
					t.Fatalf("verify on the model the log gives: diff %v, err %v", diff, err)
				}
				d.Apply(t, env)
				diff, err = projsvc.Verify(context.Background(), r, live, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(diff) != 1 || !strings.HasPrefix(diff[0], d.Section+": ") {
					t.Fatalf("verify after changing %s: diff %q, want one line for section %s", d.Name, diff, d.Section)
				}
			})
		}
	}
}

// downBackend is a projection whose backend is down: every Apply fails.
type downBackend struct{ projections.Projection }

func (downBackend) Apply(context.Context, []projections.Fact) error {
	return fmt.Errorf("%w: connection refused", projections.ErrBackend)
}

// TestProjectorRestartKeepsLogOrder stops a projector while its backend is down: the facts
// it pulled stay delivered and unacked until their ack wait ends (a minute), while the
// server hands a new subscriber the facts published since at once. The projection service,
// started again, must still apply every fact in log order: before, it applied the new facts,
// moved the checkpoint past the old ones and skipped them when they were redelivered.
func TestProjectorRestartKeepsLogOrder(t *testing.T) {
	script := projectiontest.NewScript()
	const first = 12
	for _, b := range projsvctest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			nenv := natstest.Start(t)
			projsvctest.PublishScript(t, nenv.JS, script.Facts[:first])
			env := b.Env(t)
			live, closeFn := projsvctest.Open(t, b.Name, env)
			defer closeFn()

			c, _ := topology.LookupConsumer(b.Consumer)
			down, err := worker.NewProjector(nenv.JS, worker.Config{Consumer: c.Config(), ShutdownTimeout: 50 * time.Millisecond,
				Backoff: worker.Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond},
				Metrics: worker.NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, downBackend{live})
			if err != nil {
				t.Fatal(err)
			}
			stop := runInBackground(t, down.Run)
			natstest.Eventually(t, 10*time.Second, "the first facts delivered", func() bool {
				info, err := consumerInfo(nenv.JS, b.Consumer)
				return err == nil && info.NumPending == 0 && info.NumAckPending > 0
			})
			stop()

			projsvctest.PublishScript(t, nenv.JS, script.Facts[first:])
			stop = runInBackground(t, newService(t, nenv.JS, b.Consumer, env).Run)
			lastSeq := lastConsumed(c, script.Facts)
			natstest.Eventually(t, 30*time.Second, "the checkpoint at the last fact", func() bool {
				cp, err := live.Checkpoint(context.Background())
				return err == nil && cp == lastSeq
			})
			stop()
			got := snap(t, live)

			clean, closeClean := projsvctest.Open(t, b.Name, b.Env(t))
			defer closeClean()
			projsvctest.ApplyConsumed(t, clean, b.Consumer, script.Facts)
			if diff := snap(t, clean).Digest().Diff(got.Digest()); len(diff) > 0 {
				t.Fatalf("restarted projector differs from a clean apply: %v", diff)
			}
		})
	}
}

// newService returns the projection service that reads consumer, configured by env.
func newService(t *testing.T, js jetstream.JetStream, consumer string, env map[string]string) services.Service {
	t.Helper()
	for _, s := range projsvc.Specs() {
		if slices.Contains(s.Consumers, consumer) {
			svc, err := s.New(context.Background(), services.Deps{JS: js, Logger: logx.Discard(),
				Metrics: worker.NewMetrics(prometheus.NewRegistry()), Env: env})
			if err != nil {
				t.Fatal(err)
			}
			return svc
		}
	}
	t.Fatalf("no service reads %s", consumer)
	return nil
}

// publishOnStart publishes facts when a replay starts: they reach the log while a rebuild
// replays it, and the live projector sees them at the same time.
type publishOnStart struct {
	t     *testing.T
	js    jetstream.JetStream
	facts []projections.Fact
	once  sync.Once
}

func (p *publishOnStart) Start(uint64) {
	p.once.Do(func() { projsvctest.PublishScript(p.t, p.js, p.facts) })
}
func (p *publishOnStart) Add(int) {}
func (p *publishOnStart) Finish() {}

// TestRebuildWhileProjectorRuns rebuilds each model, through a handle of its own as the
// command does, while the projection service runs and new facts arrive during the replay:
// afterwards the live model must be the one a clean apply of the whole log gives.
func TestRebuildWhileProjectorRuns(t *testing.T) {
	script := projectiontest.NewScript()
	const first = 20
	for _, b := range projsvctest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			nenv := natstest.Start(t)
			projsvctest.PublishScript(t, nenv.JS, script.Facts[:first])
			env := b.Env(t)
			c, _ := topology.LookupConsumer(b.Consumer)
			stop := runInBackground(t, newService(t, nenv.JS, b.Consumer, env).Run)
			cli, closeCLI := projsvctest.Open(t, b.Name, env)
			defer closeCLI()
			atCheckpoint := func(seq uint64) func() bool {
				return func() bool {
					cp, err := cli.Checkpoint(context.Background())
					info, ierr := consumerInfo(nenv.JS, b.Consumer)
					return err == nil && ierr == nil && cp == seq && info.NumPending == 0 && info.NumAckPending == 0
				}
			}
			natstest.Eventually(t, 30*time.Second, "the live model at the first facts", atCheckpoint(lastConsumed(c, script.Facts[:first])))

			r := projsvc.Replayer{JS: nenv.JS, Consumer: c, Batch: 5, Logger: logx.Discard()}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := projsvc.Rebuild(ctx, r, cli, &publishOnStart{t: t, js: nenv.JS, facts: script.Facts[first:]}); err != nil {
				t.Fatal(err)
			}
			natstest.Eventually(t, 30*time.Second, "the live model at the last fact", atCheckpoint(lastConsumed(c, script.Facts)))
			stop()
			got := snap(t, cli)

			clean, closeClean := projsvctest.Open(t, b.Name, b.Env(t))
			defer closeClean()
			projsvctest.ApplyConsumed(t, clean, b.Consumer, script.Facts)
			if diff := snap(t, clean).Digest().Diff(got.Digest()); len(diff) > 0 {
				t.Fatalf("model rebuilt under a running projector differs from a clean apply: %v", diff)
			}
		})
	}
}

// TestProjectorFillsAModelOlderThanItsConsumer starts the projection service over a model
// that holds fewer facts than its consumer has delivered and acked (a model restored from a
// backup): the service must fill the gap from the log, not go on from the consumer.
func TestProjectorFillsAModelOlderThanItsConsumer(t *testing.T) {
	script := projectiontest.NewScript()
	const restored = 9
	for _, b := range projsvctest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			nenv := natstest.Start(t)
			projsvctest.PublishScript(t, nenv.JS, script.Facts)
			c, _ := topology.LookupConsumer(b.Consumer)
			last := lastConsumed(c, script.Facts)
			first, closeFirst := projsvctest.Open(t, b.Name, b.Env(t))
			runProjector(t, nenv.JS, b.Consumer, first, nil)
			if cp, err := first.Checkpoint(context.Background()); err != nil || cp != last {
				t.Fatalf("first model at %d, %v; want %d", cp, err, last)
			}
			closeFirst()

			env := b.Env(t)
			live, closeFn := projsvctest.Open(t, b.Name, env)
			defer closeFn()
			projsvctest.ApplyConsumed(t, live, b.Consumer, script.Facts[:restored])
			stop := runInBackground(t, newService(t, nenv.JS, b.Consumer, env).Run)
			natstest.Eventually(t, 30*time.Second, "the restored model at the last fact", func() bool {
				cp, err := live.Checkpoint(context.Background())
				return err == nil && cp == last
			})
			stop()
			got := snap(t, live)

			clean, closeClean := projsvctest.Open(t, b.Name, b.Env(t))
			defer closeClean()
			projsvctest.ApplyConsumed(t, clean, b.Consumer, script.Facts)
			if diff := snap(t, clean).Digest().Diff(got.Digest()); len(diff) > 0 {
				t.Fatalf("restored model differs from a clean apply: %v", diff)
			}
		})
	}
}

// runInBackground runs fn until the returned stop is called; stop fails the test on fn's error.
func runInBackground(t *testing.T, fn func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func consumerInfo(js jetstream.JetStream, name string) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(context.Background(), topology.LogStream, name)
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

// lastConsumed is the sequence of the last fact c's filters let through.
func lastConsumed(c topology.Consumer, facts []projections.Fact) uint64 {
	var last uint64
	for _, f := range facts {
		if slices.Contains(c.Inputs, f.Event.Type) {
			last = f.Seq
		}
	}
	return last
}
