package albums_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/publish"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/albums"
)

const chA events.ChannelID = 1001

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the instances of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	*natstest.Env
	clock *clock
	pub   *publish.Publisher
}

func start(t *testing.T) *env {
	t.Helper()
	e := natstest.Start(t)
	pub, err := publish.New(e.JS, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{Env: e, clock: newClock(), pub: pub}
}

// instance is one Assembler with its own connection, as another process would have.
func (e *env) instance(t *testing.T) *albums.Assembler {
	t.Helper()
	_, js := natstest.Connect(t, e.URL)
	kv, err := js.KeyValue(context.Background(), topology.BucketAlbums)
	if err != nil {
		t.Fatal(err)
	}
	a, err := albums.New(kv, js, albums.Config{Now: e.clock.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// onLog counts the albums.assembled facts the log holds.
func (e *env) onLog(t *testing.T) []events.Event {
	t.Helper()
	return natstest.Facts(t, e.JS, "albums.assembled.>")
}

func album(grouped int64, ids ...int64) *events.AlbumParsed {
	p := &events.AlbumParsed{ChannelID: chA, GroupedID: grouped, PostedAt: t0.Add(-time.Hour), Caption: "caption"}
	for _, id := range ids {
		p.Items = append(p.Items, events.AlbumItem{MessageID: id, MediaKind: events.MediaPhoto, MediaSHA256: sha(id)})
	}
	return p
}

func sha(id int64) string {
	return events.NewID("img", events.PostKey(chA, id)) + events.NewID("img2", events.PostKey(chA, id))
}

func visionOf(id int64, labels ...string) *events.PostVisionAnalyzed {
	return &events.PostVisionAnalyzed{
		PostRef:  events.PostRef{ChannelID: chA, MessageID: id},
		Provider: "local",
		Items: []events.VisionItem{{
			MediaSHA256: sha(id), Labels: labels,
			Description: "picture " + events.PostKey(chA, id),
			OCRText:     "text " + events.PostKey(chA, id),
		}},
	}
}

func parsed(t *testing.T, a *albums.Assembler, p *events.AlbumParsed) []events.Event {
	t.Helper()
	out, err := a.AlbumParsed(context.Background(), events.Event{}, p)
	if err != nil {
		t.Fatalf("albums.parsed %d: %v", p.GroupedID, err)
	}
	return out
}

func analysed(t *testing.T, a *albums.Assembler, p *events.PostVisionAnalyzed) []events.Event {
	t.Helper()
	out, err := a.VisionAnalyzed(context.Background(), events.Event{}, p)
	if err != nil {
		t.Fatalf("vision %s: %v", p.Key(), err)
	}
	return out
}

func assembled(t *testing.T, evs []events.Event) *events.AlbumAssembled {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("want one albums.assembled, got %d", len(evs))
	}
	p, ok := evs[0].Data.(*events.AlbumAssembled)
	if !ok {
		t.Fatalf("want albums.assembled, got %s", evs[0].Type)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}
