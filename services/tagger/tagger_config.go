package tagger

import (
	"errors"
	"fmt"
)

// Defaults.
const (
	DefaultMaxTags        = 5
	DefaultShortTextRunes = 40
	DefaultMaxTopics      = 3
	DefaultVisionWeight   = 0.5
	// LexicalTopicDim is the dimension to give a hashing embedder used for topics. At 256
	// dimensions the hash collisions of 60 keyword-rich descriptions leave noise of ±0.1
	// cosine, as much as the signal of a post sharing three words with a description (on
	// testdata/tagger/posts.json the best topic is right for 34 of 36 posts at 256 and 36 of
	// 36 at 2048, with unrelated small talk below 0.07). The tagger's embedding is its own:
	// it need not be the vector space the embedder stage writes.
	LexicalTopicDim = 2048
	// DefaultLexicalTopicThreshold is the cosine a post must reach with a topic's description
	// under a lexical embedder (hashing, LexicalTopicDim dimensions): calibrated on
	// testdata/tagger/posts.json, where on-topic posts score 0.15–0.56 and small talk < 0.07.
	DefaultLexicalTopicThreshold = 0.13
	// DefaultSemanticTopicThreshold is the same under a semantic embedder (use, openai). It is
	// a starting point, not calibrated here.
	DefaultSemanticTopicThreshold = 0.3
	// DefaultTopicRelativeCut keeps only topics within this fraction of the best one.
	DefaultTopicRelativeCut = 0.75
)

// Config of the local tagger. Zero values mean the defaults.
type Config struct {
	// MaxTags is the largest number of tags per post (hashtags first), 1–5.
	MaxTags int
	// ShortTextRunes: a post whose text is shorter than this and has no media gets its
	// hashtags only (maybe none).
	ShortTextRunes int
	// Topics to choose from; nil means DefaultTopics().
	Topics []Topic
	// TopicThreshold is the least cosine similarity between a post and a topic; 0 means the
	// default of the embedder's kind (lexical or semantic).
	TopicThreshold float64
	// TopicRelativeCut keeps topics whose similarity is at least this fraction of the best.
	TopicRelativeCut float64
	// MaxTopics is the largest number of topics per post.
	MaxTopics int
	// VisionWeight weighs words of OCR text and image descriptions against the post's own.
	VisionWeight float64
}

func (c *Config) setDefaults(lexical bool) error {
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
	if c.ShortTextRunes == 0 {
		c.ShortTextRunes = DefaultShortTextRunes
	}
	if c.Topics == nil {
		topics, err := DefaultTopics()
		if err != nil {
			return err
		}
		c.Topics = topics
	}
	if c.TopicThreshold == 0 {
		c.TopicThreshold = DefaultSemanticTopicThreshold
		if lexical {
			c.TopicThreshold = DefaultLexicalTopicThreshold
		}
	}
	if c.TopicRelativeCut == 0 {
		c.TopicRelativeCut = DefaultTopicRelativeCut
	}
	if c.MaxTopics == 0 {
		c.MaxTopics = DefaultMaxTopics
	}
	if c.VisionWeight == 0 {
		c.VisionWeight = DefaultVisionWeight
	}
	return nil
}

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("tagger: invalid config")

// Validate reports every problem of a defaulted config.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxTags < 1 || c.MaxTags > 5 {
		errs = append(errs, fmt.Errorf("max tags %d outside [1, 5]", c.MaxTags))
	}
	if c.ShortTextRunes < 0 {
		errs = append(errs, fmt.Errorf("short text runes %d is negative", c.ShortTextRunes))
	}
	if c.TopicThreshold < -1 || c.TopicThreshold > 1 {
		errs = append(errs, fmt.Errorf("topic threshold %v outside [-1, 1]", c.TopicThreshold))
	}
	if c.TopicRelativeCut < 0 || c.TopicRelativeCut > 1 {
		errs = append(errs, fmt.Errorf("topic relative cut %v outside [0, 1]", c.TopicRelativeCut))
	}
	if c.MaxTopics < 0 {
		errs = append(errs, fmt.Errorf("max topics %d is negative", c.MaxTopics))
	}
	if c.VisionWeight < 0 || c.VisionWeight > 1 {
		errs = append(errs, fmt.Errorf("vision weight %v outside [0, 1]", c.VisionWeight))
	}
	if err := validateTopics(c.Topics); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
