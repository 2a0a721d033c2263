package trends

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tgflow/tgflow/events"
)

const (
	shortBuckets = int64(Short / Bucket) // 12
	longBuckets  = int64(Long / Bucket)  // 288
	// bucketsPerHour converts bucket counts to hours.
	bucketsPerHour = float64(time.Hour / Bucket)
)

// post is what the machine keeps of one post: the tags of its newest revision.
type post struct {
	key      string
	channel  events.ChannelID
	postedAt time.Time
	bucket   int64
	rev      events.Rev
	tags     []string
}

// tagState holds, per bucket, the posts of one tag, and when the tag was last reported.
type tagState struct {
	buckets map[int64]map[string]*post
	// fired are the window end buckets of the tag's detections, ascending.
	fired []int64
}

// Machine is the trends state machine. The zero value is not usable: see NewMachine.
type Machine struct {
	mu        sync.Mutex
	cfg       Config
	posts     map[string]*post
	tags      map[string]*tagState
	watermark int64 // newest bucket seen; valid when started
	started   bool
	// held counts the posts held per bucket: the oldest is where the known history starts.
	held map[int64]int
	// late counts posts too late for any window still evaluated.
	late int
}

// NewMachine returns an empty machine.
func NewMachine(cfg Config) (*Machine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Machine{cfg: cfg, posts: map[string]*post{}, tags: map[string]*tagState{}, held: map[int64]int{}}, nil
}

func bucketOf(t time.Time) int64 { return t.Unix() / int64(Bucket/time.Second) }

func bucketStart(b int64) time.Time { return time.Unix(b*int64(Bucket/time.Second), 0).UTC() }

func (m *Machine) lateBuckets() int64 { return int64(m.cfg.LateLimit / Bucket) }

// Late is how many posts came too late for any window still evaluated.
func (m *Machine) Late() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.late
}

// Watermark is the end of the newest bucket seen (zero before any post).
func (m *Machine) Watermark() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return time.Time{}
	}
	return bucketStart(m.watermark + 1)
}

// Lookback is how far before the newest post date a cold start's replay must begin: the
// 24 h a window looks back (or the cooldown and a window, for the trends that still cool
// down), behind a window ending LateLimit behind the watermark, plus a bucket and a margin.
func (m *Machine) Lookback() time.Duration {
	return max(Long, m.cfg.Cooldown+Short) + m.cfg.LateLimit + Bucket + replayMargin
}

// Observe applies one posts.tagged fact and returns the trends it reveals, in a
// deterministic order.
func (m *Machine) Observe(p *events.PostTagged) []*events.TrendDetected {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.apply(p, true)
}

// Restore applies a fact read back from the log by a replay: the state changes as Observe
// would change it, but nothing is evaluated — what the fact revealed was published then,
// and comes back through Fired.
func (m *Machine) Restore(p *events.PostTagged) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.apply(p, false)
}

