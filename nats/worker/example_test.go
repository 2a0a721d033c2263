package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/nats/worker/stagetest"
)

// hashtagTagger is a complete example stage: it tags a post with its own hashtags. A real
// stage looks the same, with a model behind the handler and the providers' middleware
// (Timeout, RateLimit, CircuitBreaker) on the router.
type hashtagTagger struct{}

// Router is everything the runtime needs from the stage: typed handlers over events, no
// NATS. The producer (tagger) is not named here: the topology assigns it to the consumer.
func (hashtagTagger) Router() *worker.Router {
	r := worker.NewRouter()
	r.Use(worker.Timeout(30 * time.Second))
	worker.On(r, func(ctx context.Context, in events.Event, p *events.PostParsed) ([]events.Event, error) {
		var tags []events.Tag
		for _, h := range p.Hashtags {
			if len(tags) == 5 {
				break
			}
			tags = append(tags, events.Tag{Name: strings.ToLower(h)})
		}
		if len(tags) == 0 {
			return nil, nil // nothing to say about this post
		}
		return []events.Event{worker.Derive(ctx, in, &events.PostTagged{PostRef: p.PostRef, Rev: events.Rev{Version: p.Version()},
			Trigger: events.TriggerInitial, Tags: tags, PostedAt: p.Date, Text: p.Text, Provider: "hashtags"}, in.Time)}, nil
	})
	return r
}

// Example shows a stage from its handler to its outputs. In its service the same router
// runs on NATS with
//
//	c, _ := topology.LookupConsumer(topology.ConsumerTagger)
//	stage, err := worker.NewStage(js, worker.Config{Consumer: c.Config(), Logger: log}, hashtagTagger{}.Router())
//	...
//	err = stage.Run(ctx)
//
// and here it runs through worker.Pipeline, the NATS-free part of the runtime.
func Example() {
	p, err := worker.NewPipeline(topology.ConsumerTagger, hashtagTagger{}.Router(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	in := events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: 7},
		Date: t0, Text: "#Go 1.26 is out #golang", Hashtags: []string{"Go", "golang"}}})
	out, err := p.Handle(context.Background(), in)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range out {
		fmt.Println(o.Type, o.Producer(), o.Data.(*events.PostTagged).Tags)
	}
	// Output: org.tgflow.post.tagged.v1 tagger [{go 0} {golang 0}]
}

// The example stage passes the stage contract suite.
func TestExampleStageContract(t *testing.T) {
	post := func(msg int64, hashtags ...string) events.Event {
		return events.PostEvent(&events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 1, MessageID: msg},
			Date: t0, Text: "x", Hashtags: hashtags}})
	}
	stagetest.Run(t, stagetest.Harness{
		Consumer: topology.ConsumerTagger,
		Router:   func(*testing.T) *worker.Router { return hashtagTagger{}.Router() },
		Inputs:   []events.Event{post(1, "go"), post(2), post(3, "a", "b", "c", "d", "e", "f")},
	})
}
