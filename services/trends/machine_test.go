package trends_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/trends"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

var nextMsg int64 = 1000

func tagged(ch events.ChannelID, at time.Time, tags ...string) *events.PostTagged {
	nextMsg++
	return retag(&events.PostTagged{PostRef: events.PostRef{ChannelID: ch, MessageID: nextMsg}, PostedAt: at}, 0, tags...)
}

// retag is a new revision of p's post with other tags.
func retag(p *events.PostTagged, revision int, tags ...string) *events.PostTagged {
	out := &events.PostTagged{PostRef: p.PostRef, Rev: events.Rev{Version: p.Version, Revision: revision},
		Trigger: events.TriggerInitial, PostedAt: p.PostedAt, Provider: "local"}
	for _, t := range tags {
		out.Tags = append(out.Tags, events.Tag{Name: t})
	}
	return out
}

func machine(t *testing.T, cfg trends.Config) *trends.Machine {
	t.Helper()
	m, err := trends.NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// background is a quiet day of tag x in channel 1 (one post every 3 hours) and of other
// tags everywhere, ending at end.
func background(end time.Time) []*events.PostTagged {
	var out []*events.PostTagged
	for at := end.Add(-24 * time.Hour); at.Before(end); at = at.Add(20 * time.Minute) {
		out = append(out, tagged(events.ChannelID(1+at.Minute()%4), at, "noise"))
		if at.Hour()%3 == 0 && at.Minute() == 0 {
			out = append(out, tagged(1, at, "x"))
		}
	}
	return out
}

// burst is n posts of tag over d from start, round-robin over channels.
func burst(tag string, start time.Time, d time.Duration, n int, channels ...events.ChannelID) []*events.PostTagged {
	var out []*events.PostTagged
	for i := range n {
		out = append(out, tagged(channels[i%len(channels)], start.Add(time.Duration(i)*d/time.Duration(n)), tag))
	}
	return out
}

func observeAll(m *trends.Machine, facts []*events.PostTagged) []*events.TrendDetected {
	var out []*events.TrendDetected
	for _, f := range facts {
		out = append(out, m.Observe(f)...)
	}
	return out
}

func tagsOf(ts []*events.TrendDetected) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Tag)
	}
	return out
}

func TestBurstAcrossThreeChannelsIsDetectedOnce(t *testing.T) {
	m := machine(t, trends.Config{})
	if got := observeAll(m, background(t0)); len(got) != 0 {
		t.Fatalf("the background trends: %v", tagsOf(got))
	}
	got := observeAll(m, burst("x", t0, 40*time.Minute, 15, 1, 2, 3))
	if len(got) != 1 {
		t.Fatalf("%d trends %v, want one (the cooldown holds the rest)", len(got), tagsOf(got))
	}
	tr := got[0]
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	if tr.Tag != "x" || !slices.Equal(tr.Channels, []events.ChannelID{1, 2, 3}) || tr.Window != "1h" ||
		tr.WindowEnd.Sub(tr.WindowStart) != time.Hour || len(tr.Posts) == 0 || len(tr.Posts) > 5 {
		t.Errorf("trend %+v", tr)
	}
	if tr.Count < trends.DefaultMinCount || tr.Score < trends.DefaultMinScore || tr.Expected <= 0 || tr.Expected >= 1 {
		t.Errorf("count %d score %.2f expected %.3f (a tag posted every 3 h expects 1/3 per hour)", tr.Count, tr.Score, tr.Expected)
	}
	// Every channel has a sample before any channel has two.
	chans := map[string]bool{}
	for _, k := range tr.Posts[:3] {
		ch, _, err := events.ParsePostKey(k)
		if err != nil {
			t.Fatal(err)
		}
		chans[ch.String()] = true
	}
	if len(chans) != 3 {
		t.Errorf("samples %v do not start with one post per channel", tr.Posts)
	}
	// Past the cooldown, a new burst is a new trend.
	again := observeAll(m, burst("x", t0.Add(3*time.Hour), 40*time.Minute, 15, 1, 2, 3))
	if len(again) != 1 {
		t.Errorf("a burst after the cooldown: %d trends, want 1", len(again))
	}
}

func TestBurstInTwoChannelsIsNoTrend(t *testing.T) {
	m := machine(t, trends.Config{})
	observeAll(m, background(t0))
	if got := observeAll(m, burst("x", t0, 40*time.Minute, 30, 1, 2)); len(got) != 0 {
		t.Errorf("two channels made %d trends", len(got))
	}
}

