package logscan_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/ingest/logscan"
)

func publish(t *testing.T, js jetstream.JetStream, subject, id string) time.Time {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(id)
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), ack.Stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(context.Background(), ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	return raw.Time
}

// IDs finds every fact of one subject, across several batches, from the start or from a
// time, and none of another subject.
func TestIDsAcrossBatchesSinceATime(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	const n = 1234 // more than two batches
	var mid time.Time
	for i := range n {
		at := publish(t, env.JS, "posts.parsed.1", fmt.Sprintf("p%d", i))
		publish(t, env.JS, "posts.parsed.2", fmt.Sprintf("q%d", i))
		if i == 1000 {
			mid = at
		}
	}
	tests := []struct {
		name    string
		subject string
		since   time.Time
		from    int
		prefix  string
	}{
		{"whole subject", "posts.parsed.1", time.Time{}, 0, "p"},
		{"since a time", "posts.parsed.1", mid, 1000, "p"},
		{"other subject", "posts.parsed.2", time.Time{}, 0, "q"},
		{"nothing after the head", "posts.parsed.1", time.Now().Add(time.Hour), n, "p"},
		{"empty subject", "posts.parsed.3", time.Time{}, n, "p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := logscan.IDs(ctx, env.JS, tt.subject, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != n-tt.from {
				t.Fatalf("%d ids, want %d", len(ids), n-tt.from)
			}
			for i := tt.from; i < n; i++ {
				if !ids[fmt.Sprintf("%s%d", tt.prefix, i)] {
					t.Fatalf("id %s%d missing", tt.prefix, i)
				}
			}
		})
	}
}
