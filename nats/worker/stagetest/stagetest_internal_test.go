package stagetest

// The suite must fail the stages it exists to catch: each broken stage below is reported
// by the check named for it, and a good stage by none.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func input(msg int64) events.Event {
	return events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: msg}, Date: t0, Text: "x"}})
}

func tagged(ctx context.Context, in events.Event, p *events.PostParsed) events.Event {
	return worker.Derive(ctx, in, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
		Tags: []events.Tag{{Name: "t"}}, PostedAt: p.Date, Provider: "test"}, in.Time)
}

type natsKey struct{}

func TestSuiteCatchesBrokenStages(t *testing.T) {
	var counter atomic.Int64
	for _, tc := range []struct {
		name     string
		caughtBy string // "" for the good stage
		handler  func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error)
		mw       worker.Middleware
	}{
		{"good", "", func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
			if p.ChannelID == 0 {
				return nil, worker.Permanent(errors.New("no channel"))
			}
			return []events.Event{tagged(ctx, in, p)}, nil
		}, nil},
		{"invalid output", "outputs validate", func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
			o := tagged(ctx, in, p)
			o.Data.(*events.PostTagged).Provider = ""
			return []events.Event{o}, nil
		}, nil},
		{"another stage's type", "outputs belong to the stage", func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
			return []events.Event{worker.Derive(ctx, in, &events.PostEnriched{PostRef: p.PostRef, PostedAt: p.Date}, in.Time)}, nil
		}, nil},
		{"a new id each time", "the same input twice yields the same output ids", func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
			pay := &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial, Tags: []events.Tag{{Name: "t"}}, PostedAt: p.Date, Provider: "test"}
			return []events.Event{events.Derive(events.Event{ID: fmt.Sprint(counter.Add(1)), TraceParent: in.TraceParent}, events.ProducerTagger, pay, in.Time)}, nil
		}, nil},
		{"malformed input retried", "a malformed input is permanent", func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
			if p.ChannelID == 0 {
				return nil, errors.New("no channel") // transient: retried for nothing
			}
			return []events.Event{tagged(ctx, in, p)}, nil
		}, nil},
		{"NATS in the context", "a handler never sees NATS", func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
			return []events.Event{tagged(ctx, in, p)}, nil
		}, func(next worker.HandlerFunc) worker.HandlerFunc {
			return func(ctx context.Context, in events.Event) ([]events.Event, error) {
				return next(context.WithValue(ctx, natsKey{}, &nats.Msg{Subject: "posts.parsed.1"}), in)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			malformed := input(9)
			malformed.Data = &events.PostParsed{Post: events.Post{PostRef: events.PostRef{MessageID: 9}, Date: t0}}
			h := Harness{
				Consumer: topology.ConsumerTagger,
				Router: func(*testing.T) *worker.Router {
					r := worker.NewRouter()
					if tc.mw != nil {
						r.Use(tc.mw)
					}
					worker.On(r, tc.handler)
					return r
				},
				Inputs:    []events.Event{input(1), input(2)},
				Malformed: []events.Event{malformed},
			}
			for _, c := range checks {
				errs := c.fn(t, h)
				if c.name == tc.caughtBy && len(errs) == 0 {
					t.Errorf("check %q passed a stage with %s", c.name, tc.name)
				}
				if tc.caughtBy == "" && len(errs) > 0 {
					t.Errorf("check %q failed the good stage: %v", c.name, errs)
				}
			}
		})
	}
}
