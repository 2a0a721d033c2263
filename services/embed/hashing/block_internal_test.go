package hashing

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// sortedBlock is the block as the definition computes it: features sorted, each run of equal
// features adding its signed 1+ln(count) to its dimension, in that order.
func sortedBlock(dim int, feats []uint64) []float64 {
	feats = slices.Sorted(slices.Values(feats))
	block := make([]float64, dim)
	for i := 0; i < len(feats); {
		j := i + 1
		for j < len(feats) && feats[j] == feats[i] {
			j++
		}
		v := 1 + math.Log(float64(j-i))
		if feats[i]>>63 == 1 {
			v = -v
		}
		block[(feats[i]&(1<<63-1))%uint64(dim)] += v
		i = j
	}
	return block
}

// addBlock groups features by dimension instead of sorting them all (and reads 1+ln(count)
// from a table): each dimension must still add its features' values in the order of the
// sorted features, to the bit, or vectors would change. Repeated features with counts of
// several sizes make the order matter.
func TestAddBlockAddsInSortedOrder(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, dim := range []int{2, 3, 16, 17, 256, 1000, 1024, 4096} {
		e, err := New(Config{Dim: dim})
		if err != nil {
			t.Fatal(err)
		}
		s := e.pool.Get().(*scratch)
		for range 60 {
			var feats []uint64
			distinct := 1 + rng.IntN(400)
			for range distinct {
				h := mix(rng.Uint64())
				for range 1 + rng.IntN(1+rng.IntN(40)) {
					feats = append(feats, h)
				}
			}
			rng.Shuffle(len(feats), func(i, j int) { feats[i], feats[j] = feats[j], feats[i] })
			want := sortedBlock(dim, feats)
			clear(s.sum)
			e.addBlock(s, slices.Clone(feats), 1)
			for d := range want {
				if math.Float64bits(s.block[d]) != math.Float64bits(want[d]) {
					t.Fatalf("dim %d, %d features: block[%d] = %v, sorted order gives %v", dim, len(feats), d, s.block[d], want[d])
				}
			}
		}
	}
}
