// Package tagger is the local tagger: it gives a post 1–5 normalised tags, with no model
// download and no network. It embeds nothing: a post's topics come from its embedding, which
// the embedder stage computes once (package topics); with TGFLOW_TAGGER=openai the chat
// model chooses them from the list instead (ChatTagger), and the embedder passes them on.
//
// Tags: the post's hashtags first (from its hashtag list, its hashtag entities and its text,
// in that order), then keywords. Keywords are the post's words (package textnorm: NFC, lower
// case, ё → е, URLs, mentions and numbers dropped, Snowball stop words dropped) grouped by
// their Snowball stem (Russian for Cyrillic words, English for Latin ones) and ranked by
// TF-IDF: sublinear term frequency times a smoothed inverse document frequency,
// ln((1+N)/(1+DF)) + 1, read from a DF store fed from the log. A word written with a capital
// letter inside a sentence, or in capitals (a name, a product, an acronym: "Go", "NASA"),
// weighs 1.5 times as much: two-letter words are kept (minus the stop words), so "Go" in a
// Russian post survives and ranks. A keyword is shown in the surface form the post uses most
// (ties: the shorter, then the first in byte order). A keyword whose stem is a hashtag's stem
// is not repeated.
//
// A text shorter than Config.ShortTextRunes with no media gets its hashtags only (maybe none:
// an empty tag list is a valid result).
//
// Tags are normalised by NormalizeTag; scores are in (0, 1]: 1 for hashtags, keywords scaled
// so that the best has 0.9.
package tagger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed/hashing/textnorm"
)

// Provider and Model name this tagger in posts.tagged.
const (
	Provider = "local"
	Model    = "tfidf-snowball-v1"
)

// Scoring constants.
const (
	capitalBoost   = 1.5
	hashtagScore   = 1.0
	topKeywordRank = 0.9
)

// Input is what the tagger reads of a post.
type Input struct {
	// Text of the post.
	Text string
	// Entities of Text (hashtag entities are read; offsets in code points).
	Entities []events.Entity
	// Hashtags as ingest listed them, with or without '#'.
	Hashtags []string
	// HasMedia: the post has attachments (a short caption is still tagged by its words).
	HasMedia bool
	// VisionText: OCR text and image descriptions (the vision_retag trigger), weighed by
	// Config.VisionWeight.
	VisionText []string
}

// InputFromPost reads a post's text, entities, hashtags and media.
func InputFromPost(p *events.Post) Input {
	return Input{Text: p.Text, Entities: p.Entities, Hashtags: p.Hashtags, HasMedia: len(p.Media) > 0}
}

// Result is a post's tags; Provider and Model name the tagger for posts.tagged. Topics and
// TopicsSource are set by a chat tagger only (its choice from the topic list).
type Result struct {
	Tags         []events.Tag
	Topics       []string
	TopicsSource string
	Provider     string
	Model        string
}

// Tagger is the local tagger. It is safe for concurrent use.
type Tagger struct {
	cfg  Config
	df   DF
	pool sync.Pool // *tagScratch
}

// tagScratch is the working memory of one Tag call, pooled: a post's tokens, terms and ranking
// are allocated once per handler goroutine rather than once per post.
type tagScratch struct {
	tokens []textnorm.Token
	vision []textnorm.Token
	terms  []term
	index  map[string]int
	list   []ranked
}

// ranked is a term and its score.
type ranked struct {
	tm    *term
	score float64
}

// maxPooledTerms bounds what a pooled scratch keeps: after a very long post its memory is
// let go (a map is cleared in time proportional to its capacity, not its length).
const maxPooledTerms = 4096

func (t *Tagger) scratch() *tagScratch {
	sc, _ := t.pool.Get().(*tagScratch)
	if sc == nil {
		sc = &tagScratch{index: make(map[string]int)}
	}
	return sc
}

// release returns sc to the pool without what it points to (the post's text, its stems).
func (t *Tagger) release(sc *tagScratch) {
	if len(sc.terms) > maxPooledTerms || len(sc.tokens) > maxPooledTerms {
		return
	}
	clear(sc.tokens)
	clear(sc.vision)
	clear(sc.terms)
	clear(sc.list)
	clear(sc.index)
	sc.tokens, sc.vision, sc.terms, sc.list = sc.tokens[:0], sc.vision[:0], sc.terms[:0], sc.list[:0]
	t.pool.Put(sc)
}

