package use

import (
	"math/rand/v2"
	"syscall"
	"testing"
)

// BenchmarkGemm reports GFLOP/s of the widest CNN matmul (256 tokens, 1280 → 256).
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, n, k := 256, 256, 1280
	a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	pw := pack(w, k, n)
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		gemm(m, a, k, &pw, c, n)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		b.Fatal(err)
	}
	cpu := float64(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) / 1e9
	flops := 2 * float64(m*n*k) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
}
