package neo4j_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/neo4j"
)

// relatedGraph is a small graph around post 71/1 (tags go and release, page go.dev/blog/x,
// image a):
//
//	71/4  same image a, tags go and release    3+1+1 = 5
//	72/2  tag go, the same page (and another)  1+3   = 4
//	72/3  image b, a near-duplicate of a       3
//	71/5  tag go, another page on go.dev       1+1   = 2
//	72/6  tag release, posted later than 71/7  1
//	71/7  tag go                               1
//	72/8  tag go, deleted                      (never listed)
//	72/9  tag python                           (not related)
func relatedGraph(t *testing.T) {
	t.Helper()
	const a, b = events.ChannelID(71), events.ChannelID(72)
	post := func(ch events.ChannelID, msg int64, min int) events.Event {
		date := t0.Add(time.Duration(min) * time.Minute)
		return events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: pref(ch, msg), Date: date, Text: fmt.Sprintf("post %d/%d", ch, msg)}}, date, "0")
	}
	tags := func(ch events.ChannelID, msg int64, names ...string) events.Event {
		return taggedScored(ch, msg, events.Rev{}, names)
	}
	sub := events.New(events.ProducerCLI, &events.ChannelSubscribed{ChannelID: a, Username: "Gopher_News", At: t0}, t0)
	synced := events.New(events.ProducerIngest, &events.ChannelSynced{ChannelID: a, Username: "Gopher_News", Title: "Gopher News", StartedAt: t0, FinishedAt: t0}, t0, "1")
	facts := seq(sub, synced,
		post(a, 1, 1), post(a, 4, 4), post(b, 2, 2), post(b, 3, 3), post(a, 5, 5), post(b, 6, 9), post(a, 7, 7), post(b, 8, 8), post(b, 9, 9),
		tags(a, 1, "go", "release"), tags(a, 4, "go", "release"), tags(b, 2, "go"), tags(a, 5, "go"), tags(b, 6, "release"), tags(a, 7, "go"),
		tags(b, 8, "go"), tags(b, 9, "python"),
		enriched(a, 1, events.Rev{}, page("https://go.dev/blog/x", "go.dev", "X", 1)),
		// 72/2 also links another go.dev page: the shared page does not count the domain again.
		enriched(b, 2, events.Rev{}, page("https://go.dev/blog/x", "go.dev", "X", 1), page("https://go.dev/blog/w", "go.dev", "W", 1)),
		enriched(a, 5, events.Rev{}, page("https://go.dev/doc/y", "go.dev", "Y", 1), page("https://go.dev/doc/z", "go.dev", "Z", 1)),
		vision(a, 1, events.Rev{}, 1, img{sha: sha("a")}),
		vision(a, 4, events.Rev{}, 2, img{sha: sha("a")}),
		vision(b, 3, events.Rev{}, 3, img{sha: sha("b"), dupOf: sha("a"), dupRef: pref(a, 1), dist: 5}),
		deleted(b, 8),
	)
	p := newProjection(t, newDriver(t))
	apply(t, p, facts, len(facts))
}

// render is "key score [connections]" of each related post.
func render(rs []neo4j.RelatedPost) []string {
	var out []string
	for _, r := range rs {
		var cs []string
		for _, c := range r.Connections {
			cs = append(cs, c.String())
		}
		out = append(out, fmt.Sprintf("%s %d [%s]", r.Key, r.Score, strings.Join(cs, "; ")))
	}
	return out
}

