package use

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkGemm reports GFLOP/s of the widest CNN matmul (256 tokens, 1280 → 256).
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, n, k := 256, 256, 1280
	a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	pw := pack(w, k, n)
	for b.Loop() {
		gemm(m, a, k, &pw, c, n)
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
