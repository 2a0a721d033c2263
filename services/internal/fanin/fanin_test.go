package fanin_test

import (
	"context"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/internal/fanin"
)

func TestContinueTrace(t *testing.T) {
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	trend := &events.TrendDetected{Tag: "go", Window: "1h", WindowStart: at.Add(-time.Hour), WindowEnd: at, Count: 5,
		Channels: []events.ChannelID{1, 2, 3}, Posts: []string{"1/1"}, Method: "poisson-z"}
	fact := events.New(events.ProducerTrends, trend, at)
	post := &events.PostTagged{PostRef: events.PostRef{ChannelID: 1, MessageID: 1}, PostedAt: at}
	traced := events.New(events.ProducerTagger, post, at)
	untraced := traced
	untraced.TraceParent = ""

	tests := []struct {
		name      string
		in        events.Event
		wantTrace string
	}{
		{name: "the input's trace continues", in: traced, wantTrace: events.TraceID(traced.TraceParent)},
		{name: "an input without a trace leaves the fact's own", in: untraced, wantTrace: events.TraceID(fact.TraceParent)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := fanin.ContinueTrace(func(context.Context, events.Event) ([]events.Event, error) {
				return []events.Event{fact}, nil
			})
			out, err := h(context.Background(), tc.in)
			if err != nil || len(out) != 1 {
				t.Fatalf("out %v, err %v", out, err)
			}
			if out[0].ID != fact.ID {
				t.Errorf("id %s, want the fact's own %s", out[0].ID, fact.ID)
			}
			if got := events.TraceID(out[0].TraceParent); got != tc.wantTrace {
				t.Errorf("trace %s, want %s", got, tc.wantTrace)
			}
			if tc.in.TraceParent != "" && out[0].TraceParent == tc.in.TraceParent {
				t.Error("the fact reuses the input's span")
			}
		})
	}
}
