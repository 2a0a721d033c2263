package worker

import (
	"context"
	"encoding/json"
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
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/projections"
)

// A projector notices deliveries it never received: its batches' consumer sequences skip
// one after the last accounted for (from the consumer's delivered sequence at the start,
// even for the first batch), or have a hole.
func TestProjectorNoticesMissingDeliveries(t *testing.T) {
	tests := []struct {
		name       string
		last       uint64
		deliveries []uint64
		want       bool
	}{
		{"first batch of a new consumer", 0, []uint64{1, 2}, false},
		{"first batch of a new consumer, its first delivery lost", 0, []uint64{2, 3}, true},
		{"first batch after a start, in line", 6, []uint64{7, 8}, false},
		{"first batch after a start, one lost", 6, []uint64{8, 9}, true},
		{"next in line", 10, []uint64{11, 12, 13}, false},
		{"arrived out of order, none missing", 10, []uint64{13, 11, 12}, false},
		{"skips one after the last batch", 10, []uint64{12, 13}, true},
		{"a hole inside the batch", 10, []uint64{11, 13}, true},
		{"late arrivals below the last accounted for, with a hole", 600, []uint64{590, 592, 601}, false},
		{"the same delivery twice", 10, []uint64{11, 11, 12}, false},
		{"empty", 10, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Projector{lastDelivery: tt.last}
			if got := p.missing(tt.deliveries); got != tt.want {
				t.Errorf("missing(%v) after %d = %v, want %v", tt.deliveries, tt.last, got, tt.want)
			}
		})
	}
}

// seqModel is an in-memory projection with the contract's checkpoint: facts at or below it
// are skipped as applied. It records the sequences it applied.
type seqModel struct {
	mu         sync.Mutex
	checkpoint uint64
	applied    []uint64
}

func (m *seqModel) Name() string { return "seq" }
func (m *seqModel) Apply(_ context.Context, facts []projections.Fact) error {
	if err := projections.CheckOrder(facts); err != nil {
		return err
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
func (m *seqModel) Checkpoint(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkpoint, nil
}
func (m *seqModel) Snapshot(context.Context) (projections.Snapshot, error) { return nil, nil }
func (m *seqModel) Close() error                                           { return nil }

func (m *seqModel) appliedSeqs() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.applied)
}

// logGap is a Config.Gap that applies to m, from the log, the facts of the consumer's
// filters above m's checkpoint up to and including seq (what projsvc's Replayer.CatchUp
// does, without its dependencies).
func logGap(js jetstream.JetStream, cc jetstream.ConsumerConfig, m *seqModel) func(ctx context.Context, seq uint64) error {
	return func(ctx context.Context, seq uint64) error {
		from, err := m.Checkpoint(ctx)
		if err != nil || from >= seq {
			return err
		}
		oc, err := js.OrderedConsumer(ctx, topology.LogStream, jetstream.OrderedConsumerConfig{FilterSubjects: cc.FilterSubjects,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1})
		if err != nil {
			return err
		}
		var facts []projections.Fact
		for {
			msg, err := oc.Next(jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return fmt.Errorf("read the log after seq %d: %w", from, err)
			}
			meta, err := msg.Metadata()
			if err != nil {
				return err
			}
			if meta.Sequence.Stream > seq {
				break
			}
			ev, err := events.Default.Decode(events.Header(msg.Headers()), msg.Data())
			if err != nil {
				return err
			}
			facts = append(facts, projections.Fact{Seq: meta.Sequence.Stream, Event: ev})
			if meta.Sequence.Stream == seq || meta.NumPending == 0 {
				break
			}
		}
		return m.Apply(ctx, facts)
	}
}

// gapEnv is a server with the Postgres projection's consumer, its ack wait short.
type gapEnv struct {
	env *natstest.Env
	cc  jetstream.ConsumerConfig
	n   int // facts published
}

func newGapEnv(t *testing.T) *gapEnv {
	t.Helper()
	env := natstest.Start(t)
	c, _ := topology.LookupConsumer(topology.ConsumerProjPostgres)
	cc := c.Config()
	cc.AckWait, cc.BackOff = time.Second, nil
	if _, err := env.JS.CreateOrUpdateConsumer(context.Background(), topology.LogStream, cc); err != nil {
		t.Fatal(err)
	}
	return &gapEnv{env: env, cc: cc}
}

