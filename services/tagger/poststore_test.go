package tagger_test

import (
	"context"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/tagger"
)

// guessingPosts is a PostStore that, like KVPosts, first calls fn as if nothing were
// stored (its one-write fast path for a new post) and then with what is stored: fn may be
// called more than once, and the handlers must decide on the last call.
type guessingPosts struct{ *tagger.MemoryPosts }

func (g guessingPosts) Update(ctx context.Context, key string, fn func(*tagger.PostRecord) (*tagger.PostRecord, bool)) (*tagger.PostRecord, error) {
	fn(nil)
	return g.MemoryPosts.Update(ctx, key, fn)
}

// TestHandlersDecideOnTheLastCall: with a store that calls fn speculatively, every trigger
// still gives what it gives with the plain store (a vision result for a seen post retags
// it; one for an unseen post is ErrPostUnseen; a deleted post is not tagged).
func TestHandlersDecideOnTheLastCall(t *testing.T) {
	h, err := tagger.NewHandler(localEngine(t), guessingPosts{tagger.NewMemoryPosts()})
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline(t, h)
	if got := one(t, p, parsedEv(1, goPost, true)); got == nil || got.Trigger != events.TriggerInitial {
		t.Fatalf("parsed: %+v", got)
	}
	if got := one(t, p, visionEv(1, 0, ocrItem(ocrText))); got == nil || got.Trigger != events.TriggerVisionRetag || got.Revision != 1 {
		t.Fatalf("vision retag of a seen post: %+v", got)
	}
	if _, err := p.Handle(context.Background(), visionEv(2, 0, ocrItem(ocrText))); err == nil {
		t.Error("a vision result for an unseen post was accepted")
	}
	del := events.New(events.ProducerIngest, &events.PostDeleted{PostRef: events.PostRef{ChannelID: channel, MessageID: 1}, DeletedAt: t0}, t0)
	if !tagger.ReadsDeletions() {
		return
	}
	if _, err := p.Handle(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	if got := one(t, p, editedEv(1, 1700000000, editedPost, true)); got != nil {
		t.Errorf("a deleted post was tagged: %+v", got)
	}
}
