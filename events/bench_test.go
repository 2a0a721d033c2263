package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
)

// BenchmarkHopCodec is the per-hop CPU the runtime adds to raw NATS: decode a 1 KiB
// posts.parsed, derive posts.tagged, encode it.
func BenchmarkHopCodec(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	text := strings.Repeat("к", 400) + strings.Repeat("x", 200)
	in := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: 1}, Date: t0, Text: text}}, t0, "0")
	h, body, err := events.Encode(in)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ev, err := events.Decode(h, body)
		if err != nil {
			b.Fatal(err)
		}
		p := ev.Data.(*events.PostParsed)
		out := events.Derive(ev, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Trigger: events.TriggerInitial,
			Tags: []events.Tag{{Name: "t"}}, PostedAt: p.Date, Text: p.Text, Provider: "test"}, t0)
		if _, _, err := events.Encode(out); err != nil {
			b.Fatal(err)
		}
	}
}