func TestHighBaselineIsNoTrend(t *testing.T) {
	m := machine(t, trends.Config{})
	// Tag y is posted 12 times an hour all day in three channels: 12 in an hour is normal.
	var facts []*events.PostTagged
	for at := t0.Add(-24 * time.Hour); at.Before(t0.Add(time.Hour)); at = at.Add(5 * time.Minute) {
		facts = append(facts, tagged(events.ChannelID(1+at.Minute()/5%3), at, "y"))
	}
	got := observeAll(m, facts)
	// Only the first hour, before any baseline exists, may report it.
	for _, tr := range got {
		if tr.WindowEnd.After(t0.Add(-22 * time.Hour)) {
			t.Errorf("a steady tag trends at %s (score %.2f, expected %.1f)", tr.WindowEnd, tr.Score, tr.Expected)
		}
	}
}

// TestBaselineIsTheLastDay: posts of a tag more than 24 h before a window do not raise its
// baseline, even while the machine still holds them.
func TestBaselineIsTheLastDay(t *testing.T) {
	m := machine(t, trends.Config{})
	observeAll(m, background(t0))
	observeAll(m, burst("x", t0.Add(-25*time.Hour), 50*time.Minute, 60, 1, 2, 3))
	got := observeAll(m, burst("x", t0, 40*time.Minute, 15, 1, 2, 3))
	if len(got) != 1 || got[0].Expected >= 1 {
		t.Fatalf("%d trends, want 1 expecting under one post: a busy hour 25 h ago is outside the baseline", len(got))
	}
}

func TestRetagReplacesNeverDoubleCounts(t *testing.T) {
	m := machine(t, trends.Config{})
	observeAll(m, background(t0))
	posts := burst("x", t0, 20*time.Minute, 4, 1, 2, 3) // one short of MinCount
	observeAll(m, posts)
	for _, p := range posts {
		if got := m.Observe(retag(p, 1, "x", "z")); len(got) != 0 {
			t.Fatalf("a retag counted again: %v", tagsOf(got))
		}
	}
	// An older revision arriving late changes nothing (were it taken, x would lose a post).
	if got := m.Observe(retag(posts[0], 0, "other")); len(got) != 0 {
		t.Fatalf("a stale revision: %v", tagsOf(got))
	}
	got := m.Observe(tagged(3, t0.Add(25*time.Minute), "x"))
	if len(got) != 1 || got[0].Count != 5 {
		t.Fatalf("the fifth post: %+v, want one trend of count 5", got)
	}
	// A retag that drops the tag takes the post out of the window.
	m2 := machine(t, trends.Config{})
	observeAll(m2, background(t0))
	posts = burst("w", t0, 20*time.Minute, 6, 1, 2, 3)
	observeAll(m2, posts[:4])
	m2.Observe(retag(posts[0], 1, "other"))
	if got := m2.Observe(posts[4]); len(got) != 0 {
		t.Errorf("a post retagged away still counted: %+v", got[0])
	}
	if got := m2.Observe(posts[5]); len(got) != 1 || got[0].Count != 5 {
		t.Errorf("the sixth post: %+v, want one trend of count 5", got)
	}
}

func TestOutOfOrderEventTimes(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	m := machine(t, trends.Config{})
	observeAll(m, background(t0))
	b := burst("x", t0, 40*time.Minute, 15, 1, 2, 3)
	rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	got := observeAll(m, b)
	if len(got) != 1 {
		t.Fatalf("a shuffled burst: %d trends, want 1", len(got))
	}
	// Posts older than LateLimit plus a day behind the watermark cannot count in a window
	// still evaluated; one a little late still does.
	late := m.Late()
	for _, p := range burst("old", t0.Add(-30*time.Hour), 30*time.Minute, 10, 1, 2, 3) {
		if got := m.Observe(p); len(got) != 0 {
			t.Fatalf("a post 30 h late made a trend")
		}
	}
	if m.Late() != late+10 {
		t.Errorf("late %d, want %d", m.Late(), late+10)
	}
	wm := m.Watermark()
	got = observeAll(m, burst("recent", wm.Add(-90*time.Minute), 30*time.Minute, 10, 4, 5, 6))
	if len(got) != 1 || got[0].WindowEnd.After(wm) {
		t.Errorf("a burst 90 min behind the watermark: %+v, want one trend in its own window", got)
	}
}

func TestSameFactsSameTrends(t *testing.T) {
	facts := scenario(t, 7)
	a, b := machine(t, trends.Config{}), machine(t, trends.Config{})
	ta, tb := observeAll(a, facts), observeAll(b, facts)
	if len(ta) == 0 {
		t.Fatal("the scenario has no trend")
	}
	if !reflect.DeepEqual(ta, tb) {
		t.Error("two machines fed the same facts disagree")
	}
	for i := range ta {
		if trends.Event(ta[i]).ID != trends.Event(tb[i]).ID {
			t.Error("ids differ")
		}
	}
}

// timed is a fact and when the log stored it (its post date plus the pipeline's lag).
type timed struct {
	fact   *events.PostTagged
	logged time.Time
}

