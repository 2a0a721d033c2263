package albums_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/albums"
)

func TestArrivalOrders(t *testing.T) {
	tests := []struct {
		name        string
		visionFirst []int64 // vision results delivered before albums.parsed
	}{
		{name: "album first", visionFirst: nil},
		{name: "vision first for every item", visionFirst: []int64{10, 11, 12}},
		{name: "vision first for one item", visionFirst: []int64{11}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			a := e.instance(t)
			var out []events.Event
			for _, id := range tc.visionFirst {
				out = append(out, analysed(t, a, visionOf(id, "cat", fmt.Sprint("l", id)))...)
			}
			if len(out) != 0 {
				t.Fatalf("a summary before albums.parsed: %v", out)
			}
			out = append(out, parsed(t, a, album(555, 12, 10, 11))...)
			for _, id := range []int64{10, 11, 12} {
				if !slices.Contains(tc.visionFirst, id) {
					if len(out) != 0 {
						t.Fatalf("a summary before item %d was analysed", id)
					}
					out = append(out, analysed(t, a, visionOf(id, "cat", fmt.Sprint("l", id)))...)
				}
			}
			p := assembled(t, out)
			if p.Outcome != events.AlbumComplete || len(p.Missing) != 0 {
				t.Errorf("outcome %s, missing %v; want complete, none", p.Outcome, p.Missing)
			}
			if !slices.Equal(p.MessageIDs, []int64{10, 11, 12}) || p.ItemCount != 3 || p.CoverMessageID != 10 {
				t.Errorf("items %v count %d cover %d", p.MessageIDs, p.ItemCount, p.CoverMessageID)
			}
			if want := []string{"cat", "l10", "l11", "l12"}; !slices.Equal(p.Labels, want) {
				t.Errorf("labels %v, want %v (most frequent first)", p.Labels, want)
			}
			if len(p.Descriptions) != 3 || p.OCRText != "text 1001/10\n\ntext 1001/11\n\ntext 1001/12" {
				t.Errorf("descriptions %q, OCR %q", p.Descriptions, p.OCRText)
			}
			if p.Caption != "caption" || p.GroupedID != 555 {
				t.Errorf("caption %q grouped %d", p.Caption, p.GroupedID)
			}
			// A redelivery of any input gives nothing more.
			if again := analysed(t, a, visionOf(10, "cat")); len(again) != 0 {
				t.Errorf("a redelivered vision result gave %d more summaries", len(again))
			}
			if again := parsed(t, a, album(555, 10, 11, 12)); len(again) != 0 {
				t.Errorf("a redelivered albums.parsed gave %d more summaries", len(again))
			}
		})
	}
}

func TestItemWithoutImageIsNotWaitedFor(t *testing.T) {
	e := start(t)
	a := e.instance(t)
	p := album(77, 20, 21)
	p.Items[1] = events.AlbumItem{MessageID: 21, MediaKind: events.MediaVideo, MediaSHA256: sha(21)}
	if out := parsed(t, a, p); len(out) != 0 {
		t.Fatal("summary before the photo was analysed")
	}
	s := assembled(t, analysed(t, a, visionOf(20, "x")))
	if s.Outcome != events.AlbumComplete || len(s.Missing) != 0 {
		t.Errorf("outcome %s missing %v", s.Outcome, s.Missing)
	}
}

func TestDeadlineListsMissingItems(t *testing.T) {
	e := start(t)
	a := e.instance(t)
	ctx := context.Background()
	parsed(t, a, album(9, 30, 31, 32))
	analysed(t, a, visionOf(30, "a"))
	analysed(t, a, visionOf(32, "b"))

	e.clock.Add(albums.DefaultDeadline - time.Second)
	if due, err := a.Due(ctx, e.clock.Now()); err != nil || len(due) != 0 {
		t.Fatalf("due before the deadline: %v, %v", due, err)
	}
	if n, err := a.Tick(ctx, e.pub); err != nil || n != 0 {
		t.Fatalf("tick before the deadline published %d: %v", n, err)
	}
	e.clock.Add(time.Second)
	due, err := a.Due(ctx, e.clock.Now())
	if err != nil || len(due) != 1 || !due[0].Expired {
		t.Fatalf("due at the deadline: %+v, %v", due, err)
	}
	if n, err := a.Tick(ctx, e.pub); err != nil || n != 1 {
		t.Fatalf("tick at the deadline published %d: %v", n, err)
	}
	log := e.onLog(t)
	s := assembled(t, log)
	if s.Outcome != events.AlbumDeadline || !slices.Equal(s.Missing, []int64{31}) {
		t.Errorf("outcome %s missing %v; want deadline [31]", s.Outcome, s.Missing)
	}
	// The item's late result does not make a second summary; nothing is due any more.
	if out := analysed(t, a, visionOf(31, "c")); len(out) != 0 {
		t.Errorf("late result gave %d summaries", len(out))
	}
	e.clock.Add(time.Hour)
	if n, err := a.Tick(ctx, e.pub); err != nil || n != 0 {
		t.Errorf("a later tick published %d: %v", n, err)
	}
	if got := len(e.onLog(t)); got != 1 {
		t.Errorf("%d summaries on the log, want 1", got)
	}
}

