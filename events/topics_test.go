package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
)

func TestEmbeddedTopicsAreValidated(t *testing.T) {
	base := func(topics []string, source string) *events.PostEmbedded {
		return &events.PostEmbedded{
			PostRef: events.PostRef{ChannelID: 123, MessageID: 1}, Rev: events.Rev{Version: 1, Revision: 1},
			Vector: []float32{1}, Provider: "hashing", Topics: topics, TopicsSource: source,
		}
	}
	many := make([]string, events.MaxTopics+1)
	for i := range many {
		many[i] = strings.Repeat("t", i+1)
	}
	tests := []struct {
		name string
		p    *events.PostEmbedded
		want string // "" means valid
	}{
		{name: "computed", p: base([]string{"programming", "science"}, events.TopicsFromEmbedding+"use-usem3-1-512")},
		{name: "from the chat tagger", p: base([]string{"music"}, events.TopicsFromTagger+"openai/gpt")},
		{name: "no topics, with a source", p: base(nil, events.TopicsFromEmbedding+"hashing-hashing-v1-1-256")},
		{name: "no topics, no source (an older fact)", p: base(nil, "")},
		{name: "empty name", p: base([]string{"music", ""}, events.TopicsFromEmbedding+"x"), want: "topics[1]: name is empty"},
		{name: "repeated", p: base([]string{"music", "music"}, events.TopicsFromEmbedding+"x"), want: `"music" is repeated`},
		{name: "too many", p: base(many, events.TopicsFromEmbedding+"x"), want: "at most 10"},
		{name: "no source", p: base([]string{"music"}, ""), want: "without a topics_source"},
		{name: "unknown source", p: base([]string{"music"}, "oracle"), want: "is neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, events.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalid reporting %q", err, tt.want)
			}
		})
	}
}
