package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/projections"
)

// flakyModel is an in-memory read model whose backend is down until up is set.
type flakyModel struct {
	mu sync.Mutex
	up atomic.Bool
	// bug makes the failures plain errors (a deterministic bug) instead of ErrBackend.
	bug        bool
	attempts   atomic.Int64
	checkpoint uint64
	applied    []uint64
}

func (m *flakyModel) Name() string { return "flaky" }
func (m *flakyModel) Apply(_ context.Context, facts []projections.Fact) error {
	m.attempts.Add(1)
	if !m.up.Load() {
		if m.bug {
			return errors.New("column \"tags\" does not exist")
		}
		return fmt.Errorf("%w: connection refused", projections.ErrBackend)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range facts {
		if f.Seq <= m.checkpoint {
			continue
		}
		m.applied = append(m.applied, f.Seq)
		m.checkpoint = f.Seq
	}
	return nil
}
func (m *flakyModel) Checkpoint(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkpoint, nil
}
func (m *flakyModel) Snapshot(context.Context) (projections.Snapshot, error) { return nil, nil }
func (m *flakyModel) Close() error                                           { return nil }

// Whether the backend is down (an outage) or Apply fails on anything else (a bug), no fact
// is acked unapplied and the order is kept; the failures are labelled apart, so an alert
// can tell a deterministic bug from an outage.
func TestProjectorNeverAcksUnappliedFactsAndKeepsOrder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bug        bool
		class, not worker.Class
	}{
		{"backend down", false, worker.ClassBackend, worker.ClassBug},
		{"bug", true, worker.ClassBug, worker.ClassBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			const n = 30
			for i := 1; i <= n; i++ {
				publish(t, h.env.JS, parsed(1, int64(i), "x"))
			}
			c, _ := topology.LookupConsumer(topology.ConsumerProjPostgres)
			cc := c.Config()
			cc.AckWait = time.Second
			cc.BackOff = nil
			model := &flakyModel{bug: tc.bug}
			p, err := worker.NewProjector(h.env.JS, worker.Config{Consumer: cc, Batch: 8, Metrics: h.metrics, Logger: h.config(cc).Logger,
				Backoff: worker.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}, InProgressEvery: 200 * time.Millisecond}, model)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() { cancel(); <-done }()

			natstest.Eventually(t, 10*time.Second, "several failed attempts", func() bool { return model.attempts.Load() >= 10 })
			info := consumerInfo(t, h.env.JS, topology.ConsumerProjPostgres)
			if info.AckFloor.Stream != 0 {
				t.Fatalf("ack floor %d while Apply fails: a fact was acked unapplied", info.AckFloor.Stream)
			}
			if info.NumRedelivered != 0 {
				t.Fatalf("%d redeliveries: the held batch should be kept alive with InProgress", info.NumRedelivered)
			}
			failed := func(c worker.Class) float64 {
				return testutil.ToFloat64(h.metrics.Failed.WithLabelValues(topology.ConsumerProjPostgres, string(c)))
			}
			if failed(tc.class) < 10 || failed(tc.not) != 0 {
				t.Fatalf("failures labelled %s: %v, %s: %v", tc.class, failed(tc.class), tc.not, failed(tc.not))
			}
			model.up.Store(true)
			natstest.Eventually(t, 10*time.Second, "all applied and acked", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerProjPostgres) })
			model.mu.Lock()
			defer model.mu.Unlock()
			if len(model.applied) != n {
				t.Fatalf("applied %d facts, want %d", len(model.applied), n)
			}
			for i, seq := range model.applied {
				if seq != uint64(i+1) {
					t.Fatalf("applied out of log order: %v", model.applied)
				}
			}
		})
	}
}

func consumerInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), topology.LogStream, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}
