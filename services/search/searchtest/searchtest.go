// Package searchtest loads the committed search corpus (testdata/search) and turns it into
// the facts the pipeline would have put on the log for it: each channel subscribed and
// synced (title, username), each post parsed, tagged, enriched and, with an embedder,
// embedded (the vector of embedder.Compose, as the embedder stage computes it). Tests apply
// these facts to the real projections and search them.
package searchtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/services/embed"
	"github.com/tgflow/tgflow/services/embedder"
)

// Channel is one channel of the corpus.
type Channel struct {
	ID       events.ChannelID `json:"id"`
	Username string           `json:"username"`
	Title    string           `json:"title"`
	Lang     string           `json:"lang"`
}

// Post is one post of the corpus.
type Post struct {
	ChannelID events.ChannelID `json:"channel_id"`
	MessageID int64            `json:"message_id"`
	Date      time.Time        `json:"date"`
	Lang      string           `json:"lang"`
	Text      string           `json:"text"`
	Tags      []string         `json:"tags"`
	Topics    []string         `json:"topics"`
}

// Key is the post key.
func (p Post) Key() string { return events.PostKey(p.ChannelID, p.MessageID) }

// Query is one query of the corpus with the post it must find.
type Query struct {
	Q      string `json:"q"`
	Lang   string `json:"lang"`
	Expect string `json:"expect"`
	// Backends that must rank Expect in the top 3: "postgres" (same-language queries) and
	// "qdrant".
	Backends []string `json:"backends"`
	// Cross marks a query in another language than its expected post.
	Cross bool `json:"cross"`
}

// Corpus is testdata/search.
type Corpus struct {
	Channels []Channel `json:"channels"`
	Posts    []Post    `json:"posts"`
	Queries  []Query   `json:"-"`
}

// Dir is testdata/search of this repository.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("searchtest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "search")
}

// Load reads the corpus and its queries.
func Load() (*Corpus, error) {
	var c Corpus
	if err := readJSON(filepath.Join(Dir(), "corpus.json"), &c); err != nil {
		return nil, err
	}
	if err := readJSON(filepath.Join(Dir(), "queries.json"), &c.Queries); err != nil {
		return nil, err
	}
	return &c, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("searchtest: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("searchtest: %s: %w", path, err)
	}
	return nil
}

// Post returns the post with key k.
func (c *Corpus) Post(k string) (Post, bool) {
	for _, p := range c.Posts {
		if p.Key() == k {
			return p, true
		}
	}
	return Post{}, false
}

// Channel returns the channel with id.
func (c *Corpus) Channel(id events.ChannelID) Channel {
	for _, ch := range c.Channels {
		if ch.ID == id {
			return ch
		}
	}
	return Channel{}
}

// corpusTopics names the corpus's topics as a tagger's choice, which the embedder passes on.
const corpusTopics = events.TopicsFromTagger + "corpus"

// Events returns the corpus as facts in log order. With emb nil no posts.embedded facts
// are made, so the read models get no topics (they take them from posts.embedded).
func (c *Corpus) Events(ctx context.Context, emb embed.Embedder) ([]events.Event, error) {
	var out []events.Event
	for _, ch := range c.Channels {
		at := c.Posts[0].Date.Add(-time.Hour)
		out = append(out,
			events.New(events.ProducerCLI, &events.ChannelSubscribed{ChannelID: ch.ID, At: at}, at),
		)
	}
	var enriched []*events.PostEnriched
	var parents []events.Event
	for _, p := range c.Posts {
		ch := c.Channel(p.ChannelID)
		parsed := events.PostEvent(&events.PostParsed{Post: events.Post{
			PostRef:         events.PostRef{ChannelID: p.ChannelID, MessageID: p.MessageID},
			ChannelUsername: ch.Username, Date: p.Date, Text: p.Text, Origin: "telegram",
		}})
		tags := make([]events.Tag, len(p.Tags))
		for i, t := range p.Tags {
			tags[i] = events.Tag{Name: t, Score: 1 - float64(i)*0.1}
		}
		ref := events.PostRef{ChannelID: p.ChannelID, MessageID: p.MessageID}
		tagged := events.Derive(parsed, events.ProducerTagger, &events.PostTagged{
			PostRef: ref, Trigger: events.TriggerInitial, Tags: tags, Topics: p.Topics, TopicsSource: corpusTopics,
			ChannelUsername: ch.Username, PostedAt: p.Date, Text: p.Text, Provider: "corpus",
		}, p.Date.Add(time.Second))
		en := &events.PostEnriched{PostRef: ref, Tags: p.Tags, Topics: p.Topics, TopicsSource: corpusTopics,
			ChannelUsername: ch.Username, PostedAt: p.Date, Text: p.Text}
		enrichedEv := events.Derive(tagged, events.ProducerEnricher, en, p.Date.Add(2*time.Second))
		out = append(out, parsed, tagged, enrichedEv)
		enriched = append(enriched, en)
		parents = append(parents, enrichedEv)
	}
	last := c.Posts[len(c.Posts)-1].Date
	for _, ch := range c.Channels {
		var n int
		var cursor int64
		for _, p := range c.Posts {
			if p.ChannelID == ch.ID {
				n++
				cursor = max(cursor, p.MessageID)
			}
		}
		out = append(out, events.New(events.ProducerIngest, &events.ChannelSynced{
			ChannelID: ch.ID, Username: ch.Username, Title: ch.Title, Backfill: true, Cursor: cursor,
			Fetched: n, New: n, StartedAt: last.Add(time.Hour), FinishedAt: last.Add(time.Hour + time.Minute),
		}, last.Add(time.Hour+time.Minute)))
	}
	if emb == nil {
		return out, nil
	}
	texts := make([]string, len(enriched))
	for i, en := range enriched {
		texts[i] = embedder.Compose(en)
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("searchtest: embed the corpus: %w", err)
	}
	info := emb.Info()
	for i, en := range enriched {
		out = append(out, events.Derive(parents[i], events.ProducerEmbedder, &events.PostEmbedded{
			PostRef: en.PostRef, Vector: vecs[i], Provider: info.Name, Model: info.Model,
			EmbedderVersion: info.Version, Dim: info.Dim, Lexical: info.Lexical,
			Topics: en.Topics, TopicsSource: en.TopicsSource, // passed on, as the embedder does a chat tagger's
		}, en.PostedAt.Add(3*time.Second)))
	}
	return out, nil
}

// Facts numbers events as the log would (sequences from 1).
func Facts(evs []events.Event) []projections.Fact {
	out := make([]projections.Fact, len(evs))
	for i, e := range evs {
		out[i] = projections.Fact{Seq: uint64(i + 1), Event: e}
	}
	return out
}
