package tagger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed/hashing/textnorm"
	"github.com/tgflow/tgflow/services/tagger"
)

// pieces random posts are made of: content words in both scripts and cases, stop words,
// hashtags (some repeated in other cases), links, mentions, numbers, punctuation, emoji.
var pieces = []string{
	"Рынок", "рынка", "нефть", "Нефти", "ёлка", "ЕЛКА", "блокчейн", "Go", "golang", "Python",
	"итераторы", "итератор", "Москва", "NASA", "market", "markets", "Inflation", "bank",
	"state-of-the-art", "какой-то", "don't", "и", "в", "на", "the", "of", "это", "который",
	"#Новости", "#новости", "#GoLang", "#ии_2024", "#123", "#", "https://example.com/x?a=1",
	"t.me/channel", "@someone", "a@b.ru", "2024", "1.23", "3:2", "—", ",", ".", "!", "🔥", "\n",
	"Ё", "x", "я", "научно-технический", "Привет", "spaces   inside",
}

func randomPost(r *rand.Rand) tagger.Input {
	n := r.IntN(60)
	words := make([]string, n)
	for i := range words {
		words[i] = pieces[r.IntN(len(pieces))]
	}
	in := tagger.Input{Text: strings.Join(words, " "), HasMedia: r.IntN(4) == 0}
	for range r.IntN(3) {
		in.Hashtags = append(in.Hashtags, pieces[r.IntN(len(pieces))])
	}
	if r.IntN(5) == 0 {
		in.VisionText = []string{pieces[r.IntN(len(pieces))] + " " + pieces[r.IntN(len(pieces))]}
	}
	return in
}

// TestTagProperties: for any post, 0–5 tags, each normalised, none repeated, hashtags (score
// 1) before keywords (score < 1), scores in (0, 1]; a post that is not short and has a content
// word gets at least one tag; the result is a valid posts.tagged payload.
func TestTagProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed>>1))
	df := corpusDF(t)
	for _, maxTags := range []int{5, 1, 3} {
		tg := newTagger(t, tagger.Config{MaxTags: maxTags}, df)
		for range 300 {
			in := randomPost(r)
			res := tag(t, tg, in)
			if len(res.Tags) > maxTags {
				t.Fatalf("%d tags > %d for %q", len(res.Tags), maxTags, in.Text)
			}
			seen := map[string]bool{}
			keywords := false
			for _, tg := range res.Tags {
				if tg.Name == "" || tagger.NormalizeTag(tg.Name) != tg.Name || strings.HasPrefix(tg.Name, "#") {
					t.Fatalf("tag %q is not normalised (text %q)", tg.Name, in.Text)
				}
				if textnorm.IsStop(tg.Name) {
					t.Fatalf("tag %q is a stop word (text %q)", tg.Name, in.Text)
				}
				if seen[tg.Name] {
					t.Fatalf("tag %q repeated in %v (text %q)", tg.Name, res.Tags, in.Text)
				}
				seen[tg.Name] = true
				if tg.Score <= 0 || tg.Score > 1 {
					t.Fatalf("tag %q score %v outside (0, 1]", tg.Name, tg.Score)
				}
				if tg.Score < 1 {
					keywords = true
				} else if keywords {
					t.Fatalf("hashtag %q after a keyword in %v", tg.Name, res.Tags)
				}
			}
			short := !in.HasMedia && len(in.VisionText) == 0 && len([]rune(strings.TrimSpace(in.Text))) < tagger.DefaultShortTextRunes
			if !short && len(tagger.Terms(in.Text)) > 0 && len(res.Tags) == 0 {
				t.Fatalf("no tag for %q", in.Text)
			}
			pt := events.PostTagged{
				PostRef: events.PostRef{ChannelID: 1, MessageID: 1}, Trigger: events.TriggerInitial,
				Tags: res.Tags, Topics: res.Topics, TopicsSource: res.TopicsSource, PostedAt: time.Unix(1, 0), Provider: res.Provider, Model: res.Model,
			}
			if err := pt.Validate(); err != nil {
				t.Fatalf("result is not a valid posts.tagged: %v", err)
			}
		}
	}
}

// TestTagIsDeterministic: the same post and the same DF state give the same result.
func TestTagIsDeterministic(t *testing.T) {
	tg := newTagger(t, tagger.Config{}, corpusDF(t))
	for _, p := range loadPosts(t) {
		a, b := tag(t, tg, tagger.Input{Text: p.Text}), tag(t, tg, tagger.Input{Text: p.Text})
		if len(a.Tags) != len(b.Tags) || strings.Join(a.Topics, ",") != strings.Join(b.Topics, ",") {
			t.Fatalf("%s: %v/%v vs %v/%v", p.Name, a.Tags, a.Topics, b.Tags, b.Topics)
		}
		for i := range a.Tags {
			if a.Tags[i] != b.Tags[i] {
				t.Fatalf("%s: %v vs %v", p.Name, a.Tags, b.Tags)
			}
		}
	}
}

// TestConcurrentTagGivesTheSameTags: a tagger's working memory is reused between posts and
// goroutines; tagging random posts (long and short, vision text, hashtags) on several
// goroutines at once, in different orders, gives each post the tags it gets alone.
func TestConcurrentTagGivesTheSameTags(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed>>1))
	tg := newTagger(t, tagger.Config{}, corpusDF(t))
	inputs := make([]tagger.Input, 200)
	want := make([]string, len(inputs))
	for i := range inputs {
		inputs[i] = randomPost(r)
		want[i] = fmt.Sprint(tag(t, tg, inputs[i]))
	}
	fresh := newTagger(t, tagger.Config{}, corpusDF(t))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range inputs {
				i := (k*7 + g*31) % len(inputs)
				res, err := fresh.Tag(context.Background(), inputs[i])
				if err != nil {
					errs <- err.Error()
					return
				}
				if got := fmt.Sprint(res); got != want[i] {
					errs <- fmt.Sprintf("post %d on goroutine %d: %s, alone %s", i, g, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkTag(b *testing.B) {
	posts := loadPosts(b)
	tg := newTagger(b, tagger.Config{}, corpusDF(b))
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := tg.Tag(ctx, tagger.Input{Text: posts[n%len(posts)].Text}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "posts/s")
}
