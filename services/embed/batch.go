package embed

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Batcher gathers single-text requests from concurrent callers into one Embed call, so a
// stage that handles posts one at a time on several goroutines still embeds in batches.
// A full batch (MaxBatch texts) is sent at once. A partial one is sent MaxWait after its
// first text arrived, but not while another batch is being embedded: it keeps gathering
// until that one is done. An embedder that spreads one batch over every core (USE) leaves
// the callers little CPU while it runs, so a MaxWait timer would fire on a few texts and
// send small batches, each costing more per text (and competing with the batch running);
// gathering while the embedder is busy costs no latency, since it would be waited for anyway.
type Batcher struct {
	e        Embedder
	maxBatch int
	maxWait  time.Duration
	reqs     chan batchReq
	finished chan struct{} // one value per batch embedded
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type batchReq struct {
	ctx  context.Context
	text string
	out  chan batchResult
}

type batchResult struct {
	vec []float32
	err error
}

// ErrBatcherClosed is returned by Embed after Close.
var ErrBatcherClosed = errors.New("embed: batcher closed")

// NewBatcher starts a batcher over e. Close stops it.
func NewBatcher(e Embedder, maxBatch int, maxWait time.Duration) *Batcher {
	if maxBatch < 1 {
		maxBatch = 1
	}
	b := &Batcher{e: e, maxBatch: maxBatch, maxWait: maxWait, reqs: make(chan batchReq), finished: make(chan struct{}), done: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

// Info is the wrapped embedder's.
func (b *Batcher) Info() Info { return b.e.Info() }

// EmbedOne embeds one text as part of whatever batch is being gathered.
func (b *Batcher) EmbedOne(ctx context.Context, text string) ([]float32, error) {
	r := batchReq{ctx: ctx, text: text, out: make(chan batchResult, 1)}
	select {
	case b.reqs <- r:
	case <-b.done:
		return nil, ErrBatcherClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-r.out:
		return res.vec, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops gathering; batches already sent finish first.
func (b *Batcher) Close() {
	b.stopOnce.Do(func() { close(b.done) })
	b.wg.Wait()
}

func (b *Batcher) loop() {
	defer b.wg.Done()
	var sends sync.WaitGroup
	defer sends.Wait()
	inFlight := 0 // batches sent and not yet embedded
	for {
		var first batchReq
	wait:
		for {
			select {
			case first = <-b.reqs:
				break wait
			case <-b.finished:
				inFlight--
			case <-b.done:
				return
			}
		}
		batch := []batchReq{first}
		timer := time.NewTimer(b.maxWait)
		expired := false
	gather:
		for len(batch) < b.maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			case <-timer.C:
				expired = true
				if inFlight == 0 {
					break gather
				}
			case <-b.finished:
				inFlight--
				if expired && inFlight == 0 {
					break gather
				}
			case <-b.done:
				break gather
			}
		}
		timer.Stop()
		inFlight++
		sends.Add(1)
		go func() {
			defer sends.Done()
			b.send(batch)
			select {
			case b.finished <- struct{}{}:
			case <-b.done:
			}
		}()
	}
}

// send embeds one batch. A caller that gave up is left out; an error that concerns one
// input (ErrInvalidInput) is retried text by text so that one bad text fails alone.
func (b *Batcher) send(batch []batchReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	texts := make([]string, len(live))
	for i, r := range live {
		texts[i] = r.text
	}
	// The batch serves several callers: it runs until the last of them gives up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	remaining := len(live)
	var mu sync.Mutex
	for _, r := range live {
		stop := context.AfterFunc(r.ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if remaining--; remaining == 0 {
				cancel()
			}
		})
		defer stop()
	}
	vecs, err := b.e.Embed(ctx, texts)
	if err != nil && errors.Is(err, ErrInvalidInput) && len(live) > 1 {
		for _, r := range live {
			v, err := b.e.Embed(ctx, []string{r.text})
			if err != nil {
				r.out <- batchResult{err: err}
				continue
			}
			r.out <- batchResult{vec: v[0]}
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.out <- batchResult{err: err}
			continue
		}
		r.out <- batchResult{vec: vecs[i]}
	}
}
