package hashing_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing"
)

func newEmbedder(t testing.TB, dim int) *hashing.Embedder {
	t.Helper()
	e, err := hashing.New(hashing.Config{Dim: dim})
	if err != nil {
		t.Fatalf("hashing.New(%d): %v", dim, err)
	}
	return e
}

func cosine(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func TestInfo(t *testing.T) {
	got := newEmbedder(t, 0).Info()
	want := embed.Info{Name: "hashing", Model: "hashing-v1", Version: "1", Dim: 256, Lexical: true}
	if got != want {
		t.Fatalf("Info() = %+v, want %+v", got, want)
	}
	if got := newEmbedder(t, 64).Info().Dim; got != 64 {
		t.Fatalf("Dim with Config{Dim: 64} = %d", got)
	}
}

func TestNewRejectsBadDimensions(t *testing.T) {
	for _, dim := range []int{-1, 1, hashing.MaxDim + 1} {
		if _, err := hashing.New(hashing.Config{Dim: dim}); err == nil {
			t.Errorf("New(Dim: %d) succeeded", dim)
		}
	}
}

func TestVectorsAreNormalised(t *testing.T) {
	texts := []struct{ name, text string }{
		{"russian", "Вышел Go 1.23: новые итераторы и улучшения стандартной библиотеки"},
		{"english", "The central bank raised interest rates by half a point"},
		{"empty", ""},
		{"spaces", "   \n\t "},
		{"numbers only", "1 2 3 4.5 2024"},
		{"stop words only", "и в на the of and"},
		{"url only", "https://example.com/a/b?c=d"},
		{"one letter", "a"},
		{"emoji", "🔥🔥🔥 👍"},
		{"long", longText(5000)},
	}
	for _, dim := range []int{2, 16, 256, 1024} {
		e := newEmbedder(t, dim)
		for _, tc := range texts {
			v := e.Vector(tc.text)
			if len(v) != dim {
				t.Fatalf("dim %d %s: len %d", dim, tc.name, len(v))
			}
			if n := norm(v); math.Abs(n-1) > 1e-5 {
				t.Errorf("dim %d %s: |v| = %v, want 1", dim, tc.name, n)
			}
			for i, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("dim %d %s: v[%d] = %v", dim, tc.name, i, x)
				}
			}
		}
	}
}

func longText(words int) string {
	base := []string{"рынок", "нефть", "market", "oil", "цена", "price", "доллар", "rate", "банк", "bank"}
	b := make([]byte, 0, words*8)
	for i := range words {
		b = append(b, base[i%len(base)]...)
		b = append(b, ' ')
	}
	return string(b)
}

func TestDeterministic(t *testing.T) {
	e := newEmbedder(t, 256)
	text := "Сбербанк снизил ставки по ипотеке #ипотека"
	first := e.Vector(text)
	// A second embedder (another process, in effect) and a batch give the same bits.
	other := newEmbedder(t, 256)
	batch, err := other.Embed(context.Background(), []string{"unrelated text first", text, text})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]float32{e.Vector(text), batch[1], batch[2]} {
		for i := range v {
			if v[i] != first[i] {
				t.Fatalf("vector differs at %d: %v vs %v", i, v[i], first[i])
			}
		}
	}
}

// TestGolden pins the vector space: if this fails, the same text now maps to another vector,
// and Version must change (a new vector space) before the golden values are updated.
func TestGolden(t *testing.T) {
	e := newEmbedder(t, 256)
	cases := []struct{ name, text, sha string }{
		{"russian", "Вышел Go 1.23: новые итераторы в стандартной библиотеке", "1c9ca57c741b35fc"},
		{"english", "Go 1.23 is released with range-over-func iterators", "8d68f9e90f7ab0ed"},
		{"empty", "", "8da212926202d9f6"},
	}
	for _, tc := range cases {
		h := sha256.New()
		for _, x := range e.Vector(tc.text) {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
			h.Write(b[:])
		}
		if got := hex.EncodeToString(h.Sum(nil))[:16]; got != tc.sha {
			t.Errorf("%s: vector sha256 prefix %s, want %s (bump hashing.Version if the change is intended)", tc.name, got, tc.sha)
		}
	}
}