func (g *gapEnv) publish(t *testing.T) {
	t.Helper()
	g.n++
	p := &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: int64(g.n)}, Date: time.Unix(0, 0).UTC(), Text: "x"}}
	ev := events.New(events.ProducerIngest, p, time.Unix(0, 0).UTC(), "0")
	h, body, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := ev.NATSSubject(events.Default)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
	m.Header.Set(publish.MsgIDHeader, ev.ID)
	if _, err := g.env.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func (g *gapEnv) info(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := g.env.JS.Consumer(context.Background(), topology.LogStream, g.cc.Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func (g *gapEnv) projector(t *testing.T, m *seqModel, beforeAck func(jetstream.Msg) error) *Projector {
	t.Helper()
	p, err := NewProjector(g.env.JS, Config{Consumer: g.cc, Batch: 8, Metrics: NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard(),
		Backoff: Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}, Gap: logGap(g.env.JS, g.cc, m), BeforeAck: beforeAck}, m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fetch pulls k deliveries the way Run receives them (decoded).
func (g *gapEnv) fetch(t *testing.T, k int) []delivery {
	t.Helper()
	cons, err := g.env.JS.Consumer(context.Background(), topology.LogStream, g.cc.Durable)
	if err != nil {
		t.Fatal(err)
	}
	var out []delivery
	for len(out) < k {
		b, err := cons.Fetch(k-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range b.Messages() {
			ev, err := events.Default.Decode(events.Header(msg.Headers()), msg.Data())
			out = append(out, delivery{msg: msg, ev: ev, err: err})
		}
		if err := b.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func streamSeq(t *testing.T, d delivery) uint64 {
	t.Helper()
	meta, err := d.msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return meta.Sequence.Stream
}

func wantAll(t *testing.T, m *seqModel, n int) {
	t.Helper()
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if got := m.appliedSeqs(); !slices.Equal(got, want) {
		t.Fatalf("applied %v, want every fact once in log order %v", got, want)
	}
}

// A delivery lost in transit before the projector's first batch (here: the server sends the
// first fact to a pull request whose subscriber drops it, as one of a predecessor that died,
// or a reply lost while a cluster moves the consumer's leader) must still reach the model:
// the facts after it are applied first, move the checkpoint past it, and its redelivery after
// the ack wait would be skipped as applied.
func TestProjectorFillsADeliveryLostBeforeItsFirstBatch(t *testing.T) {
	g := newGapEnv(t)
	nc := g.env.NC
	lost, err := nc.Subscribe(nats.NewInbox(), func(*nats.Msg) {}) // received and dropped
	if err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(map[string]any{"batch": 1, "expires": int64(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", topology.LogStream, g.cc.Durable), lost.Subject, req); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the lost pull request waits", func() bool { return g.info(t).NumWaiting == 1 })

	m := &seqModel{}
	p := g.projector(t, m, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The projector's pull requests wait behind the lost one, so the first fact goes there.
	natstest.Eventually(t, 10*time.Second, "the projector pulls", func() bool { return g.info(t).NumWaiting >= 2 })

	const n = 10
	for range n {
		g.publish(t)
	}
	natstest.Eventually(t, 15*time.Second, "every fact acked", func() bool {
		info := g.info(t)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == n
	})
	if info := g.info(t); info.Delivered.Consumer <= n {
		t.Fatalf("consumer delivered %d times for %d facts: the first was never lost (setup broken)", info.Delivered.Consumer, n)
	}
	wantAll(t, m, n)
}

// A delivery lost in transit while the projector runs, whose fact is above the first fact
// of the next batch: the batch holds a redelivery of a lower fact (an ack that did not arrive
// in time) ahead of the facts after the lost one. Filling only below the batch's first fact
// leaves the lost one out; the next facts move the checkpoint past it.
func TestProjectorFillsALostDeliveryAboveARedeliveredFact(t *testing.T) {
	g := newGapEnv(t)
	m := &seqModel{}
	// The first ack of fact 2 does not arrive.
	var dropped bool
	p := g.projector(t, m, func(msg jetstream.Msg) error {
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		if meta.Sequence.Stream == 2 && !dropped {
			dropped = true
			return fmt.Errorf("ack of fact 2 lost")
		}
		return nil
	})
	ctx := context.Background() // a new consumer: nothing delivered before this start
	fetch := func(k int) []delivery { return g.fetch(t, k) }
	for range 4 {
		g.publish(t)
	}
	p.process(ctx, fetch(2)) // facts 1 and 2 applied; the ack of 2 lost
	lost := fetch(1)         // fact 3: delivered, never received
	if seq, _ := lost[0].msg.Metadata(); seq.Sequence.Stream != 3 {
		t.Fatalf("lost fact %d, want 3", seq.Sequence.Stream)
	}
	next := fetch(2) // fact 4, and fact 2 again once its ack wait is over
	var seqs []uint64
	for _, d := range next {
		meta, err := d.msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, meta.Sequence.Stream)
	}
	if slices.Sort(seqs); !slices.Equal(seqs, []uint64{2, 4}) {
		t.Fatalf("next deliveries are of facts %v, want [2 4] (setup broken)", seqs)
	}
	p.process(ctx, next)
	// Fact 3 comes again after its ack wait; a checkpoint past it would skip it.
	p.process(ctx, fetch(1))
	wantAll(t, m, 4)
}

// A delivery lost in transit above every fact of the next batch: that batch holds only a
// redelivery of a lower fact (here nak'd; a failed batch comes back the same way). Filling
// the log only up to the batch's facts leaves the lost one out, and the next fact moves the
// checkpoint past it.
func TestProjectorFillsALostDeliveryAboveTheWholeBatch(t *testing.T) {
	g := newGapEnv(t)
	m := &seqModel{}
	p := g.projector(t, m, nil)
	ctx := context.Background() // a new consumer: nothing delivered before this start
	for range 3 {
		g.publish(t)
	}
	first := g.fetch(t, 3)                     // fact 3 is lost: delivered, never received
	p.process(ctx, first[:1])                  // fact 1 applied
	if err := first[1].msg.Nak(); err != nil { // fact 2 comes again at once
		t.Fatal(err)
	}
	again := g.fetch(t, 1)
	if streamSeq(t, again[0]) != 2 {
		t.Fatalf("redelivered fact %d, want 2 (setup broken)", streamSeq(t, again[0]))
	}
	p.process(ctx, again)
	g.publish(t)
	p.process(ctx, g.fetch(t, 1)) // fact 4
	// Fact 3 comes again after its ack wait; a checkpoint past it would skip it.
	p.process(ctx, g.fetch(t, 1))
	wantAll(t, m, 4)
}
