// Package hashing is the lexical embedder: feature hashing of a text's words, word pairs and
// character n-grams into a fixed number of dimensions. It needs no model and no network, and
// it only sees surface forms (Info().Lexical is true): two texts are close when they share
// words or word parts, never because they mean the same thing. It is the fallback when the
// multilingual model is absent, always labelled as such.
//
// A text is read with the rule of package textnorm (NFC, lower case, ё → е; URLs, mentions and
// numbers dropped; stop words dropped). Its features, each counted within the text:
//
//   - words as their Snowball stems (textnorm.Stem; hashtags included, '#' stripped), so
//     that inflected forms (итератор, итераторы) are one feature;
//   - pairs of consecutive stems;
//   - character n-grams of 3 to 5 runes of each word framed as "<word>", which let inflected
//     related words (хоккей, хоккеисты) and compounds share some of their features.
//
// Each feature is hashed with xxhash64 (mixed with its kind) to a dimension and a sign (signed
// hashing keeps collisions from adding up); its value is 1+ln(count) (sublinear tf). Each kind
// forms its own L2-normalised block, the blocks are added with fixed weights and the sum is
// L2-normalised. The result is deterministic across processes and platforms: the same text
// gives the same vector, bit for bit.
//
// A text without any word maps to one fixed unit vector (the vector of the empty text), so
// every output is normalised and empty texts are close only to each other.
package hashing

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing/textnorm"
)

// Identity of the vector space. Version changes whenever the same text could map to a
// different vector (features, weights, hashing, normalisation).
const (
	Name       = "hashing"
	Model      = "hashing-v1"
	Version    = "1"
	DefaultDim = 256
	// MaxDim bounds the dimension (a vector of 64 Ki float32 is already 256 KiB per post).
	MaxDim = 1 << 16
)

// Block weights: words carry most of the meaning, n-grams bridge inflections, pairs reward
// shared phrases.
const (
	weightWords   = 1.0
	weightPairs   = 0.5
	weightNgrams  = 0.5
	minNgram      = 3
	maxNgram      = 5
	seedWord      = 0x9e3779b97f4a7c15
	seedPair      = 0xc2b2ae3d27d4eb4f
	seedNgram     = 0x165667b19e3779f9
	emptyFeature  = "\x00tgflow-hashing-empty"
	checkCtxEvery = 64
)

// Config of the embedder.
type Config struct {
	// Dim is the vector dimension; 0 means DefaultDim.
	Dim int
}

// Embedder is the hashing embedder. It is safe for concurrent use.
type Embedder struct {
	dim int
	// mask is dim-1 when dim is a power of two (the remainder of a division by dim), else 0.
	mask uint64
	pool sync.Pool // *scratch
}

// New returns a hashing embedder of cfg.Dim dimensions.
func New(cfg Config) (*Embedder, error) {
	if cfg.Dim == 0 {
		cfg.Dim = DefaultDim
	}
	if cfg.Dim < 2 || cfg.Dim > MaxDim {
		return nil, fmt.Errorf("hashing: dimension %d is outside [2, %d]", cfg.Dim, MaxDim)
	}
	e := &Embedder{dim: cfg.Dim}
	if cfg.Dim&(cfg.Dim-1) == 0 {
		e.mask = uint64(cfg.Dim - 1)
	}
	e.pool.New = func() any { return &scratch{block: make([]float64, cfg.Dim), sum: make([]float64, cfg.Dim)} }
	return e, nil
}

// Info names the vector space.
func (e *Embedder) Info() embed.Info {
	return embed.Info{Name: Name, Model: Model, Version: Version, Dim: e.dim, Lexical: true}
}

// Embed returns one L2-normalised vector per text, in order. It only fails when ctx is done.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	backing := make([]float32, len(texts)*e.dim)
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	for i, t := range texts {
		if i%checkCtxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("hashing: %w", err)
			}
		}
		out[i] = backing[i*e.dim : (i+1)*e.dim : (i+1)*e.dim]
		e.vector(s, t, out[i])
	}
	return out, nil
}

// Vector returns the vector of one text.
func (e *Embedder) Vector(text string) []float32 {
	v := make([]float32, e.dim)
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	e.vector(s, text, v)
	return v
}

// scratch is the per-call working memory, pooled so that embedding allocates only its output.
type scratch struct {
	tokens []textnorm.Token
	words  []uint64
	pairs  []uint64
	ngrams []uint64
	framed []byte
	bounds []int
	// addGrouped's: group starts per dimension, each feature's dimension, features grouped.
	starts  []int
	dims    []int
	grouped []uint64
	block   []float64
	sum     []float64
}

func (e *Embedder) vector(s *scratch, text string, dst []float32) {
	s.tokens = textnorm.AppendTokens(s.tokens[:0], text)
	s.words, s.pairs, s.ngrams = s.words[:0], s.pairs[:0], s.ngrams[:0]
	var prev uint64
	havePrev := false
	for _, tok := range s.tokens {
		if textnorm.IsStop(tok.Text) {
			havePrev = false
			continue
		}
		h := xxhash.Sum64String(textnorm.Stem(tok))
		s.words = append(s.words, mix(h^seedWord))
		if havePrev {
			s.pairs = append(s.pairs, mix(prev*0x100000001b3^h^seedPair))
		}
		prev, havePrev = h, true
		s.appendNgrams(tok.Text)
	}
	clear(s.sum)
	if len(s.words) == 0 {
		s.words = append(s.words, mix(xxhash.Sum64String(emptyFeature)^seedWord))
	}
	e.addBlock(s, s.words, weightWords)
	e.addBlock(s, s.pairs, weightPairs)
	e.addBlock(s, s.ngrams, weightNgrams)
	var norm float64
	for _, x := range s.sum {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		// Every feature cancelled out by signed collisions: keep the output normalised with
		// the one dimension the first word chose.
		h := s.words[0]
		dst[h%uint64(e.dim)] = 1
		return
	}
	for i, x := range s.sum {
		dst[i] = float32(x / norm)
	}
}

