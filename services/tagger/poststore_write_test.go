package tagger_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services/tagger"
)

// countingPosts is a MemoryPosts that counts the records written.
type countingPosts struct {
	*tagger.MemoryPosts
	mu     sync.Mutex
	writes int
}

func (c *countingPosts) Update(ctx context.Context, key string, fn func(*tagger.PostRecord) (*tagger.PostRecord, bool)) (*tagger.PostRecord, error) {
	return c.MemoryPosts.Update(ctx, key, func(cur *tagger.PostRecord) (*tagger.PostRecord, bool) {
		out, changed := fn(cur)
		if changed {
			c.mu.Lock()
			c.writes++
			c.mu.Unlock()
		}
		return out, changed
	})
}

func (c *countingPosts) written() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// A post's first version without media is read but not written (nothing needs it: no
// vision result comes for it); everything else is written as before, and a deletion stored
// before still stops the tagging.
func TestFirstVersionWithoutMediaIsNotWritten(t *testing.T) {
	ctx := worker.WithProducer(context.Background(), events.ProducerTagger)
	del := deletedEv(1)
	tests := []struct {
		name        string
		deleteFirst bool
		inputs      []events.Event
		tagged      []bool // per input: a posts.tagged is expected
		wantWrites  int    // deletion included
	}{
		{name: "parsed without media", inputs: []events.Event{parsedEv(1, goPost, false)},
			tagged: []bool{true}, wantWrites: 0},
		{name: "parsed without media, redelivered", inputs: []events.Event{parsedEv(1, goPost, false), parsedEv(1, goPost, false)},
			tagged: []bool{true, true}, wantWrites: 0},
		{name: "parsed with media", inputs: []events.Event{parsedEv(1, goPost, true)},
			tagged: []bool{true}, wantWrites: 1},
		{name: "edit without media is written", inputs: []events.Event{parsedEv(1, goPost, false), editedEv(1, 1700000000, editedPost, false)},
			tagged: []bool{true, true}, wantWrites: 1},
		{name: "deleted before its parsed fact", deleteFirst: true, inputs: []events.Event{parsedEv(1, goPost, false)},
			tagged: []bool{false}, wantWrites: 1},
		{name: "deleted before its edit", deleteFirst: true, inputs: []events.Event{editedEv(1, 1700000000, editedPost, false)},
			tagged: []bool{false}, wantWrites: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &countingPosts{MemoryPosts: tagger.NewMemoryPosts()}
			h, err := tagger.NewHandler(localEngine(t), store)
			if err != nil {
				t.Fatal(err)
			}
			if tt.deleteFirst {
				if _, err := h.Deleted(ctx, del, del.Data.(*events.PostDeleted)); err != nil {
					t.Fatal(err)
				}
			}
			p := pipeline(t, h)
			for i, in := range tt.inputs {
				out := one(t, p, in)
				if (out != nil) != tt.tagged[i] {
					t.Errorf("input %d (%s): tagged %v, want %v", i, in.Type, out != nil, tt.tagged[i])
				}
				if out != nil && len(out.Tags) == 0 {
					t.Errorf("input %d (%s): no tags", i, in.Type)
				}
			}
			if got := store.written(); got != tt.wantWrites {
				t.Errorf("%d records written, want %d", got, tt.wantWrites)
			}
		})
	}
}

// The tags of a post do not depend on whether its record was written.
func TestTagsDoNotDependOnTheRecordWrite(t *testing.T) {
	withMedia := one(t, pipeline(t, newHandler(t)), parsedEv(1, goPost, true))
	without := one(t, pipeline(t, newHandler(t)), parsedEv(1, goPost, false))
	if withMedia == nil || without == nil {
		t.Fatalf("not tagged: %v %v", withMedia, without)
	}
	a, b := tagNames(withMedia), tagNames(without)
	if len(a) == 0 || len(a) != len(b) || withMedia.Text != without.Text || withMedia.Rev != without.Rev {
		t.Fatalf("with media %v %+v, without %v %+v", a, withMedia.Rev, b, without.Rev)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("with media %v, without %v", a, b)
		}
	}
}
