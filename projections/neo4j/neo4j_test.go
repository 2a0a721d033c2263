package neo4j_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/neo4j"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

func TestConstraintsAfterNew(t *testing.T) {
	d := newDriver(t)
	newProjection(t, d)
	// A second New over the same database is a no-op for the schema.
	if _, err := neo4j.New(context.Background(), d, neo4j.Options{}); err != nil {
		t.Fatalf("second New: %v", err)
	}
	got := map[string]bool{}
	for _, r := range run(t, d, `SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties RETURN type, labelsOrTypes[0], properties`, nil) {
		props, _ := r.Values[2].([]any)
		got[fmt.Sprintf("%v %v %v", r.Values[0], r.Values[1], props)] = true
	}
	for _, want := range []string{
		"UNIQUENESS Channel [id]", "UNIQUENESS Channel [username_lc]", "UNIQUENESS Post [key]",
		"UNIQUENESS Tag [name]", "UNIQUENESS Page [url]", "UNIQUENESS Domain [name]",
		"UNIQUENESS Topic [name]", "UNIQUENESS Image [sha256]", "UNIQUENESS Label [name]",
		"UNIQUENESS Album [key]", "UNIQUENESS Trend [key]", "UNIQUENESS Checkpoint [projection]",
	} {
		if !got[want] {
			t.Errorf("constraint %q missing; have %v", want, got)
		}
	}
	indexes := map[string]string{}
	for _, r := range run(t, d, `SHOW INDEXES YIELD name, state RETURN name, state`, nil) {
		indexes[r.Values[0].(string)] = r.Values[1].(string)
	}
	for _, name := range []string{"tgflow_post_channel_posted", "tgflow_post_posted_at", "tgflow_trend_window_end", "tgflow_post_key"} {
		if indexes[name] != "ONLINE" {
			t.Errorf("index %s is %q, want ONLINE", name, indexes[name])
		}
	}
}

