package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

// record is a middleware that appends its name to *trace on the way in.
func record(name string, trace *[]string) worker.Middleware {
	return func(next worker.HandlerFunc) worker.HandlerFunc {
		return func(ctx context.Context, in events.Event) ([]events.Event, error) {
			*trace = append(*trace, name)
			return next(ctx, in)
		}
	}
}

// pipeline builds the tagger pipeline of r (no NATS).
func pipeline(t *testing.T, r *worker.Router, outer ...worker.Middleware) *worker.Pipeline {
	t.Helper()
	p, err := worker.NewPipeline(topology.ConsumerTagger, r, nil, outer...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMiddlewareOrder(t *testing.T) {
	var trace []string
	r := worker.NewRouter()
	r.Use(record("router-1", &trace), record("router-2", &trace))
	worker.On(r, func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		trace = append(trace, "handler")
		return tagOf(in, p), nil
	}, record("handler-own", &trace))
	p := pipeline(t, r, record("runtime", &trace))
	if _, err := p.Handle(context.Background(), parsed(1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(trace, ","), "runtime,router-1,router-2,handler-own,handler"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}

func handlerOf(fn func(ctx context.Context) error) *worker.Router {
	r := worker.NewRouter()
	worker.On(r, func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		if err := fn(ctx); err != nil {
			return nil, err
		}
		return tagOf(in, p), nil
	})
	return r
}

// Every failure a middleware adds is transient: the input is redelivered later, never
// dead-lettered at once.
func TestMiddlewareFailuresAreTransient(t *testing.T) {
	limiter := rate.NewLimiter(rate.Every(time.Hour), 1)
	for _, tc := range []struct {
		name  string
		mw    worker.Middleware
		fn    func(ctx context.Context) error
		calls int // handler calls before the checked one
		want  error
	}{
		{"recover", worker.Recover(logx.Discard()), func(context.Context) error { panic("boom") }, 0, worker.ErrPanic},
		{"timeout", worker.Timeout(20 * time.Millisecond), func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, 0, worker.ErrTimeout},
		{"rate limit", worker.RateLimit(limiter), func(context.Context) error { return nil }, 1, worker.ErrRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := handlerOf(tc.fn)
			r.Use(tc.mw)
			p := pipeline(t, r)
			for range tc.calls {
				if _, err := p.Handle(context.Background(), parsed(1, 1, "x")); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := p.Handle(ctx, parsed(1, 1, "x"))
			if !errors.Is(err, tc.want) || worker.Classify(err) != worker.ClassTransient {
				t.Fatalf("err %v (class %s), want transient %v", err, worker.Classify(err), tc.want)
			}
		})
	}
}

// The breaker opens after consecutive transient failures and then refuses calls without
// reaching the provider; a permanent failure (the provider answered) does not count.
func TestCircuitBreakerOpensOnTransientFailuresOnly(t *testing.T) {
	var calls atomic.Int64
	var fail atomic.Pointer[error]
	rejected := worker.Permanent(errors.New("rejected"))
	fail.Store(&rejected)
	b := worker.NewBreaker(gobreaker.Settings{Name: "provider", Timeout: time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 2 }})
	r := handlerOf(func(context.Context) error { calls.Add(1); return *fail.Load() })
	r.Use(worker.CircuitBreaker(b, 0))
	p := pipeline(t, r)
	for range 3 {
		if _, err := p.Handle(context.Background(), parsed(1, 1, "x")); worker.Classify(err) != worker.ClassPermanent {
			t.Fatalf("err %v", err)
		}
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("permanent failures opened the circuit")
	}
	unavailable := errors.New("503 from provider")
	fail.Store(&unavailable)
	for range 2 {
		if _, err := p.Handle(context.Background(), parsed(1, 1, "x")); err == nil {
			t.Fatal("no error")
		}
	}
	before := calls.Load()
	_, err := p.Handle(context.Background(), parsed(1, 1, "x"))
	if !errors.Is(err, worker.ErrCircuitOpen) || worker.Classify(err) != worker.ClassTransient {
		t.Fatalf("open circuit: err %v (class %s), want transient ErrCircuitOpen", err, worker.Classify(err))
	}
	if calls.Load() != before {
		t.Fatal("an open circuit still called the provider")
	}
}

// Through the runtime: while the provider's circuit is open the input is held, not
// redelivered, so an outage longer than the consumer's deliveries dead-letters nothing; the
// input is handled once the provider is back.
func TestOpenCircuitSpendsNoDeliveries(t *testing.T) {
	h := newHarness(t)
	publish(t, h.env.JS, parsed(1, 1, "x"))
	cfg := h.config(testConsumer()) // MaxDeliver 3
	cfg.InProgressEvery = 100 * time.Millisecond
	var calls atomic.Int64
	b := worker.NewBreaker(gobreaker.Settings{Name: "provider", Timeout: 300 * time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }})
	r := handlerOf(func(context.Context) error {
		if calls.Add(1) <= 2 { // down for the first two calls (and ≥ 2×300ms)
			return errors.New("connection refused")
		}
		return nil
	})
	r.Use(worker.CircuitBreaker(b, 50*time.Millisecond))
	h.start(t, cfg, r)
	natstest.Eventually(t, 15*time.Second, "output once the provider is back", func() bool { return countSubject(t, h.env.JS, "posts.tagged.>") == 1 })
	natstest.Eventually(t, 5*time.Second, "consumer idle", func() bool { return consumerIdle(t, h.env.JS, topology.ConsumerTagger) })
	if n := len(dlqEntries(t, h.env.JS)); n != 0 {
		t.Fatalf("%d dead letters during an outage", n)
	}
	if info := consumerInfo(t, h.env.JS, topology.ConsumerTagger); info.NumRedelivered > 1 {
		t.Fatalf("%d redeliveries: the open circuit spent deliveries", info.NumRedelivered)
	}
}