// ErrNilDependency is returned by New for a missing DF store.
var ErrNilDependency = errors.New("tagger: nil dependency")

// New builds a tagger over a DF store.
func New(cfg Config, df DF) (*Tagger, error) {
	if df == nil {
		return nil, fmt.Errorf("%w: DF store", ErrNilDependency)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tagger{cfg: cfg, df: df}, nil
}

// Config returns the tagger's configuration with its defaults filled in.
func (t *Tagger) Config() Config { return t.cfg }

// Tag computes a post's tags (never topics: see the package doc). It does not fail.
func (t *Tagger) Tag(_ context.Context, in Input) (Result, error) {
	res := Result{Tags: []events.Tag{}, Provider: Provider, Model: Model}
	seen := make(map[string]bool)
	hashStems := make(map[string]bool)
	sc := t.scratch()
	defer t.release(sc)
	sc.tokens = textnorm.AppendTokens(sc.tokens[:0], in.Text)
	tokens := sc.tokens
	for _, h := range hashtags(in, tokens) {
		if len(res.Tags) == t.cfg.MaxTags {
			break
		}
		seen[h] = true
		for _, tok := range textnorm.Tokenize(h) {
			hashStems[textnorm.Stem(tok)] = true
		}
		res.Tags = append(res.Tags, events.Tag{Name: h, Score: hashtagScore})
	}
	if t.short(in) {
		return res, nil
	}
	keywords := t.keywords(sc, in, tokens, t.cfg.MaxTags-len(res.Tags), seen, hashStems)
	res.Tags = append(res.Tags, keywords...)
	return res, nil
}

// short: text under the threshold and no media (vision text means media).
func (t *Tagger) short(in Input) bool {
	if in.HasMedia || len(in.VisionText) > 0 {
		return false
	}
	return utf8.RuneCountInString(strings.TrimSpace(in.Text)) < t.cfg.ShortTextRunes
}

// hashtags lists the post's hashtags, normalised, in order: its list, its entities, its text.
// The rule of words applies to them too: at least two runes, no stop words.
func hashtags(in Input, tokens []textnorm.Token) []string {
	var out []string
	add := func(s string) {
		n := NormalizeTag(s)
		if utf8.RuneCountInString(n) < textnorm.MinTokenRunes || textnorm.IsStop(n) {
			return
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, h := range in.Hashtags {
		add(h)
	}
	if len(in.Entities) > 0 {
		runes := []rune(in.Text)
		for _, e := range in.Entities {
			if e.Type == "hashtag" && e.Offset >= 0 && e.Length > 0 && e.Offset+e.Length <= len(runes) {
				add(string(runes[e.Offset : e.Offset+e.Length]))
			}
		}
	}
	for _, tok := range tokens {
		if tok.Hashtag {
			add(tok.Text)
		}
	}
	return out
}

// NormalizeTag is the one tag rule (textnorm.Tag): NFC, lower case, ё → е, surrounding space
// and leading '#' removed, inner spaces joined by '_'. It returns "" for a tag without a
// letter or digit, or longer than textnorm.MaxTokenRunes.
func NormalizeTag(s string) string { return textnorm.Tag(s) }

// term is one stem of a post being scored.
type term struct {
	stem  string
	tf    float64
	capTF float64
	// one is the first surface form; more the others (most terms have one form only).
	one   form
	more  []form
	first int
}

// form is one surface form of a term and how often the post uses it. A term has few forms
// (most have one): a slice is searched faster, and allocated less, than a map per term.
type form struct {
	text string
	n    int
}

// keywords returns up to n keywords, best first, skipping tags already given (seen) and
// stems of hashtags.
func (t *Tagger) keywords(sc *tagScratch, in Input, tokens []textnorm.Token, n int, seen, hashStems map[string]bool) []events.Tag {
	if n <= 0 {
		return nil
	}
	// terms in order of first occurrence, indexed by stem; one backing array for all.
	terms, index := sc.terms[:0], sc.index
	defer func() { sc.terms = terms }() // kept for the next post, grown or not
	order := 0
	// Capitals count in the post's own text only: in OCR text they are typography.
	collect := func(tokens []textnorm.Token, w float64, caps bool) {
		for _, tok := range tokens {
			if tok.Hashtag || textnorm.IsStop(tok.Text) {
				continue
			}
			stem := textnorm.Stem(tok)
			if hashStems[stem] {
				continue
			}
			i, ok := index[stem]
			if !ok {
				i = len(terms)
				index[stem] = i
				terms = append(terms, term{stem: stem, first: order})
			}
			tm := &terms[i]
			order++
			tm.tf += w
			if caps && (tok.Upper || (tok.Cap && !tok.SentenceStart)) {
				tm.capTF += w
			}
			tm.addForm(tok.Text)
		}
	}
	collect(tokens, 1, true)
	for _, v := range in.VisionText {
		sc.vision = textnorm.AppendTokens(sc.vision[:0], v)
		collect(sc.vision, t.cfg.VisionWeight, false)
	}
	if len(terms) == 0 {
		return nil
	}
	n0 := float64(t.df.N())
	list := sc.list[:0]
	defer func() { sc.list = list }()
	for i := range terms {
		tm := &terms[i]
		idf := math.Log((1+n0)/(1+float64(t.df.DF(tm.stem)))) + 1
		boost := 1 + (capitalBoost-1)*tm.capTF/tm.tf
		list = append(list, ranked{tm, sublinear(tm.tf) * idf * boost})
	}
	// Ties go to the term seen first (first is unique per term: no two terms tie on it).
	slices.SortFunc(list, func(a, b ranked) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.tm.first, b.tm.first)
	})
	// A term is named only when it is reached: most of a post's terms are never shown, and
	// naming (NFC, folding) is the costly part. A term without a name, or whose name is a tag
	// already given, is skipped; the best shown keyword gets 0.9.
	var out []events.Tag
	top := 0.0
	for _, r := range list {
		if len(out) == n {
			break
		}
		name := NormalizeTag(surface(r.tm.one, r.tm.more))
		if name == "" || seen[name] {
			continue
		}
		if len(out) == 0 {
			top = r.score
		}
		seen[name] = true
		out = append(out, events.Tag{Name: name, Score: scaleScore(r.score, top)})
	}
	return out
}

// addForm counts one use of the surface form text.
func (tm *term) addForm(text string) {
	if tm.one.n == 0 || tm.one.text == text {
		tm.one.text = text
		tm.one.n++
		return
	}
	for i := range tm.more {
		if tm.more[i].text == text {
			tm.more[i].n++
			return
		}
	}
	tm.more = append(tm.more, form{text, 1})
}

// sublinear is 1+ln(tf) for tf ≥ 1, and tf below (a word seen only in vision text).
func sublinear(tf float64) float64 {
	if tf < 1 {
		return tf
	}
	return 1 + math.Log(tf)
}

// surface is the most frequent form; ties go to the shorter, then the smaller.
func surface(first form, more []form) string {
	best, bestN := first.text, first.n
	for _, f := range more {
		switch {
		case f.n > bestN,
			f.n == bestN && len(f.text) < len(best),
			f.n == bestN && len(f.text) == len(best) && f.text < best:
			best, bestN = f.text, f.n
		}
	}
	return best
}

// scaleScore maps a keyword score to (0, 0.9], the best keyword to 0.9, rounded to 3 places.
func scaleScore(s, top float64) float64 {
	v := math.Round(topKeywordRank*s/top*1000) / 1000
	return max(v, 0.001)
}

// Terms returns the distinct stems of a post's text that keywords are made of: what a DF
// store observes for one document (in order of first occurrence).
func Terms(text string) []string {
	var sc termScratch
	return sc.terms(text)
}

// termScratch is the reusable memory of Terms for one goroutine (the DF feed reads a post at
// a time): the token slice and the set of stems seen are kept between posts. The slice
// terms returns is valid until the next call.
type termScratch struct {
	tokens []textnorm.Token
	seen   map[string]struct{}
	out    []string
}

func (sc *termScratch) terms(text string) []string {
	sc.tokens = textnorm.AppendTokens(sc.tokens[:0], text)
	if sc.seen == nil {
		sc.seen = make(map[string]struct{})
	}
	clear(sc.seen)
	sc.out = sc.out[:0]
	for _, tok := range sc.tokens {
		if tok.Hashtag || textnorm.IsStop(tok.Text) {
			continue
		}
		s := textnorm.Stem(tok)
		if _, ok := sc.seen[s]; !ok {
			sc.seen[s] = struct{}{}
			sc.out = append(sc.out, s)
		}
	}
	// Drop the token texts so that the kept slice does not pin the last post's words.
	clear(sc.tokens)
	return sc.out
}