func TestFoldingAndNoiseDoNotChangeTheVector(t *testing.T) {
	e := newEmbedder(t, 256)
	tests := []struct{ name, a, b string }{
		{"case", "Новые ИТЕРАТОРЫ в Go", "новые итераторы в go"},
		{"ё", "Ёлка и ёжик", "елка и ежик"},
		{"nfd", "йод", "и\u0306од"},
		{"url and mention", "новые итераторы https://go.dev/blog/x @golang_news", "новые итераторы"},
		{"numbers and punctuation", "новые, итераторы! 1.23 2024", "новые итераторы"},
		{"stop words", "новые и итераторы в", "новые итераторы"},
		{"hashtag", "#итераторы новые", "итераторы новые"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c := cosine(e.Vector(tc.a), e.Vector(tc.b)); c < 1-1e-6 {
				t.Fatalf("cos(%q, %q) = %v, want 1", tc.a, tc.b, c)
			}
		})
	}
}

func TestNearTextsAreCloserThanUnrelated(t *testing.T) {
	e := newEmbedder(t, 256)
	tests := []struct{ name, anchor, near, far string }{
		{
			"russian inflection",
			"Вышли новые итераторы в стандартной библиотеке Go",
			"Итератор в стандартную библиотеку языка Go добавили в новой версии",
			"Центробанк повысил ключевую ставку до шестнадцати процентов",
		},
		{
			"english paraphrase",
			"The central bank raised interest rates to fight inflation",
			"Interest rates were raised again by the central bank as inflation persists",
			"The football team won the championship final on penalties",
		},
		{
			"mixed scripts",
			"Компания OpenAI представила модель GPT-5 для программистов",
			"OpenAI показала GPT-5: модель пишет код для программистов",
			"В Москве ожидается снег и гололед на дорогах",
		},
		{
			"same topic, different words share word parts",
			"Хоккейный клуб выиграл матч плей-офф",
			"Хоккеисты клуба проиграли в матче плей-офф",
			"Правительство утвердило бюджет на следующий год",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, n, f := e.Vector(tc.anchor), e.Vector(tc.near), e.Vector(tc.far)
			near, far := cosine(a, n), cosine(a, f)
			t.Logf("near %.3f far %.3f", near, far)
			if near <= far+0.1 {
				t.Fatalf("near %.3f is not clearly above far %.3f", near, far)
			}
		})
	}
}

func TestEmptyTextsShareOneVector(t *testing.T) {
	e := newEmbedder(t, 256)
	empty := e.Vector("")
	for _, s := range []string{"  ", "123", "и в на", "🔥"} {
		if c := cosine(empty, e.Vector(s)); c < 1-1e-6 {
			t.Errorf("cos(empty, %q) = %v, want 1", s, c)
		}
	}
	if c := cosine(empty, e.Vector("новые итераторы")); math.Abs(c) > 0.5 {
		t.Errorf("the empty vector is close to a real text: cos %v", c)
	}
}

func TestEmbedHonoursContext(t *testing.T) {
	e := newEmbedder(t, 256)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []string{"a text"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed with a cancelled context: err %v, want context.Canceled", err)
	}
	got, err := e.Embed(context.Background(), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("Embed(nil) = %v, %v", got, err)
	}
}

func TestConcurrentUseGivesTheSameVectors(t *testing.T) {
	e := newEmbedder(t, 128)
	texts := []string{"первый текст про рынок", "second text about markets", "третий #текст", ""}
	want := make([][]float32, len(texts))
	for i, s := range texts {
		want[i] = e.Vector(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range 200 {
				i := (g + k) % len(texts)
				v, err := e.Embed(context.Background(), []string{texts[i]})
				if err != nil {
					errs <- err.Error()
					return
				}
				for j := range v[0] {
					if v[0][j] != want[i][j] {
						errs <- "vector differs under concurrency"
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func BenchmarkEmbed(b *testing.B) {
	e := newEmbedder(b, 256)
	texts := []string{
		"Вышел Go 1.23: новые итераторы range-over-func, улучшения в стандартной библиотеке и телеметрия. Команда Go рекомендует обновиться. #golang",
		"The central bank raised interest rates by 50 basis points on Thursday, citing persistent inflation and a tight labour market. https://example.com/news",
		"Сборная России по хоккею обыграла Финляндию в товарищеском матче со счетом 3:2. Победную шайбу забросил капитан команды в овертайме.",
		"OpenAI представила новую модель для программистов: она пишет код, тесты и документацию. Доступ пока ограничен.",
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := e.Embed(ctx, texts); err != nil {
			b.Fatal(err)
		}
		n += len(texts)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "texts/s")
}
