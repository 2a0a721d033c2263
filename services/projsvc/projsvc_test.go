package projsvc_test

import (
	"context"
	"errors"
	"strings"
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
		cons, err := js.Consumer(context.Background(), topology.LogStream, consumer)
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0
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
