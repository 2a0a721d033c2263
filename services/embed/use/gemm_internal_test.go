package use

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmKernels compares every gemm path (AVX-512, AVX2, portable Go) with a naive
// triple loop, on shapes with row remainders (8-, 4- and 1-row blocks), strided operands
// and accumulation into C.
func TestGemmKernels(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	saved512, savedAsm := useAVX512, useAsm
	t.Cleanup(func() { useAVX512, useAsm = saved512, savedAsm })
	paths := []struct {
		name         string
		avx512, avx2 bool
	}{
		{"avx512", true, true},
		{"avx2", false, true},
		{"portable", false, false},
	}
	shapes := []struct{ m, n, k int }{{1, 32, 1}, {4, 32, 3}, {7, 64, 13}, {13, 320, 40}, {8, 96, 5}, {23, 256, 17}}
	for _, p := range paths {
		if (p.avx512 && !saved512) || (p.avx2 && !savedAsm) {
			t.Logf("%s: not supported by this CPU, skipped", p.name)
			continue
		}
		useAVX512, useAsm = p.avx512, p.avx2
		for _, s := range shapes {
			lda, ldb, ldc := s.k+3, s.n, s.n+5
			a := randSlice(rng, s.m*lda)
			b := randSlice(rng, s.k*ldb)
			pb := pack(b, s.k, s.n)
			c := randSlice(rng, s.m*ldc)
			want := append([]float32(nil), c...)
			for i := range s.m {
				for j := range s.n {
					var sum float64
					for p := range s.k {
						sum += float64(a[i*lda+p]) * float64(b[p*ldb+j])
					}
					want[i*ldc+j] += float32(sum)
				}
			}
			gemm(s.m, a, lda, &pb, c, ldc)
			for i := range c {
				if math.Abs(float64(c[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s %+v: c[%d] = %v, want %v", p.name, s, i, c[i], want[i])
				}
			}
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}
