package postgres_test

import (
	"context"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
)

// A bulk shadow keeps the state it wrote in memory instead of reading it back (cache.go).
// When another handle moves the checkpoint (a rebuild resumed in another process), the first
// handle must notice and read the stored state again: alternating two handles batch by batch
// still gives the reference rows.
func TestBulkCacheCheckpointMovedByOtherHandle(t *testing.T) {
	ctx := context.Background()
	pool, s, want := withReference(t)

	live := newProjection(t, pool, "tgflow")
	a, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// a fills its cache, b writes behind its back, then they alternate.
	handles := []projections.Projection{a, a, b, a, b, b, a}
	for i := 0; i*4 < len(s.Facts); i++ {
		h := handles[i%len(handles)]
		apply(t, h, s.Facts[i*4:min(len(s.Facts), i*4+4)], 4)
	}
	assertSame(t, want, snapshot(t, a))
	if err := live.Swap(ctx, a); err != nil {
		t.Fatal(err)
	}
	assertSame(t, want, snapshot(t, live))
}

// A shadow dropped and filled again by another handle to the same checkpoint is not the one
// the first handle cached.
func TestBulkCacheShadowRecreated(t *testing.T) {
	ctx := context.Background()
	pool, s, want := withReference(t)

	live := newProjection(t, pool, "tgflow")
	a, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	half := len(s.Facts) / 2
	// a caches a state without the second quarter's rows; the re-created shadow has them.
	apply(t, a, s.Facts[:half/2], 5)
	apply(t, a, s.Facts[half:half+1], 1)
	if err := live.DropShadow(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, b, s.Facts[:half+1], 5)
	apply(t, a, s.Facts[half+1:], 5)
	assertSame(t, want, snapshot(t, a))
}

// Past its bound the cache is dropped and Apply reads the stored state again.
func TestBulkCacheBound(t *testing.T) {
	defer postgres.SetMaxCachedKeys(3)()
	ctx := context.Background()
	pool, s, want := withReference(t)
	live := newProjection(t, pool, "tgflow")
	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, sh, s.Facts, 2)
	assertSame(t, want, snapshot(t, sh))
}

// Stale facts arriving in later batches are judged against the state the cache holds: every
// batch size on a bulk shadow gives the rows of one batch on a plain projection.
func TestBulkCacheStaleFacts(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	ref := events.PostRef{ChannelID: 3, MessageID: 4}
	metrics := func(m int) events.Event {
		return events.New(events.ProducerIngest, &events.PostMetrics{PostRef: ref, Views: int64(100 + m), ObservedAt: tmin(m)}, tmin(m), sprintf("m%d", m))
	}
	deleted := func(m int) events.Event {
		return events.New(events.ProducerIngest, &events.PostDeleted{PostRef: ref, DeletedAt: tmin(m)}, tmin(m), sprintf("d%d", m))
	}
	tagged := func(rev events.Rev, tag string, m int) events.Event {
		return events.New(events.ProducerTagger, &events.PostTagged{PostRef: ref, Rev: rev, Trigger: events.TriggerInitial,
			Tags: []events.Tag{{Name: tag}}, PostedAt: tmin(0), Provider: "p"}, tmin(m), "t"+tag)
	}
	enriched := func(rev events.Rev, m int, pages ...events.Page) events.Event {
		return events.New(events.ProducerEnricher, &events.PostEnriched{PostRef: ref, Rev: rev, PostedAt: tmin(0), Pages: pages}, tmin(m), sprintf("e%d", m))
	}
	ok := func(m int, title string) events.Page {
		return events.Page{URL: "https://x.test/a", Domain: "x.test", Status: 200, Title: title, FetchedAt: tmin(m)}
	}
	bad := func(m int, reason string) events.Page {
		return events.Page{URL: "https://x.test/a", Domain: "x.test", Error: reason, FetchedAt: tmin(m)}
	}
	fs := facts(
		parsed(ref, "first", 0, 10),
		metrics(5), metrics(20), metrics(15),
		deleted(30), deleted(25), deleted(40),
		parsed(ref, "edited", tmin(50).Unix(), 51),
		parsed(ref, "stale", 0, 52),
		tagged(events.Rev{Version: tmin(50).Unix(), Revision: 1}, "new", 53),
		tagged(events.Rev{Version: tmin(50).Unix()}, "stale", 54),
		enriched(events.Rev{Version: 0}, 55, ok(50, "second")),
		enriched(events.Rev{Version: 0}, 56, ok(45, "first"), bad(60, "late")),
		enriched(events.Rev{Version: 0}, 57, bad(55, "early")),
		metrics(15),
	)
	plain := newProjection(t, pool, "plain")
	apply(t, plain, fs, len(fs))
	want := snapshot(t, plain)
	for _, size := range []int{1, 2, 3} {
		live := newProjection(t, pool, sprintf("b%d", size))
		sh, err := live.Shadow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, sh, fs, size)
		assertSame(t, want, snapshot(t, sh))
	}
}
