package use

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestVecKernels compares the AVX-512 element-wise helpers with their Go loops.
func TestVecKernels(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this CPU: only the Go loops run")
	}
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	saved := useAVX512
	t.Cleanup(func() { useAVX512 = saved })
	both := func(f func() []float32) (asm, golang []float32) {
		useAVX512 = true
		asm = f()
		useAVX512 = false
		golang = f()
		useAVX512 = saved
		return asm, golang
	}
	for _, n := range []int{16, 256, 768, 1280} {
		a, b, g := randSlice(rng, n), randSlice(rng, n), randSlice(rng, n)
		q := make([]uint8, n)
		for i := range q {
			q[i] = uint8(rng.IntN(64))
		}
		cases := []struct {
			name string
			f    func() []float32
			tol  float64
		}{
			{"add", func() []float32 { d := slices.Clone(a); add(d, b); return d }, 0},
			{"reluAdd", func() []float32 { d := slices.Clone(a); reluAdd(d, b); return d }, 0},
			{"dequant", func() []float32 { d := make([]float32, n); dequant(d, q, 0.0123, -0.39); return d }, 1e-6},
			{"layerNorm", func() []float32 { d := slices.Clone(a); layerNorm(d, g, b, 1e-6); return d }, 1e-4},
		}
		for _, c := range cases {
			x, y := both(c.f)
			for i := range x {
				if d := math.Abs(float64(x[i] - y[i])); d > c.tol*(1+math.Abs(float64(y[i]))) {
					t.Fatalf("%s n=%d: [%d] asm %v, Go %v", c.name, n, i, x[i], y[i])
				}
			}
		}
	}
}
