// Package topics is tgflow's topic list and the rule that gives a post its topics: the cosine
// similarity of the post's embedding to each topic's Russian and English descriptions,
// embedded once by the same embedder (one vector space), keeping the topics above a
// threshold and close to the best one, best first. The embedder stage applies the rule to
// every vector it computes (a post is embedded once); a chat tagger offers the list to its
// model instead, and its choice is passed on.
//
// The configuration keeps the names it had when the tagger matched topics
// (TGFLOW_TAGGER_TOPICS, TGFLOW_TAGGER_TOPIC_THRESHOLD, TGFLOW_TAGGER_MAX_TOPICS): scripts
// and deployments set them.
package topics

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embed/hashing/textnorm"
)

// Topic is one entry of the topic list: a post is about it when its embedding is close to the
// topic's description in Russian or in English. Under a lexical embedder the descriptions are
// what a post must share words with, so they are lists of the words such posts use.
type Topic struct {
	Name string `json:"name"`
	RU   string `json:"ru"`
	EN   string `json:"en"`
}

//go:embed topics.json
var defaultTopics []byte

// ErrConfig marks an invalid topic list or setting.
var ErrConfig = errors.New("topics: invalid config")

// Default returns the shipped list of 30 topics (topics.json).
func Default() ([]Topic, error) { return Load(bytes.NewReader(defaultTopics)) }

// Load reads a topic list: a JSON array of {"name", "ru", "en"}.
func Load(r io.Reader) ([]Topic, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var topics []Topic
	if err := dec.Decode(&topics); err != nil {
		return nil, fmt.Errorf("%w: topics: %w", ErrConfig, err)
	}
	if err := Validate(topics); err != nil {
		return nil, err
	}
	return topics, nil
}

// Validate reports every problem of a topic list: names must be distinct normalised tags
// (textnorm.Tag), and each topic needs a description.
func Validate(topics []Topic) error {
	var errs []error
	seen := make(map[string]bool, len(topics))
	for i, t := range topics {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("topics[%d]: name is empty", i))
		case textnorm.Tag(t.Name) != t.Name:
			errs = append(errs, fmt.Errorf("topics[%d]: name %q is not normalised (want %q)", i, t.Name, textnorm.Tag(t.Name)))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("topics[%d]: name %q is repeated", i, t.Name))
		}
		seen[t.Name] = true
		if t.RU == "" && t.EN == "" {
			errs = append(errs, fmt.Errorf("topics[%d] %q: no description", i, t.Name))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// Names are the topics' names, in list order.
func Names(topics []Topic) []string {
	out := make([]string, len(topics))
	for i, t := range topics {
		out[i] = t.Name
	}
	return out
}

// Defaults.
const (
	DefaultMax = 3
	// DefaultLexicalThreshold is the cosine a post must reach with a topic's description
	// under a lexical embedder of fewer than WideLexicalDim dimensions: calibrated on
	// testdata/tagger/posts.json with the hashing embedder at the embedder stage's default
	// 256 dimensions, where on-topic posts score 0.225–0.59 with their best topic (34 of 36
	// right) and small talk up to 0.16: hash collisions add noise of ±0.15, so a post
	// sharing only a few words with a description gets no topic. TestCalibration keeps it.
	DefaultLexicalThreshold = 0.2
	// WideLexicalThreshold is the default from WideLexicalDim dimensions, where collisions
	// are rare: on the same posts 36 of 36 are right, scoring 0.149–0.6, small talk < 0.07.
	WideLexicalThreshold = 0.13
	WideLexicalDim       = 2048
	// DefaultSemanticThreshold is the same under a semantic embedder (use, openai):
	// calibrated with use on the same posts, where on-topic posts score 0.234–0.67 with
	// their topic and small talk up to 0.194. An OpenAI-compatible model's cosines differ:
	// set TGFLOW_TAGGER_TOPIC_THRESHOLD for it.
	DefaultSemanticThreshold = 0.22
	// DefaultRelativeCut keeps only topics within this fraction of the best one.
	DefaultRelativeCut = 0.75
)

// Config is the topic settings of the stages that read the list: TGFLOW_* variables.
type Config struct {
	File      string  `env:"TGFLOW_TAGGER_TOPICS" help:"path of a JSON topic list [{\"name\",\"ru\",\"en\"}]; empty: the shipped list of 30"`
	Threshold float64 `env:"TGFLOW_TAGGER_TOPIC_THRESHOLD" envDefault:"0" help:"least cosine similarity of a post's embedding (the embedder's vector) to a topic; 0: the default of the embedder's kind (lexical 0.2, or 0.13 from 2048 dimensions; semantic 0.22)"`
	Max       int     `env:"TGFLOW_TAGGER_MAX_TOPICS" envDefault:"3" help:"topics per post, at most"`
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Threshold < -1 || c.Threshold > 1 {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_TOPIC_THRESHOLD: %v is outside [-1, 1]", c.Threshold))
	}
	if c.Max < 1 || c.Max > events.MaxTopics {
		errs = append(errs, fmt.Errorf("env: TGFLOW_TAGGER_MAX_TOPICS: %d is outside [1, %d]", c.Max, events.MaxTopics))
	}
	return errors.Join(errs...)
}

// List is the configured topic list: the file's, or the shipped one.
func (c *Config) List() ([]Topic, error) {
	if c.File == "" {
		return Default()
	}
	f, err := os.Open(c.File)
	if err != nil {
		return nil, fmt.Errorf("%w: TGFLOW_TAGGER_TOPICS: %w", ErrConfig, err)
	}
	defer f.Close()
	topics, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("TGFLOW_TAGGER_TOPICS %s: %w", c.File, err)
	}
	return topics, nil
}

