package tagger

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/tgflow/tgflow/services/embed"
)

// Topic is one entry of the topic list: a post is about it when its embedding is close to the
// topic's description in Russian or in English. Under a lexical embedder the descriptions are
// what a post must share words with, so they are lists of the words such posts use.
type Topic struct {
	Name string `json:"name"`
	RU   string `json:"ru"`
	EN   string `json:"en"`
}

//go:embed topics.json
var defaultTopics []byte

// DefaultTopics is the shipped list of 30 topics (topics.json).
func DefaultTopics() ([]Topic, error) { return LoadTopics(bytes.NewReader(defaultTopics)) }

// LoadTopics reads a topic list: a JSON array of {"name", "ru", "en"}.
func LoadTopics(r io.Reader) ([]Topic, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var topics []Topic
	if err := dec.Decode(&topics); err != nil {
		return nil, fmt.Errorf("%w: topics: %w", ErrConfig, err)
	}
	if err := validateTopics(topics); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return topics, nil
}

func validateTopics(topics []Topic) error {
	var errs []error
	seen := make(map[string]bool, len(topics))
	for i, t := range topics {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("topics[%d]: name is empty", i))
		case NormalizeTag(t.Name) != t.Name:
			errs = append(errs, fmt.Errorf("topics[%d]: name %q is not normalised (want %q)", i, t.Name, NormalizeTag(t.Name)))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("topics[%d]: name %q is repeated", i, t.Name))
		}
		seen[t.Name] = true
		if t.RU == "" && t.EN == "" {
			errs = append(errs, fmt.Errorf("topics[%d] %q: no description", i, t.Name))
		}
	}
	return errors.Join(errs...)
}

// topicIndex holds each topic's description vectors (ru and en).
type topicIndex struct {
	names   []string
	vectors [][][]float32 // per topic: one vector per description
	// byDim is the description vectors transposed: byDim[k*len(owner)+j] is dimension k of
	// description j, whose topic is owner[j]. A post's dot products then read one short
	// contiguous row per non-zero dimension of its vector instead of one scattered element
	// of every description vector (the topics are matched for every post).
	byDim []float32
	owner []int
}

func buildTopicIndex(ctx context.Context, emb embed.Embedder, topics []Topic) (*topicIndex, error) {
	idx := &topicIndex{names: make([]string, len(topics)), vectors: make([][][]float32, len(topics))}
	var texts []string
	var owner []int
	for i, t := range topics {
		idx.names[i] = t.Name
		for _, d := range []string{t.RU, t.EN} {
			if d != "" {
				texts = append(texts, d)
				owner = append(owner, i)
			}
		}
	}
	if len(texts) == 0 {
		return idx, nil
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("tagger: embed topic descriptions: %w", err)
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("tagger: embedder returned %d vectors for %d topic descriptions", len(vecs), len(texts))
	}
	dim := emb.Info().Dim
	for k, v := range vecs {
		if len(v) != dim {
			return nil, fmt.Errorf("tagger: topic vector of dimension %d, embedder says %d", len(v), dim)
		}
		idx.vectors[owner[k]] = append(idx.vectors[owner[k]], v)
	}
	idx.owner = owner
	idx.byDim = make([]float32, dim*len(vecs))
	for j, v := range vecs {
		for k, x := range v {
			idx.byDim[k*len(vecs)+j] = x
		}
	}
	return idx, nil
}

// scored is a topic and its similarity.
type scored struct {
	name string
	sim  float64
}

// match returns the topics of vector v: similarity at least threshold and at least cut times
// the best, best first, at most max.
func (idx *topicIndex) match(v []float32, threshold, cut float64, max int) []scored {
	// Lexical vectors are sparse: dot products over v's non-zero entries only, in
	// ascending dimension order for every description (the sums are those of a plain loop).
	n := len(idx.owner)
	dots := make([]float64, n)
	for k, x := range v {
		if x == 0 {
			continue
		}
		xf := float64(x)
		row := idx.byDim[k*n : (k+1)*n : (k+1)*n]
		for j, t := range row {
			dots[j] += xf * float64(t)
		}
	}
	best := make([]float64, len(idx.names))
	for i := range best {
		best[i] = -2
	}
	for j, d := range dots {
		best[idx.owner[j]] = math.Max(best[idx.owner[j]], d)
	}
	var out []scored
	for i, b := range best {
		if len(idx.vectors[i]) > 0 && b >= threshold {
			out = append(out, scored{idx.names[i], b})
		}
	}
	slices.SortFunc(out, func(a, b scored) int {
		if c := cmp.Compare(b.sim, a.sim); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	for k, s := range out {
		if k >= max || s.sim < cut*out[0].sim {
			return out[:k]
		}
	}
	return out
}