func TestBackendDownIsErrBackend(t *testing.T) {
	newDriver(t) // only runs where the other tests run
	d, err := nd.NewDriverWithContext("bolt://127.0.0.1:1", nd.NoAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = neo4j.New(ctx, d, neo4j.Options{})
	if !errors.Is(err, projections.ErrBackend) {
		t.Fatalf("New against a closed port: %v, want ErrBackend", err)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	if _, err := neo4j.New(context.Background(), nil, neo4j.Options{}); err == nil {
		t.Error("New with a nil driver succeeded")
	}
	if err := (neo4j.Options{TextRunes: -1}).Validate(); err == nil {
		t.Error("negative TextRunes accepted")
	}
}

// seq numbers facts from 1.
func seq(es ...events.Event) []projections.Fact {
	out := make([]projections.Fact, len(es))
	for i, e := range es {
		out[i] = projections.Fact{Seq: uint64(i + 1), Event: e}
	}
	return out
}

var t0 = projectiontest.T0

func parsed(ch events.ChannelID, msg int64, edit int64, text string) events.Event {
	p := events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Date: t0, EditDate: edit, Text: text}
	if edit == 0 {
		return events.New(events.ProducerIngest, &events.PostParsed{Post: p}, t0, "0")
	}
	return events.New(events.ProducerIngest, &events.PostEdited{Post: p}, t0.Add(time.Duration(edit)), fmt.Sprint(edit))
}

func tagged(ch events.ChannelID, msg int64, rev events.Rev, tags ...string) events.Event {
	var ts []events.Tag
	for _, n := range tags {
		ts = append(ts, events.Tag{Name: n})
	}
	return events.New(events.ProducerTagger, &events.PostTagged{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Rev: rev,
		Trigger: events.TriggerInitial, Tags: ts, PostedAt: t0, Provider: "keyword"}, t0, fmt.Sprint(rev, tags))
}

func enriched(ch events.ChannelID, msg int64, rev events.Rev, pages ...events.Page) events.Event {
	return events.New(events.ProducerEnricher, &events.PostEnriched{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, Rev: rev,
		PostedAt: t0, Pages: pages}, t0, fmt.Sprint(rev, pages))
}

func page(url, domain, title string, fetchedMin int) events.Page {
	return events.Page{URL: url, Domain: domain, Title: title, Status: 200, FetchedAt: t0.Add(time.Duration(fetchedMin) * time.Minute)}
}

func deleted(ch events.ChannelID, msg int64) events.Event {
	return events.New(events.ProducerIngest, &events.PostDeleted{PostRef: events.PostRef{ChannelID: ch, MessageID: msg}, DeletedAt: t0.Add(time.Hour)}, t0.Add(time.Hour))
}

func TestVersionRules(t *testing.T) {
	d := newDriver(t)
	const ch events.ChannelID = 5
	tests := []struct {
		name  string
		facts []projections.Fact
		check func(t *testing.T, snap projections.Snapshot)
	}{
		{
			name: "a stale edit after the deletion does not resurrect the post",
			facts: seq(parsed(ch, 1, 0, "first"), tagged(ch, 1, events.Rev{}, "a"), deleted(ch, 1),
				parsed(ch, 1, 100, "edited after deletion"), tagged(ch, 1, events.Rev{Version: 100}, "b")),
			check: func(t *testing.T, snap projections.Snapshot) {
				p := one(t, snap, "Post", "Post:5/1")
				field(t, "post", p, "text", "first")
				field(t, "post", p, "version", 0)
				field(t, "post", p, "deleted_at", t0.Add(time.Hour).Format(time.RFC3339))
				field(t, "post", p, "tags_version", nil)
				if e := edges(t, snap, "TAGGED"); len(e) != 0 {
					t.Errorf("TAGGED after deletion: %v", e)
				}
				if _, ok := nodes(t, snap, "Tag")["Tag:b"]; ok {
					t.Error("the refused tagged fact created Tag:b")
				}
			},
		},
		{
			name:  "an older version arriving late is ignored",
			facts: seq(parsed(ch, 2, 200, "new"), parsed(ch, 2, 100, "old"), parsed(ch, 2, 0, "original")),
			check: func(t *testing.T, snap projections.Snapshot) {
				p := one(t, snap, "Post", "Post:5/2")
				field(t, "post", p, "text", "new")
				field(t, "post", p, "version", 200)
			},
		},
		{
			name: "a derived fact before its post, then a forward to an unknown post",
			facts: seq(tagged(ch, 3, events.Rev{}, "x"),
				events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: ch, MessageID: 4}, Date: t0,
					Forward: &events.ForwardOrigin{ChannelID: 77, MessageID: 9}, ReplyTo: &events.ReplyTo{MessageID: 3}}}, t0, "0")),
			check: func(t *testing.T, snap projections.Snapshot) {
				p3 := one(t, snap, "Post", "Post:5/3")
				field(t, "post 3", p3, "stub", nil)
				field(t, "post 3", p3, "tags_version", 0)
				stub := one(t, snap, "Post", "Post:77/9")
				field(t, "origin", stub, "stub", true)
				field(t, "origin", stub, "channel_id", 77)
				var fwd []string
				for _, e := range edgesFrom(t, snap, "FORWARDED_FROM", "Post:5/4") {
					fwd = append(fwd, e.to)
				}
				slices.Sort(fwd)
				if !slices.Equal(fwd, []string{"Channel:77", "Post:77/9"}) {
					t.Errorf("FORWARDED_FROM %v", fwd)
				}
				if r := edgesFrom(t, snap, "REPLIES_TO", "Post:5/4"); len(r) != 1 || r[0].to != "Post:5/3" {
					t.Errorf("REPLIES_TO %v", r)
				}
				if p := edgesFrom(t, snap, "PUBLISHED", "Channel:77"); len(p) != 1 || p[0].to != "Post:77/9" {
					t.Errorf("the stub is not published by its channel: %v", p)
				}
				ch77 := one(t, snap, "Channel", "Channel:77")
				field(t, "channel 77", ch77, "subscribed", false)
			},
		},
		{
			name: "a re-enrichment replaces the links; a page keeps its newest observation",
			facts: seq(parsed(ch, 5, 0, "p5"), parsed(ch, 6, 0, "p6"), parsed(ch, 7, 0, "p7"),
				enriched(ch, 5, events.Rev{}, page("https://a.example/", "a.example", "A new", 2)),
				enriched(ch, 5, events.Rev{Revision: 1}, page("https://b.example/", "b.example", "B", 3)),
				enriched(ch, 6, events.Rev{}, page("https://a.example/", "a.example", "A old", 1)),
				enriched(ch, 7, events.Rev{}, page("https://c.example/", "c1.example", "C", 1)),
				enriched(ch, 7, events.Rev{Revision: 1}, page("https://c.example/", "c2.example", "C moved", 2))),
			check: func(t *testing.T, snap projections.Snapshot) {
				if l := edgesFrom(t, snap, "LINKS_TO", "Post:5/5"); len(l) != 1 || l[0].to != "Page:https://b.example/" {
					t.Errorf("post 5 LINKS_TO %v, want only b", l)
				}
				if l := edgesFrom(t, snap, "LINKS_TO", "Post:5/6"); len(l) != 1 || l[0].to != "Page:https://a.example/" {
					t.Errorf("post 6 LINKS_TO %v, want a", l)
				}
				field(t, "page a", one(t, snap, "Page", "Page:https://a.example/"), "title", "A new")
				field(t, "page c", one(t, snap, "Page", "Page:https://c.example/"), "title", "C moved")
				if on := edgesFrom(t, snap, "ON", "Page:https://c.example/"); len(on) != 1 || on[0].to != "Domain:c2.example" {
					t.Errorf("page c ON %v, want c2.example", on)
				}
				one(t, snap, "Domain", "Domain:c1.example") // the first observation created it
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want projections.Snapshot
			for _, size := range []int{1, 2, len(tc.facts)} {
				p := newProjection(t, d)
				apply(t, p, tc.facts, size)
				got := snapshot(t, p)
				if want == nil {
					want = got
					tc.check(t, got)
					continue
				}
				assertSame(t, want, got)
			}
		})
	}
}

