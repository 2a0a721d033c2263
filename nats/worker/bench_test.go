package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

// BenchmarkHop measures one stage hop (consume, decode, no-op handler that derives one
// fact, encode, publish with dedup id, wait for the publish ack, ack) against raw nats.go
// (consume, publish the same message — the same CloudEvents headers and ~1 KiB body —
// under a new Nats-Msg-Id, ack after the publish ack) in the same run, on the same input
// log, and reports the ratio: what the runtime adds on top of moving the same bytes.
// Target: ratio ≥ 0.8.
func BenchmarkHop(b *testing.B) {
	n := b.N
	if n < 50000 {
		n = 50000 // one hop of a few messages says nothing about throughput
	}
	text := strings.Repeat("к", 400) + strings.Repeat("x", 200) // ≈1 KiB body

	// Interleaved rounds, best of each: the machine is shared, and noise hits both sides.
	var raw, run float64
	for range 5 {
		raw = max(raw, benchRaw(b, n, text))
		run = max(run, benchRuntime(b, n, text))
	}
	b.ReportMetric(raw, "raw_msgs/s")
	b.ReportMetric(run, "runtime_msgs/s")
	b.ReportMetric(run/raw, "ratio")
}

func benchEnv(b *testing.B) (*natstest.Env, jetstream.JetStream) {
	env := natstest.Start(b)
	_, js := natstest.Connect(b, env.URL)
	js2, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	return env, js2
}

func prefill(b *testing.B, js jetstream.JetStream, n int, msg func(i int) *nats.Msg) {
	b.Helper()
	for i := 1; i <= n; i++ {
		m := msg(i)
		for {
			_, err := js.PublishMsgAsync(m)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				b.Fatal(err)
			}
			// A loaded machine acks slowly: let the pending publishes settle, then go on.
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				b.Fatal("prefill stalled for 60s")
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("prefill did not complete")
	}
}

func waitCount(b *testing.B, js jetstream.JetStream, subject string, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for countSubject(b, js, subject) < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d on %s", countSubject(b, js, subject), n, subject)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inputMsg is input number i of both sides: a 1 KiB posts.parsed in binary mode.
func inputMsg(b *testing.B, i int, text string) *nats.Msg {
	ev := parsed(1, int64(i), text)
	h, body, err := events.Encode(ev)
	if err != nil {
		b.Fatal(err)
	}
	m := &nats.Msg{Subject: "posts.parsed.1", Header: nats.Header(h), Data: body}
	m.Header.Set(nats.MsgIdHdr, ev.ID)
	return m
}

func benchRaw(b *testing.B, n int, text string) float64 {
	_, js := benchEnv(b)
	ctx := context.Background()
	prefill(b, js, n, func(i int) *nats.Msg { return inputMsg(b, i, text) })
	cc, _ := topology.LookupConsumer(topology.ConsumerTagger)
	cons, err := js.CreateOrUpdateConsumer(ctx, topology.LogStream, cc.Config())
	if err != nil {
		b.Fatal(err)
	}
	type pending struct {
		in jetstream.Msg
		f  jetstream.PubAckFuture
	}
	acks := make(chan pending, 4096)
	go func() {
		for p := range acks {
			select {
			case <-p.f.Ok():
				_ = p.in.Ack()
			case <-p.f.Err():
			}
		}
	}()
	start := time.Now()
	cctx, err := cons.Consume(func(m jetstream.Msg) {
		meta, _ := m.Metadata()
		h := nats.Header{}
		for k, v := range m.Headers() {
			h[k] = v
		}
		h.Set(nats.MsgIdHdr, fmt.Sprint("out", meta.Sequence.Stream))
		out := &nats.Msg{Subject: "posts.tagged.1", Data: m.Data(), Header: h}
		f, err := js.PublishMsgAsync(out)
		if err != nil {
			return
		}
		acks <- pending{m, f}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		b.Fatal(err)
	}
	waitCount(b, js, "posts.tagged.>", n)
	elapsed := time.Since(start)
	cctx.Stop()
	close(acks)
	return float64(n) / elapsed.Seconds()
}

func benchRuntime(b *testing.B, n int, text string) float64 {
	_, js := benchEnv(b)
	prefill(b, js, n, func(i int) *nats.Msg { return inputMsg(b, i, text) })
	cc, _ := topology.LookupConsumer(topology.ConsumerTagger)
	r := tagRouter(func(in events.Event, p *events.PostParsed) ([]events.Event, error) { return tagOf(in, p), nil })
	s, err := worker.NewStage(js, worker.Config{Consumer: cc.Config(), Producer: events.ProducerTagger, Batch: 256,
		Metrics: worker.NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, r)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	waitCount(b, js, "posts.tagged.>", n)
	elapsed := time.Since(start)
	if c, err := js.Consumer(ctx, topology.LogStream, cc.Name); err == nil {
		if info, err := c.Info(ctx); err == nil && info.NumRedelivered > 0 {
			b.Logf("runtime: %d redelivered during the run", info.NumRedelivered)
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}