// scenario is three days of posts in log order: background tags, bursts in three and in
// two channels, retags, and lags that put some posts behind others (a few beyond the late
// limit).
func scenario(t *testing.T, seed uint64) []*events.PostTagged {
	var out []*events.PostTagged
	for _, f := range scenarioTimed(t, seed) {
		out = append(out, f.fact)
	}
	return out
}

func scenarioTimed(t *testing.T, seed uint64) []timed {
	t.Helper()
	t.Logf("scenario seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	var facts []timed
	add := func(p *events.PostTagged) {
		lag := time.Duration(rng.IntN(20)) * time.Minute
		if rng.IntN(50) == 0 {
			lag = time.Duration(1+rng.IntN(5)) * time.Hour // a lagging channel
		}
		facts = append(facts, timed{p, p.PostedAt.Add(lag)})
		if rng.IntN(10) == 0 { // a vision retag a little later
			facts = append(facts, timed{retag(p, 1, p.Tags[0].Name, "v"), p.PostedAt.Add(lag + 3*time.Minute)})
		}
	}
	tags := []string{"a", "b", "c", "d"}
	start := t0.Add(-72 * time.Hour)
	for at := start; at.Before(t0); at = at.Add(time.Duration(3+rng.IntN(10)) * time.Minute) {
		add(tagged(events.ChannelID(1+rng.IntN(6)), at, tags[rng.IntN(len(tags))]))
	}
	for range 14 {
		at := start.Add(time.Duration(rng.IntN(70)) * time.Hour)
		tag := fmt.Sprint("burst", rng.IntN(3))
		chans := []events.ChannelID{1, 2, 3}
		if rng.IntN(3) == 0 {
			chans = chans[:2]
		}
		for _, p := range burst(tag, at, 45*time.Minute, 8+rng.IntN(10), chans...) {
			add(p)
		}
	}
	slices.SortStableFunc(facts, func(a, b timed) int { return a.logged.Compare(b.logged) })
	return facts
}

// TestColdStartMatchesLongRunning restarts at several points of the scenario: a machine
// restored from what the log holds since the replay start (the facts, and the trends the
// long-running machine published) then finds exactly the trends the long-running machine
// finds.
func TestColdStartMatchesLongRunning(t *testing.T) {
	seed := rand.Uint64()
	facts := scenarioTimed(t, seed)
	live := machine(t, trends.Config{})
	type found struct {
		tr     *events.TrendDetected
		logged time.Time
		at     int // index of the fact that revealed it
	}
	var all []found
	for i, f := range facts {
		for _, tr := range live.Observe(f.fact) {
			all = append(all, found{tr, f.logged, i})
		}
	}
	if len(all) < 3 {
		t.Fatalf("the scenario has %d trends; too few to compare", len(all))
	}
	t.Logf("%d facts, %d trends, %d too late", len(facts), len(all), live.Late())
	compared := 0
	defer func() {
		if compared == 0 {
			t.Error("no trend after any restart point: nothing was compared")
		}
	}()
	// Restart points: spread over the scenario, and just after a trend was found (its
	// burst goes on: only the cooldown restored from the log holds it).
	restarts := []int{len(facts) / 3, len(facts) / 2, 2 * len(facts) / 3, len(facts) - 10}
	for _, x := range all {
		restarts = append(restarts, x.at+1)
	}
	for _, restart := range restarts {
		cold := machine(t, trends.Config{})
		now := facts[restart].logged
		newest := now
		// The newest post date on the log (the last fact's), as ReplayStart reads it.
		if d := facts[restart-1].fact.PostedAt; d.Before(newest) {
			newest = d
		}
		from := newest.Add(-cold.Lookback())
		for _, f := range facts[:restart] {
			if !f.logged.Before(from) {
				cold.Restore(f.fact)
			}
		}
		for _, x := range all {
			if x.at < restart && !x.logged.Before(from) {
				cold.Fired(x.tr)
			}
		}
		var want, got []*events.TrendDetected
		for _, x := range all {
			if x.at >= restart {
				want = append(want, x.tr)
			}
		}
		for _, f := range facts[restart:] {
			got = append(got, cold.Observe(f.fact)...)
		}
		compared += len(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("restart at fact %d of %d: cold start found %v, long-running %v", restart, len(facts), tagsOf(got), tagsOf(want))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  trends.Config
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "cooldown not a bucket multiple", cfg: trends.Config{Cooldown: 7 * time.Minute}},
		{name: "too many samples", cfg: trends.Config{MaxSamples: 6}},
		{name: "negative late limit", cfg: trends.Config{LateLimit: -time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := trends.NewMachine(tc.cfg); (err == nil) != tc.ok {
				t.Errorf("NewMachine: %v", err)
			}
		})
	}
}