func TestChannelIdentity(t *testing.T) {
	d := newDriver(t)
	sub := func(id events.ChannelID, user string, min int) events.Event {
		return events.New(events.ProducerCLI, &events.ChannelSubscribed{ChannelID: id, Username: user, At: t0.Add(time.Duration(min) * time.Minute)}, t0, fmt.Sprint(min))
	}
	synced := func(id events.ChannelID, user string, min int) events.Event {
		at := t0.Add(time.Duration(min) * time.Minute)
		return events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: id, Username: user, Title: user, StartedAt: at, FinishedAt: at}, at, fmt.Sprint(min))
	}
	tests := []struct {
		name  string
		facts []projections.Fact
		check func(t *testing.T, snap projections.Snapshot)
	}{
		{
			name:  "username first, then a post, then the sync naming both",
			facts: seq(sub(0, "Gamma_Chan", 0), parsed(30, 1, 0, "hello"), synced(30, "gamma_chan", 5)),
			check: func(t *testing.T, snap projections.Snapshot) {
				chans := nodes(t, snap, "Channel")
				if len(chans) != 1 {
					t.Fatalf("channels %v, want one", snap["Channel"])
				}
				c := one(t, snap, "Channel", "Channel:30")
				field(t, "channel", c, "username", "gamma_chan")
				field(t, "channel", c, "subscribed", true)
				field(t, "channel", c, "subscribed_at", t0.Format(time.RFC3339))
				field(t, "channel", c, "sync_runs", 1)
				if p := edgesFrom(t, snap, "PUBLISHED", "Channel:30"); len(p) != 1 {
					t.Errorf("PUBLISHED %v", p)
				}
			},
		},
		{
			name:  "a username moves to another channel",
			facts: seq(synced(40, "moving_name", 1), synced(41, "moving_name", 2)),
			check: func(t *testing.T, snap projections.Snapshot) {
				field(t, "old holder", one(t, snap, "Channel", "Channel:40"), "username", nil)
				field(t, "new holder", one(t, snap, "Channel", "Channel:41"), "username", "moving_name")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want projections.Snapshot
			for _, size := range []int{1, 2, len(tc.facts)} {
				p := newProjection(t, d)
				apply(t, p, tc.facts, size)
				got := snapshot(t, p)
				if want == nil {
					want = got
					tc.check(t, got)
					continue
				}
				assertSame(t, want, got)
			}
		})
	}
}