// appendNgrams adds the character n-grams of "<word>".
func (s *scratch) appendNgrams(word string) {
	s.framed = append(append(append(s.framed[:0], '<'), word...), '>')
	s.bounds = s.bounds[:0]
	for i := range string(s.framed) {
		s.bounds = append(s.bounds, i)
	}
	s.bounds = append(s.bounds, len(s.framed))
	runes := len(s.bounds) - 1
	for n := minNgram; n <= maxNgram && n <= runes; n++ {
		for i := 0; i+n <= runes; i++ {
			s.ngrams = append(s.ngrams, mix(xxhash.Sum64(s.framed[s.bounds[i]:s.bounds[i+n]])^seedNgram^uint64(n)))
		}
	}
}

// addBlock counts equal features (sorted runs), gives each 1+ln(count) with its hashed sign,
// L2-normalises the block and adds it to the sum with weight w.
//
// A dimension's value is the sum of its features' values in increasing order of the features
// (the order of a sorted run, which fixes the rounding): rather than sorting all the
// features, addBlock groups them by dimension (a counting sort) and sorts each group, a few
// features each, unless the dimensions outnumber the features by far.
func (e *Embedder) addBlock(s *scratch, feats []uint64, w float64) {
	if len(feats) == 0 {
		return
	}
	clear(s.block)
	if e.dim > bucketRatio*len(feats) {
		slices.Sort(feats)
		for i := 0; i < len(feats); {
			v, j := run(feats, i)
			s.block[e.dimOf(feats[i])] += v
			i = j
		}
	} else {
		e.addGrouped(s, feats)
	}
	var norm float64
	for _, x := range s.block {
		norm += x * x
	}
	if norm == 0 {
		return
	}
	k := w / math.Sqrt(norm)
	for i, x := range s.block {
		s.sum[i] += x * k
	}
}

// bucketRatio: addBlock sorts the features of a block at once when the dimensions are more
// than this many times as many (grouping them would mostly visit empty dimensions).
const bucketRatio = 8

// addGrouped writes the block of feats grouped by dimension, each group sorted.
func (e *Embedder) addGrouped(s *scratch, feats []uint64) {
	dim := e.dim
	s.starts = slices.Grow(s.starts[:0], dim+1)[:dim+1]
	s.dims = slices.Grow(s.dims[:0], len(feats))[:len(feats)]
	s.grouped = slices.Grow(s.grouped[:0], len(feats))[:len(feats)]
	starts, dims, grouped := s.starts, s.dims, s.grouped
	clear(starts)
	for i, h := range feats {
		d := e.dimOf(h)
		dims[i] = d
		starts[d+1]++
	}
	for d := 1; d <= dim; d++ {
		starts[d] += starts[d-1]
	}
	// starts[d] is where group d begins; filling it moves starts[d] to where group d+1 begins.
	for i, h := range feats {
		d := dims[i]
		grouped[starts[d]] = h
		starts[d]++
	}
	from := 0
	for d, to := range starts[:dim] {
		if to-from == 1 {
			s.block[d], _ = run(grouped, from)
		} else if to > from {
			g := grouped[from:to]
			sortGroup(g)
			var acc float64
			for i := 0; i < len(g); {
				v, j := run(g, i)
				acc += v
				i = j
			}
			s.block[d] = acc
		}
		from = to
	}
}

// sortGroup sorts one dimension's features: an insertion sort for the usual few, which
// costs less than slices.Sort's setup.
func sortGroup(g []uint64) {
	if len(g) > 12 {
		slices.Sort(g)
		return
	}
	for i := 1; i < len(g); i++ {
		for k := i; k > 0 && g[k] < g[k-1]; k-- {
			g[k], g[k-1] = g[k-1], g[k]
		}
	}
}

// run reads the run of features equal to feats[i]: its value (1+ln(count), signed by the
// feature's top bit) and where the next run starts.
func run(feats []uint64, i int) (float64, int) {
	h := feats[i]
	j := i + 1
	for j < len(feats) && feats[j] == h {
		j++
	}
	v := tf(j - i)
	if h>>63 == 1 {
		v = -v
	}
	return v, j
}

// dimOf is a feature's dimension (its top bit is its sign).
func (e *Embedder) dimOf(h uint64) int {
	if e.mask != 0 {
		return int(h & e.mask)
	}
	return int((h & (1<<63 - 1)) % uint64(e.dim))
}

// tf is a feature's value for count occurrences, 1+ln(count), read from a table for the
// usual counts.
func tf(count int) float64 {
	if count < len(tfTable) {
		return tfTable[count]
	}
	return 1 + math.Log(float64(count))
}

var tfTable = func() (t [64]float64) {
	for c := range t {
		t[c] = 1 + math.Log(float64(c))
	}
	return t
}()

// mix is the splitmix64 finaliser: it spreads a combined hash over all 64 bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

var _ embed.Embedder = (*Embedder)(nil)