func TestExportAndLiveAreOneAlbum(t *testing.T) {
	e := start(t)
	a := e.instance(t)
	exported := album(-40, 40, 41)
	exported.Inferred = true
	parsed(t, a, exported)
	live := album(987654321, 40, 41)
	parsed(t, a, live)
	analysed(t, a, visionOf(40))
	s := assembled(t, analysed(t, a, visionOf(41)))
	if s.GroupedID != 987654321 || !slices.Equal(s.GroupedIDs, []int64{-40, 987654321}) {
		t.Errorf("grouped %d %v; want the real id and both", s.GroupedID, s.GroupedIDs)
	}
	if out := parsed(t, a, exported); len(out) != 0 {
		t.Error("the export's album again gave a second summary")
	}
}

func TestNewItemSetIsANewVersion(t *testing.T) {
	e := start(t)
	a := e.instance(t)
	parsed(t, a, album(5, 50))
	s1 := assembled(t, analysed(t, a, visionOf(50)))
	// An item added later (the live path saw more of the album): a second version.
	if out := parsed(t, a, album(5, 50, 51)); len(out) != 0 {
		t.Fatal("summary before the new item was analysed")
	}
	out := analysed(t, a, visionOf(51))
	s2 := assembled(t, out)
	if s1.Version == s2.Version || !slices.Equal(s2.MessageIDs, []int64{50, 51}) {
		t.Errorf("versions %s %s, items %v", s1.Version, s2.Version, s2.MessageIDs)
	}
}