// Options tune a Matcher; zero values mean the defaults.
type Options struct {
	// Threshold is the least cosine similarity between a post and a topic; 0 means the
	// default of the embedder's kind (lexical or semantic).
	Threshold float64
	// RelativeCut keeps topics whose similarity is at least this fraction of the best.
	RelativeCut float64
	// Max is the largest number of topics per post (at most events.MaxTopics).
	Max int
}

// WithDefaults fills in the defaults for vectors of the embedder info names, and reports
// every invalid setting (ErrConfig).
func (o Options) WithDefaults(info embed.Info) (Options, error) {
	if o.Threshold == 0 {
		switch {
		case !info.Lexical:
			o.Threshold = DefaultSemanticThreshold
		case info.Dim >= WideLexicalDim:
			o.Threshold = WideLexicalThreshold
		default:
			o.Threshold = DefaultLexicalThreshold
		}
	}
	if o.RelativeCut == 0 {
		o.RelativeCut = DefaultRelativeCut
	}
	if o.Max == 0 {
		o.Max = DefaultMax
	}
	var errs []error
	if o.Threshold < -1 || o.Threshold > 1 {
		errs = append(errs, fmt.Errorf("threshold %v outside [-1, 1]", o.Threshold))
	}
	if o.RelativeCut < 0 || o.RelativeCut > 1 {
		errs = append(errs, fmt.Errorf("relative cut %v outside [0, 1]", o.RelativeCut))
	}
	if o.Max < 1 || o.Max > events.MaxTopics {
		errs = append(errs, fmt.Errorf("max %d outside [1, %d]", o.Max, events.MaxTopics))
	}
	if len(errs) > 0 {
		return Options{}, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return o, nil
}

// Matcher gives a vector of one embedder its topics. It is safe for concurrent use.
type Matcher struct {
	names  []string
	has    []bool // the topic has a description vector
	source string
	opts   Options
	dim    int
	// byDim is the description vectors transposed: byDim[k*len(owner)+j] is dimension k of
	// description j, whose topic is owner[j]. A post's dot products then read one short
	// contiguous row per non-zero dimension of its vector instead of one scattered element
	// of every description vector (lexical vectors are sparse).
	byDim []float32
	owner []int
}

// NewMatcher embeds the topics' descriptions with emb, once: the vectors Match is given must
// come from the same embedder.
func NewMatcher(ctx context.Context, emb embed.Embedder, list []Topic, o Options) (*Matcher, error) {
	if emb == nil {
		return nil, errors.New("topics: nil embedder")
	}
	if err := Validate(list); err != nil {
		return nil, err
	}
	info := emb.Info()
	o, err := o.WithDefaults(info)
	if err != nil {
		return nil, err
	}
	m := &Matcher{names: Names(list), has: make([]bool, len(list)), source: events.TopicsFromEmbedding + info.Space(), opts: o, dim: info.Dim}
	var texts []string
	for i, t := range list {
		for _, d := range []string{t.RU, t.EN} {
			if d != "" {
				texts = append(texts, d)
				m.owner = append(m.owner, i)
			}
		}
	}
	if len(texts) == 0 {
		return m, nil
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("topics: embed the descriptions: %w", err)
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("topics: embedder returned %d vectors for %d descriptions", len(vecs), len(texts))
	}
	m.byDim = make([]float32, info.Dim*len(vecs))
	for j, v := range vecs {
		if len(v) != info.Dim {
			return nil, fmt.Errorf("topics: description vector of dimension %d, embedder says %d", len(v), info.Dim)
		}
		m.has[m.owner[j]] = true
		for k, x := range v {
			m.byDim[k*len(vecs)+j] = x
		}
	}
	return m, nil
}

// Source names who chose the topics, for posts.embedded's topics_source:
// "embedding:<vector space>".
func (m *Matcher) Source() string { return m.source }

// Options are the matcher's settings, defaults filled in.
func (m *Matcher) Options() Options { return m.opts }

// Scored is a topic and its similarity to a vector.
type Scored struct {
	Name string
	Sim  float64
}

// Match returns the topics of v (a vector of the matcher's embedder): similarity at least
// the threshold and at least the relative cut times the best, best first (ties by name), at
// most Max. It allocates twice: a scratch slice and the result (it runs for every post).
func (m *Matcher) Match(v []float32) []string {
	best := m.best(v)
	if best == nil {
		return nil
	}
	out := make([]string, 0, m.opts.Max)
	top := math.Inf(-1)
	for len(out) < m.opts.Max {
		pick := -1
		for i, b := range best {
			if !m.has[i] || math.IsNaN(b) {
				continue
			}
			if pick < 0 || b > best[pick] || b == best[pick] && m.names[i] < m.names[pick] {
				pick = i
			}
		}
		if pick < 0 {
			break
		}
		sim := best[pick]
		if len(out) == 0 {
			top = sim
		}
		if sim < m.opts.Threshold || sim < m.opts.RelativeCut*top {
			break
		}
		out = append(out, m.names[pick])
		best[pick] = math.NaN() // taken
	}
	return out
}

// best returns each topic's similarity to v (its best description's), or nil when there is
// no description or v has another dimension.
func (m *Matcher) best(v []float32) []float64 {
	n := len(m.owner)
	if n == 0 || len(v) != m.dim {
		return nil
	}
	buf := make([]float64, n+len(m.names))
	dots, best := buf[:n], buf[n:]
	for k, x := range v {
		if x == 0 {
			continue
		}
		xf := float64(x)
		row := m.byDim[k*n : (k+1)*n : (k+1)*n]
		for j, t := range row {
			dots[j] += xf * float64(t)
		}
	}
	for i := range best {
		best[i] = math.Inf(-1)
	}
	for j, d := range dots {
		best[m.owner[j]] = math.Max(best[m.owner[j]], d)
	}
	return best
}

// Scores returns every topic's similarity to v (its best description's), best first; ties
// by name. A vector of another dimension has no topic.
func (m *Matcher) Scores(v []float32) []Scored {
	best := m.best(v)
	out := make([]Scored, 0, len(best))
	for i, b := range best {
		if m.has[i] {
			out = append(out, Scored{m.names[i], b})
		}
	}
	slices.SortFunc(out, func(a, b Scored) int {
		if c := cmp.Compare(b.Sim, a.Sim); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}
