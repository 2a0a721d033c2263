package worker

// An internal test: which deliveries share a batch is up to the server and the timing, and
// only an internal test can hand process one given batch.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
)

// logMsg is a delivered log message: its stream sequence and delivery count. Acks are
// recorded in acked.
type logMsg struct {
	seq, delivered uint64
	acks           *ackLog
}

type ackLog struct {
	mu   sync.Mutex
	seqs []uint64
}

func (m logMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq}, NumDelivered: m.delivered}, nil
}
func (m logMsg) Data() []byte                     { return nil }
func (m logMsg) Headers() nats.Header             { return nil }
func (m logMsg) Subject() string                  { return "" }
func (m logMsg) Reply() string                    { return "" }
func (m logMsg) DoubleAck(context.Context) error  { return m.Ack() }
func (m logMsg) Nak() error                       { return nil }
func (m logMsg) NakWithDelay(time.Duration) error { return nil }
func (m logMsg) InProgress() error                { return nil }
func (m logMsg) Term() error                      { return nil }
func (m logMsg) TermWithReason(string) error      { return nil }
func (m logMsg) Ack() error {
	m.acks.mu.Lock()
	defer m.acks.mu.Unlock()
	m.acks.seqs = append(m.acks.seqs, m.seq)
	return nil
}

// contractModel keeps the checkpoint rule of projections.Projection and records every
// Apply call; it refuses a batch that breaks the contract (facts not in ascending order),
// as the Postgres projection does.
type contractModel struct {
	checkpoint uint64
	calls      [][]uint64
	applied    []uint64
}

func (m *contractModel) Name() string { return "contract" }
func (m *contractModel) Apply(_ context.Context, facts []projections.Fact) error {
	var seqs []uint64
	for _, f := range facts {
		seqs = append(seqs, f.Seq)
	}
	m.calls = append(m.calls, seqs)
	if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		return fmt.Errorf("facts not in ascending order: %v", seqs)
	}
	for _, s := range seqs {
		if s > m.checkpoint {
			m.applied = append(m.applied, s)
		}
	}
	m.checkpoint = max(m.checkpoint, seqs[len(seqs)-1])
	return nil
}
func (m *contractModel) Checkpoint(context.Context) (uint64, error)             { return m.checkpoint, nil }
func (m *contractModel) Snapshot(context.Context) (projections.Snapshot, error) { return nil, nil }
func (m *contractModel) Close() error                                           { return nil }

// TestProjectorAppliesARedeliveryBehindNewFactsInLogOrder hands the projector the batch that
// made the live Neo4j graph differ from a replay: JetStream sends a redelivery ahead of new
// messages, so new facts 15…20 and a redelivered 11 (plus a second copy of 16) arrive as one
// batch. Apply must get them in log order, each once, and every message must be acked.
func TestProjectorAppliesARedeliveryBehindNewFactsInLogOrder(t *testing.T) {
	c, _ := topology.LookupConsumer(topology.ConsumerProjNeo4j)
	model := &contractModel{checkpoint: 14} // facts up to 14 applied, 11's ack lost
	p, err := NewProjector(struct{ jetstream.JetStream }{}, Config{Consumer: c.Config(), Batch: 8,
		Metrics: NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, model)
	if err != nil {
		t.Fatal(err)
	}
	acks := &ackLog{}
	ev := events.New(events.ProducerIngest, &events.PostDeleted{PostRef: events.PostRef{ChannelID: 1, MessageID: 1}}, time.Unix(0, 0))
	var batch []delivery
	for _, m := range []logMsg{{seq: 15, delivered: 1}, {seq: 16, delivered: 1}, {seq: 17, delivered: 1}, {seq: 18, delivered: 1},
		{seq: 11, delivered: 2}, {seq: 19, delivered: 1}, {seq: 16, delivered: 2}, {seq: 20, delivered: 1}} {
		m.acks = acks
		batch = append(batch, delivery{msg: m, ev: ev})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.process(ctx, batch) // a refused batch is retried until ctx ends

	if want := [][]uint64{{11, 15, 16, 17, 18, 19, 20}}; !slices.EqualFunc(model.calls, want, slices.Equal) {
		t.Fatalf("Apply calls %v, want %v", model.calls, want)
	}
	if want := []uint64{15, 16, 17, 18, 19, 20}; !slices.Equal(model.applied, want) {
		t.Fatalf("applied %v, want %v", model.applied, want)
	}
	slices.Sort(acks.seqs)
	if want := []uint64{11, 15, 16, 16, 17, 18, 19, 20}; !slices.Equal(acks.seqs, want) {
		t.Fatalf("acked %v, want every delivered message %v", acks.seqs, want)
	}
}
