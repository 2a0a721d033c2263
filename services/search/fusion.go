package search

import (
	"sort"
	"strings"
)

// RRFK is the k of reciprocal rank fusion: a post ranked r by a backend earns 1/(k+r).
// 60 is the value of Cormack, Clarke and Büttcher (SIGIR 2009), who found it robust across
// collections; it keeps one backend's top hit from drowning posts both backends agree on.
const RRFK = 60

// Ranked is one backend's answer, best first.
type Ranked struct {
	Backend string
	Hits    []Hit
}

// Fuse merges ranked lists by reciprocal rank fusion: a post's score is the sum over the
// lists that hold it of 1/(RRFK + rank), rank from 1. Ties are broken by the best single
// rank, then by the newer post, then by the post key, so the order is deterministic. A
// post's fields come from the first list that holds it (callers pass the list with the
// richest rows first); Backend names every list that found it, joined by "+", in the order
// given; Ranks records each rank.
//
// With a single non-empty list Fuse keeps that backend's own scores and order: there is
// nothing to fuse.
func Fuse(lists ...Ranked) []Hit {
	var nonEmpty []Ranked
	for _, l := range lists {
		if len(l.Hits) > 0 {
			nonEmpty = append(nonEmpty, l)
		}
	}
	if len(nonEmpty) == 1 {
		out := make([]Hit, 0, len(nonEmpty[0].Hits))
		seen := map[string]bool{}
		for i, h := range nonEmpty[0].Hits {
			if seen[h.Key()] {
				continue
			}
			seen[h.Key()] = true
			h.Backend = nonEmpty[0].Backend
			h.Ranks = map[string]int{nonEmpty[0].Backend: i + 1}
			out = append(out, h)
		}
		return out
	}
	type acc struct {
		hit      Hit
		score    float64
		best     int
		backends []string
	}
	byKey := map[string]*acc{}
	var order []string
	for _, l := range nonEmpty {
		for i, h := range l.Hits {
			k := h.Key()
			a, ok := byKey[k]
			if !ok {
				a = &acc{hit: h, best: i + 1}
				a.hit.Ranks = map[string]int{}
				byKey[k] = a
				order = append(order, k)
			} else {
				a.hit = fill(a.hit, h)
			}
			if _, dup := a.hit.Ranks[l.Backend]; dup {
				continue // a backend listing a post twice counts its best rank once
			}
			a.hit.Ranks[l.Backend] = i + 1
			a.score += 1 / float64(RRFK+i+1)
			a.best = min(a.best, i+1)
			a.backends = append(a.backends, l.Backend)
		}
	}
	out := make([]*acc, 0, len(order))
	for _, k := range order {
		out = append(out, byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.score != b.score {
			return a.score > b.score
		}
		if a.best != b.best {
			return a.best < b.best
		}
		if !a.hit.Date.Equal(b.hit.Date) {
			return a.hit.Date.After(b.hit.Date)
		}
		return a.hit.Key() < b.hit.Key()
	})
	hits := make([]Hit, len(out))
	for i, a := range out {
		h := a.hit
		h.Score = a.score
		h.Backend = strings.Join(a.backends, "+")
		hits[i] = h
	}
	return hits
}

// fill completes a's empty fields from b (the same post seen by another backend).
func fill(a, b Hit) Hit {
	if a.ChannelTitle == "" {
		a.ChannelTitle = b.ChannelTitle
	}
	if a.ChannelUsername == "" {
		a.ChannelUsername = b.ChannelUsername
	}
	if a.Date.IsZero() {
		a.Date = b.Date
	}
	if a.text == "" {
		a.text = b.text
	}
	if len(a.Tags) == 0 {
		a.Tags = b.Tags
	}
	if len(a.Topics) == 0 {
		a.Topics = b.Topics
	}
	return a
}
