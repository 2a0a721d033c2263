package tagger

import (
	"context"
	"time"

	"github.com/tgflow/tgflow/services/embed"
)

// topicBatchWait is how long a post's topic embedding waits for the other posts being
// tagged to join its batch.
const topicBatchWait = 5 * time.Millisecond

// batchedEmbedder embeds the one text of each concurrent Tag call (topicsOf) in batches
// through a Batcher: a model such as USE embeds a batch of texts for much less CPU per
// text than one text at a time, and a remote provider gets fewer requests. Calls with
// several texts (the topic descriptions, once) go straight to the embedder.
type batchedEmbedder struct {
	*embed.Batcher
	inner embed.Embedder
}

func newBatchedEmbedder(e embed.Embedder, batch int) *batchedEmbedder {
	return &batchedEmbedder{Batcher: embed.NewBatcher(e, batch, topicBatchWait), inner: e}
}

// Embed implements embed.Embedder.
func (b *batchedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) != 1 {
		return b.inner.Embed(ctx, texts)
	}
	v, err := b.EmbedOne(ctx, texts[0])
	if err != nil {
		return nil, err
	}
	return [][]float32{v}, nil
}

var _ embed.Embedder = (*batchedEmbedder)(nil)
