package qdrant_test

import (
	"math"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// TestServersAgree feeds the same log to the in-process server and to the real Qdrant and
// requires the same snapshot, byte for byte: points (ids, vectors, payloads), post states
// and checkpoint. Besides the contract script the log has posts whose payloads go to the
// edges of what survives Qdrant's JSON storage: the largest ids, negative and zero numbers,
// quotes, backslashes, NUL, emoji and right-to-left text, an empty tag list, a long text
// cut at the excerpt limit. It needs the real server (it fails under CI without one).
func TestServersAgree(t *testing.T) {
	t.Parallel()
	real := qdranttest.Real(t)
	facts := append(projectiontest.NewScript().Facts, edgeFacts(projectiontest.NewScript().Facts)...)
	snap := func(addr string) projections.Snapshot {
		p := newProjection(t, qdranttest.Dial(t, addr), qdrant.Options{})
		applyAll(t, p, facts, 6)
		return mustSnapshot(t, p)
	}
	want := snap(qdranttest.Start(t))
	got := snap(real)
	if len(want[qdrant.SectionPoints]) < 5 {
		t.Fatalf("only %d points: the edge posts are missing", len(want[qdrant.SectionPoints]))
	}
	if diff := want.Digest().Diff(got.Digest()); len(diff) > 0 {
		t.Fatalf("the real Qdrant differs from the in-process server: %v\nin-process:\n%s\nreal:\n%s", diff, want, got)
	}
}

// edgeFacts appends, after the facts of a script, posts with extreme payload values.
func edgeFacts(script []projections.Fact) []projections.Fact {
	seq := script[len(script)-1].Seq
	var out []projections.Fact
	add := func(e events.Event) {
		seq++
		out = append(out, projections.Fact{Seq: seq, Event: e})
	}
	at := projectiontest.T0
	posts := []events.Post{
		{PostRef: events.PostRef{ChannelID: math.MaxInt64, MessageID: math.MaxInt64}, Date: at, EditDate: math.MaxInt32,
			ChannelUsername: "edge", GroupedID: math.MaxInt64, Text: "quotes \" ' \\ back\\slash\x00nul 🚀 עברית العربية \u2028",
			Links: []string{"https://WWW.Example.COM/a?b=c#d", "not a url", "https://пример.рф/путь"}},
		{PostRef: events.PostRef{ChannelID: 1, MessageID: 1}, Date: at.AddDate(-60, 0, 0), GroupedID: -5,
			Text: strings.Repeat("ж", qdrant.TextExcerptRunes+10)},
		{PostRef: events.PostRef{ChannelID: 2, MessageID: 3}, Date: at}, // no text at all
	}
	for i, p := range posts {
		parsed := events.New(events.ProducerIngest, &events.PostParsed{Post: p}, at, "0")
		add(parsed)
		tags := []events.Tag{{Name: "ключ"}, {Name: "a\"b"}}
		if i == 1 {
			tags = []events.Tag{} // tagged with nothing
		}
		add(events.Derive(parsed, events.ProducerTagger, &events.PostTagged{PostRef: p.PostRef, Rev: events.Rev{Version: p.Version()},
			Trigger: events.TriggerInitial, Tags: tags, PostedAt: at, Provider: "t"}, at))
		v := []float32{1, float32(i), -2, 0.5}
		add(events.Derive(parsed, events.ProducerEmbedder, embedding(p.PostRef, events.Rev{Version: p.Version()}, v...), at))
	}
	return out
}