// Fired records a trend found on the log (a replay), for the cooldown.
func (m *Machine) Fired(t *events.TrendDetected) {
	if t.Window != WindowName {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fire(m.tag(t.Tag), bucketOf(t.WindowEnd)-1)
}

func (m *Machine) tag(t string) *tagState {
	ts := m.tags[t]
	if ts == nil {
		ts = &tagState{buckets: map[int64]map[string]*post{}}
		m.tags[t] = ts
	}
	return ts
}

func (m *Machine) fire(ts *tagState, k int64) {
	if i, found := slices.BinarySearch(ts.fired, k); !found {
		ts.fired = slices.Insert(ts.fired, i, k)
	}
}

// oldestKept is the oldest bucket a window still evaluated can read: windows end at most
// LateLimit behind the watermark and look back 24 h from there.
func (m *Machine) oldestKept() int64 {
	return m.watermark - m.lateBuckets() - longBuckets + 1
}

func (m *Machine) apply(p *events.PostTagged, evaluate bool) []*events.TrendDetected {
	b := bucketOf(p.PostedAt)
	if m.started && b < m.oldestKept() {
		m.late++
		return nil // no window still evaluated can hold it
	}
	key := p.Key()
	old, known := m.posts[key]
	if known && old.rev.Compare(p.Rev) >= 0 {
		return nil // an older or the same revision: the newest already counts
	}
	if known {
		m.remove(old)
	}
	np := &post{key: key, channel: p.ChannelID, postedAt: p.PostedAt.UTC(), bucket: b, rev: p.Rev, tags: tagNames(p.Tags)}
	m.posts[key] = np
	m.held[b]++
	for _, t := range np.tags {
		ts := m.tag(t)
		if ts.buckets[b] == nil {
			ts.buckets[b] = map[string]*post{}
		}
		ts.buckets[b][key] = np
	}
	if !m.started || b > m.watermark {
		m.watermark, m.started = b, true
		m.prune()
	}
	// The windows holding the post that still count: ending at most LateLimit behind the
	// watermark, and not after it.
	from, to := max(b, m.watermark-m.lateBuckets()), min(b+shortBuckets-1, m.watermark)
	if from > to {
		m.late++
		return nil
	}
	if !evaluate {
		return nil
	}
	var out []*events.TrendDetected
	for _, t := range np.tags {
		// The latest window first (for a live post the only one: the current window); the
		// first trend is enough, the cooldown refuses the others.
		for k := to; k >= from; k-- {
			if tr := m.evaluate(t, k); tr != nil {
				out = append(out, tr)
				break
			}
		}
	}
	return out
}

// tagNames are the distinct tag names of a revision, sorted.
func tagNames(tags []events.Tag) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t.Name != "" && !slices.Contains(out, t.Name) {
			out = append(out, t.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (m *Machine) remove(p *post) {
	for _, t := range p.tags {
		ts := m.tags[t]
		if ts == nil {
			continue
		}
		delete(ts.buckets[p.bucket], p.key)
		if len(ts.buckets[p.bucket]) == 0 {
			delete(ts.buckets, p.bucket)
		}
	}
	delete(m.posts, p.key)
	if m.held[p.bucket]--; m.held[p.bucket] <= 0 {
		delete(m.held, p.bucket)
	}
}

// prune forgets the buckets no evaluation can read any more: windows end at most
// LateLimit behind the watermark and look back 24 h from there.
func (m *Machine) prune() {
	oldest := m.oldestKept()
	for _, p := range m.posts {
		if p.bucket < oldest {
			m.remove(p)
		}
	}
	cooled := m.watermark - m.lateBuckets() - int64(m.cfg.Cooldown/Bucket) - shortBuckets
	for t, ts := range m.tags {
		i := 0
		for i < len(ts.fired) && ts.fired[i] < cooled {
			i++
		}
		ts.fired = ts.fired[i:]
		if len(ts.buckets) == 0 && len(ts.fired) == 0 {
			delete(m.tags, t)
		}
	}
}

// evaluate decides whether tag t trends in the window ending with bucket k.
func (m *Machine) evaluate(t string, k int64) *events.TrendDetected {
	ts := m.tags[t]
	cool := int64(m.cfg.Cooldown / Bucket)
	for _, f := range ts.fired {
		if f > k-cool && f < k+cool {
			return nil
		}
	}
	var inWindow []*post
	baseline := 0
	for b, posts := range ts.buckets {
		switch {
		case b > k || b <= k-longBuckets:
		case b > k-shortBuckets:
			for _, p := range posts {
				inWindow = append(inWindow, p)
			}
		default:
			baseline += len(posts)
		}
	}
	count := len(inWindow)
	if count < m.cfg.MinCount {
		return nil
	}
	var channels []events.ChannelID
	for _, p := range inWindow {
		if !slices.Contains(channels, p.channel) {
			channels = append(channels, p.channel)
		}
	}
	if len(channels) < m.cfg.MinChannels {
		return nil
	}
	// The baseline spans the 23 h before the window, or the part of them the machine holds
	// history for (a young log): the history starts at the oldest post held. Too short a
	// history is no baseline.
	from := k - longBuckets + 1
	if len(m.held) > 0 {
		from = max(from, slices.Min(slices.Collect(maps.Keys(m.held))))
	}
	hours := float64(k-shortBuckets+1-from) / bucketsPerHour
	if hours < m.cfg.MinHistory.Hours() || hours <= 0 {
		return nil
	}
	rate := float64(baseline) / hours
	expected := rate * float64(Short/time.Hour)
	score := (float64(count) - expected) / math.Sqrt(expected+1)
	if score < m.cfg.MinScore {
		return nil
	}
	m.fire(ts, k)
	slices.Sort(channels)
	end := bucketStart(k + 1)
	return &events.TrendDetected{
		Tag:         t,
		Window:      WindowName,
		WindowStart: end.Add(-Short),
		WindowEnd:   end,
		Count:       count,
		Channels:    channels,
		Baseline:    rate,
		Expected:    expected,
		Score:       score,
		Posts:       m.samples(inWindow),
		Method:      Method,
	}
}

// samples picks at most MaxSamples posts: the earliest post of each channel first (the
// channels in order of their earliest post), then the next earliest.
func (m *Machine) samples(posts []*post) []string {
	slices.SortFunc(posts, func(a, b *post) int {
		if c := a.postedAt.Compare(b.postedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	var out []string
	seen := map[events.ChannelID]bool{}
	for _, p := range posts {
		if len(out) < m.cfg.MaxSamples && !seen[p.channel] {
			seen[p.channel] = true
			out = append(out, p.key)
		}
	}
	for _, p := range posts {
		if len(out) < m.cfg.MaxSamples && !slices.Contains(out, p.key) {
			out = append(out, p.key)
		}
	}
	return out
}

// Event is the trends.detected fact of a trend: its id derives from the tag, the window and
// its end, so the same trend found again (a replay) is the same fact.
func Event(t *events.TrendDetected) events.Event {
	return events.New(events.ProducerTrends, t, t.WindowEnd)
}