// TestRacingInstances delivers every input of several albums to several instances at
// once, each input more than once (redeliveries), in a random order: exactly one summary
// per album, whoever completes it.
func TestRacingInstances(t *testing.T) {
	e := start(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const instances, nAlbums, copies = 8, 48, 3
	insts := make([]*albums.Assembler, instances)
	for i := range insts {
		insts[i] = e.instance(t)
	}
	type input func(a *albums.Assembler) ([]events.Event, error)
	var inputs []input
	for g := range nAlbums {
		ids := []int64{int64(100*g + 1), int64(100*g + 2), int64(100*g + 3), int64(100*g + 4)}
		p := album(int64(g+1), ids...)
		for range copies {
			inputs = append(inputs, func(a *albums.Assembler) ([]events.Event, error) {
				return a.AlbumParsed(context.Background(), events.Event{}, p)
			})
			for _, id := range ids {
				v := visionOf(id, "x")
				inputs = append(inputs, func(a *albums.Assembler) ([]events.Event, error) {
					return a.VisionAnalyzed(context.Background(), events.Event{}, v)
				})
			}
		}
	}
	rng.Shuffle(len(inputs), func(i, j int) { inputs[i], inputs[j] = inputs[j], inputs[i] })
	var mu sync.Mutex
	got := map[string][]string{} // album key → event ids returned
	var wg sync.WaitGroup
	var next atomic.Int64
	for i := range instances {
		wg.Go(func() {
			for {
				k := next.Add(1) - 1
				if k >= int64(len(inputs)) {
					return
				}
				out, err := inputs[k](insts[i])
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
					return
				}
				mu.Lock()
				for _, ev := range out {
					got[ev.Subject] = append(got[ev.Subject], ev.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != nAlbums {
		t.Errorf("%d albums summarised, want %d", len(got), nAlbums)
	}
	for k, ids := range got {
		if len(ids) != 1 {
			t.Errorf("album %s: %d summaries %v, want 1", k, len(ids), ids)
		}
	}
}

// TestRacingDeadlines runs the ticker of several instances at once over expired albums:
// each album's deadline summary reaches the log once.
func TestRacingDeadlines(t *testing.T) {
	e := start(t)
	const instances, nAlbums = 5, 6
	insts := make([]*albums.Assembler, instances)
	for i := range insts {
		insts[i] = e.instance(t)
	}
	for g := range nAlbums {
		parsed(t, insts[g%instances], album(int64(g+1), int64(10*g+1), int64(10*g+2)))
	}
	e.clock.Add(albums.DefaultDeadline)
	var wg sync.WaitGroup
	var published atomic.Int64
	for _, a := range insts {
		wg.Go(func() {
			n, err := a.Tick(context.Background(), e.pub)
			if err != nil {
				t.Errorf("tick: %v", err)
			}
			published.Add(int64(n))
		})
	}
	wg.Wait()
	if n := len(e.onLog(t)); n != nAlbums {
		t.Errorf("%d deadline summaries on the log, want %d (published %d)", n, nAlbums, published.Load())
	}
}

func TestRestartInTheMiddle(t *testing.T) {
	e := start(t)
	first := e.instance(t)
	parsed(t, first, album(3, 60, 61, 62))
	analysed(t, first, visionOf(60))
	// The first instance is gone; a new one over the same bucket continues.
	second := e.instance(t)
	analysed(t, second, visionOf(61))
	s := assembled(t, analysed(t, second, visionOf(62)))
	if s.Outcome != events.AlbumComplete || len(s.Descriptions) != 3 {
		t.Errorf("outcome %s, %d descriptions", s.Outcome, len(s.Descriptions))
	}
}

// TestCrashBetweenClaimAndPublish: the instance that claimed the summary died before
// publishing it. After the grace period another instance's tick finds it is not on the
// log and publishes it, once.
func TestCrashBetweenClaimAndPublish(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	dead := e.instance(t)
	parsed(t, dead, album(4, 70))
	lost := assembled(t, analysed(t, dead, visionOf(70))) // returned, never published

	other := e.instance(t)
	if n, err := other.Tick(ctx, e.pub); err != nil || n != 0 {
		t.Fatalf("tick within the grace period published %d: %v", n, err)
	}
	e.clock.Add(albums.DefaultGrace)
	if n, err := other.Tick(ctx, e.pub); err != nil || n != 1 {
		t.Fatalf("tick after the grace period published %d, want 1: %v", n, err)
	}
	log := e.onLog(t)
	if got := assembled(t, log); got.Version != lost.Version || got.At != lost.At {
		t.Errorf("republished %+v, want the claimed %+v", got, lost)
	}
	e.clock.Add(time.Hour)
	if n, err := other.Tick(ctx, e.pub); err != nil || n != 0 {
		t.Errorf("a later tick published %d: %v", n, err)
	}
}

// TestCrashBetweenPublishAndConfirm: the summary reached the log but its claim was never
// confirmed. The tick after the grace period finds it on the log and does not publish it
// again — even once the log's duplicate window has passed, so that dedup cannot hide a
// second publish.
func TestCrashBetweenPublishAndConfirm(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	dead := e.instance(t)
	parsed(t, dead, album(6, 80, 81))
	analysed(t, dead, visionOf(80))
	out := analysed(t, dead, visionOf(81))
	assembled(t, out)
	if _, err := e.pub.Publish(ctx, out); err != nil {
		t.Fatal(err)
	}
	natstest.ShortDuplicateWindow(t, e.Env, 100*time.Millisecond)
	natstest.WaitDuplicateWindow(t, e.Env)

	other := e.instance(t)
	e.clock.Add(albums.DefaultGrace)
	if n, err := other.Tick(ctx, e.pub); err != nil || n != 0 {
		t.Fatalf("tick published %d, want 0 (the fact is on the log): %v", n, err)
	}
	if n := len(e.onLog(t)); n != 1 {
		t.Errorf("%d summaries on the log, want 1", n)
	}
	if due, err := other.Due(ctx, e.clock.Now()); err != nil || len(due) != 0 {
		t.Errorf("still due after confirmation: %+v %v", due, err)
	}
}

func TestConfirmSettlesTheAlbum(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	a := e.instance(t)
	parsed(t, a, album(8, 90))
	out := analysed(t, a, visionOf(90))
	if _, err := e.pub.Publish(ctx, out); err != nil {
		t.Fatal(err)
	}
	if err := a.Confirm(ctx, out); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(24 * time.Hour)
	if due, err := a.Due(ctx, e.clock.Now()); err != nil || len(due) != 0 {
		t.Errorf("a confirmed album is due: %+v %v", due, err)
	}
}

func TestSweepRemovesOldRendezvous(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	a := e.instance(t)
	analysed(t, a, visionOf(300)) // a post that is no album item
	kv, err := e.JS.KeyValue(ctx, "albums")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "p.1001.300"); err != nil {
		t.Fatalf("the result waits at its rendezvous: %v", err)
	}
	e.clock.Add(albums.DefaultPendingTTL)
	if err := a.Sweep(ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "p.1001.300"); err == nil {
		t.Error("the rendezvous entry outlived its TTL")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  albums.Config
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "negative deadline", cfg: albums.Config{Deadline: -time.Second}},
		{name: "negative grace", cfg: albums.Config{Grace: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}