func TestRebuildInPlace(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	live := newProjection(t, d)
	s := projectiontest.NewScript()
	apply(t, live, s.Facts, 10)
	want := snapshot(t, live)

	shadow, err := live.Shadow(ctx)
	if err != nil {
		t.Fatalf("Shadow: %v", err)
	}
	// The graph is cleared and the live projector is fenced off until the swap.
	if cp, err := live.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("checkpoint after Shadow = %d, %v", cp, err)
	}
	if n := len(snapshot(t, live)["Post"]); n != 0 {
		t.Fatalf("%d posts after Shadow, want a cleared graph", n)
	}
	err = live.Apply(ctx, s.Facts[:1])
	if !errors.Is(err, neo4j.ErrRebuilding) || !errors.Is(err, projections.ErrBackend) {
		t.Fatalf("live Apply during the rebuild: %v, want ErrRebuilding and ErrBackend", err)
	}

	half := len(s.Facts) / 2
	apply(t, shadow, s.Facts[:half], 7)
	// Calling Shadow again resumes the unfinished rebuild.
	resumed, err := live.Shadow(ctx)
	if err != nil {
		t.Fatalf("Shadow again: %v", err)
	}
	if cp, err := resumed.Checkpoint(ctx); err != nil || cp != s.Facts[half-1].Seq {
		t.Fatalf("resumed shadow at %d, %v; want %d", cp, err, s.Facts[half-1].Seq)
	}
	apply(t, resumed, s.Facts, 7)

	if err := live.Swap(ctx, resumed); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	if err := live.Swap(ctx, resumed); err != nil {
		t.Fatalf("second Swap: %v", err)
	}
	assertSame(t, want, snapshot(t, live))
	if err := shadow.Apply(ctx, s.Facts); !errors.Is(err, neo4j.ErrNotShadow) {
		t.Fatalf("shadow Apply after the swap: %v, want ErrNotShadow", err)
	}
	apply(t, live, s.Facts, 5) // the live projector resumes (all redelivered: skipped)
	assertSame(t, want, snapshot(t, live))
	if err := live.Swap(ctx, live); !errors.Is(err, neo4j.ErrNotShadow) {
		t.Fatalf("Swap(live): %v, want ErrNotShadow", err)
	}
}

func TestDropShadow(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	live := newProjection(t, d)
	s := projectiontest.NewScript()
	apply(t, live, s.Facts, 10)
	if err := live.DropShadow(ctx); err != nil { // no rebuild: nothing to drop
		t.Fatalf("DropShadow without a rebuild: %v", err)
	}
	if n := len(snapshot(t, live)["Post"]); n == 0 {
		t.Fatal("DropShadow without a rebuild cleared the graph")
	}
	shadow, err := live.Shadow(ctx)
	if err != nil {
		t.Fatalf("Shadow: %v", err)
	}
	apply(t, shadow, s.Facts[:10], 3)
	if err := live.DropShadow(ctx); err != nil {
		t.Fatalf("DropShadow: %v", err)
	}
	snap := snapshot(t, live)
	for _, label := range neo4j.Labels[:len(neo4j.Labels)-1] {
		if len(snap[label]) != 0 {
			t.Errorf("%s after DropShadow: %v", label, snap[label])
		}
	}
	if cp, err := live.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("checkpoint after DropShadow = %d, %v; want 0", cp, err)
	}
	if err := shadow.Apply(ctx, s.Facts[10:]); !errors.Is(err, neo4j.ErrNotShadow) {
		t.Fatalf("shadow Apply after DropShadow: %v, want ErrNotShadow", err)
	}
	// The live projection writes again; a replay from 1 gives the script's graph.
	apply(t, live, s.Facts, 10)
	got := snapshot(t, live)
	p := newProjection(t, d)
	apply(t, p, s.Facts, len(s.Facts))
	assertSame(t, got, snapshot(t, p))
}

// TestBatchBoundaries replays the benchmark's log cut into batches of random sizes: the graph
// must be the one a single batch gives.
func TestBatchBoundaries(t *testing.T) {
	d := newDriver(t)
	facts := rebuildFacts(300)
	p := newProjection(t, d)
	apply(t, p, facts, len(facts))
	want := snapshot(t, p)

	p = newProjection(t, d)
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for rest := facts; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(60))
		apply(t, p, rest[:n], n)
		rest = rest[n:]
	}
	assertSame(t, want, snapshot(t, p))
}