func TestRelated(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	relatedGraph(t)
	imgA, imgB := "Image "+sha("a"), "Image "+sha("b")
	tests := []struct {
		name  string
		ch    events.ChannelID
		msg   int64
		limit int
		want  []string
	}{
		{
			name: "every kind of connection, ranked", ch: 71, msg: 1,
			want: []string{
				"71/4 5 [image: " + imgA + "; tag: Tag go; tag: Tag release]",
				"72/2 4 [page: Page https://go.dev/blog/x; tag: Tag go]",
				"72/3 3 [near_duplicate: " + imgA + " -> " + imgB + " (distance 5)]",
				"71/5 2 [domain: Page https://go.dev/blog/x -> Domain go.dev -> Page https://go.dev/doc/y; tag: Tag go]",
				"72/6 1 [tag: Tag release]",
				"71/7 1 [tag: Tag go]",
			},
		},
		{
			name: "the limit keeps the best", ch: 71, msg: 1, limit: 2,
			want: []string{
				"71/4 5 [image: " + imgA + "; tag: Tag go; tag: Tag release]",
				"72/2 4 [page: Page https://go.dev/blog/x; tag: Tag go]",
			},
		},
		{
			name: "a near-duplicate is found from either side", ch: 72, msg: 3,
			want: []string{
				"71/4 3 [near_duplicate: " + imgB + " -> " + imgA + " (distance 5)]",
				"71/1 3 [near_duplicate: " + imgB + " -> " + imgA + " (distance 5)]",
			},
		},
		{name: "nothing in common", ch: 72, msg: 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := neo4j.Related(ctx, d, "", tc.ch, tc.msg, tc.limit)
			if err != nil {
				t.Fatalf("Related: %v", err)
			}
			if r := render(got); !slices.Equal(r, tc.want) {
				t.Errorf("Related(%d/%d) =\n%s\nwant\n%s", tc.ch, tc.msg, strings.Join(r, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	t.Run("fields of a related post", func(t *testing.T) {
		got, err := neo4j.Related(ctx, d, "", 72, 2, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("Related(72/2) = %v, %v", got, err)
		}
		r := got[0]
		if r.Key != "71/1" || r.ChannelID != 71 || r.MessageID != 1 || r.ChannelUsername != "Gopher_News" || r.ChannelTitle != "Gopher News" ||
			r.Text != "post 71/1" || !r.PostedAt.Equal(t0.Add(time.Minute)) || !slices.Equal(r.Tags, []string{"go", "release"}) {
			t.Errorf("related post %+v", r)
		}
		if c := r.Connections[0]; c.Kind != neo4j.ConnPage || c.Weight != neo4j.Weights[neo4j.ConnPage] || len(c.Path) != 1 || c.Path[0].Label != "Page" {
			t.Errorf("first connection %+v", c)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			ch      events.ChannelID
			msg     int64
			limit   int
			wantErr error
		}{
			{"unknown post", 71, 999, 0, neo4j.ErrPostNotFound},
			{"deleted post", 72, 8, 0, neo4j.ErrPostDeleted},
			{"bad channel", 0, 1, 0, neo4j.ErrBadRelatedArgs},
			{"bad message", 71, 0, 0, neo4j.ErrBadRelatedArgs},
			{"negative limit", 71, 1, -1, neo4j.ErrBadRelatedArgs},
		} {
			if _, err := neo4j.Related(ctx, d, "", tc.ch, tc.msg, tc.limit); !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.wantErr)
			}
		}
	})

	t.Run("resolve channel", func(t *testing.T) {
		for _, name := range []string{"71", "-10071", "@gopher_news", "Gopher_News"} {
			if id, err := neo4j.ResolveChannel(ctx, d, "", name); err != nil || id != 71 {
				t.Errorf("ResolveChannel(%q) = %d, %v; want 71", name, id, err)
			}
		}
		if _, err := neo4j.ResolveChannel(ctx, d, "", "@nobody"); !errors.Is(err, neo4j.ErrChannelNotFound) {
			t.Errorf("ResolveChannel(@nobody): %v, want ErrChannelNotFound", err)
		}
	})
}

// TestRelatedFanOut: of the posts sharing a tag, only the newest RelatedFanOut count; an
// older one is still found through another connection, without the tag's.
func TestRelatedFanOut(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	const ch events.ChannelID = 81
	n := neo4j.RelatedFanOut + 2 // the asked post 1, post 2 just outside the fan-out, 1000 newer
	var es []events.Event
	for msg := int64(1); msg <= int64(n); msg++ {
		date := t0.Add(time.Duration(msg) * time.Minute)
		es = append(es, events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: pref(ch, msg), Date: date}}, date, "0"),
			taggedScored(ch, msg, events.Rev{}, []string{"common"}))
	}
	es = append(es, enriched(ch, 1, events.Rev{}, page("https://p.example/", "p.example", "P", 1)),
		enriched(ch, 2, events.Rev{}, page("https://p.example/", "p.example", "P", 1)))
	facts := seq(es...)
	p := newProjection(t, d)
	apply(t, p, facts, len(facts))
	got, err := neo4j.Related(ctx, d, "", ch, 1, neo4j.MaxRelatedLimit)
	if err != nil {
		t.Fatalf("Related: %v", err)
	}
	if len(got) != neo4j.MaxRelatedLimit {
		t.Fatalf("%d related posts, want %d", len(got), neo4j.MaxRelatedLimit)
	}
	if r := render(got[:2]); !slices.Equal(r, []string{"81/2 3 [page: Page https://p.example/]", fmt.Sprintf("81/%d 1 [tag: Tag common]", n)}) {
		t.Errorf("first related posts %v", r)
	}
}
