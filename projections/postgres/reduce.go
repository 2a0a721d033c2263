package postgres

import (
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// key is a post key.
type key struct{ ch, msg int64 }

func keyOf(r events.PostRef) key { return key{int64(r.ChannelID), r.MessageID} }

type albumKey struct{ ch, grouped int64 }

type trendKey struct {
	tag, window string
	end         int64
}

// revised is the winning fact of one post for one stage: the newest Rev, the later fact on a
// tie. Facts come in ascending Seq, so "later" is simply "seen after".
type revised[T any] struct {
	rev events.Rev
	at  time.Time
	p   T
}

func keepNewest[T any](m map[key]*revised[T], k key, rev events.Rev, at time.Time, p T) {
	if old, ok := m[k]; ok && rev.Compare(old.rev) < 0 {
		return
	}
	m[k] = &revised[T]{rev: rev, at: at, p: p}
}

// content is the winning posts.parsed or posts.edited fact of a post: highest version, later
// fact on a tie.
type content struct {
	post   *events.Post
	at     time.Time
	parsed bool
}

// counters is the newest observation of a post's counters: latest observation time, later
// fact on a tie.
type counters struct {
	at                       time.Time
	views, forwards, replies int64
	reactions                map[string]int64
}

// pageObs is the newest observation of a page: a successful fetch (ordered by its fetch time)
// or a failed one (ordered by its time), later fact on a tie.
type pageObs struct {
	at   time.Time
	page events.Page
}

// reduced is one batch reduced to at most one winner per row key and table. Every field is
// a join over the facts (newest by a total order, or the minimum), so reducing a batch and
// then merging the winners into the stored rows by the same order gives the same rows as
// applying the facts one by one: batch boundaries do not matter.
type reduced struct {
	content   map[key]*content
	counters  map[key]*counters
	deleted   map[key]time.Time
	parsedAt  map[key]time.Time
	objects   map[string]events.Media
	vision    map[key]*revised[*events.PostVisionAnalyzed]
	tagged    map[key]*revised[*events.PostTagged]
	enriched  map[key]*revised[*events.PostEnriched]
	embedded  map[key]*revised[*events.PostEmbedded]
	pageOK    map[string]*pageObs
	pageErr   map[string]*pageObs
	albums    map[albumKey]*events.AlbumParsed
	assembled map[albumKey]*events.AlbumAssembled
	trends    map[trendKey]*revised[*events.TrendDetected]
	channels  []projections.Fact
}

func reduce(facts []projections.Fact) *reduced {
	r := &reduced{
		content:   map[key]*content{},
		counters:  map[key]*counters{},
		deleted:   map[key]time.Time{},
		parsedAt:  map[key]time.Time{},
		objects:   map[string]events.Media{},
		vision:    map[key]*revised[*events.PostVisionAnalyzed]{},
		tagged:    map[key]*revised[*events.PostTagged]{},
		enriched:  map[key]*revised[*events.PostEnriched]{},
		embedded:  map[key]*revised[*events.PostEmbedded]{},
		pageOK:    map[string]*pageObs{},
		pageErr:   map[string]*pageObs{},
		albums:    map[albumKey]*events.AlbumParsed{},
		assembled: map[albumKey]*events.AlbumAssembled{},
		trends:    map[trendKey]*revised[*events.TrendDetected]{},
	}
	for _, f := range facts {
		at := usec(f.Event.Time)
		switch p := f.Event.Data.(type) {
		case *events.ChannelSubscribed, *events.ChannelUnsubscribed, *events.ChannelSynced, *events.ChannelFailed:
			r.channels = append(r.channels, f)
		case *events.PostParsed:
			r.post(&p.Post, at, true)
		case *events.PostEdited:
			r.post(&p.Post, at, false)
		case *events.PostMetrics:
			r.observe(keyOf(p.PostRef), &counters{at: usec(p.ObservedAt), views: p.Views, forwards: p.Forwards, replies: p.Replies, reactions: p.Reactions})
		case *events.PostDeleted:
			k, t := keyOf(p.PostRef), usec(p.DeletedAt)
			if old, ok := r.deleted[k]; !ok || t.Before(old) {
				r.deleted[k] = t
			}
		case *events.PostVisionAnalyzed:
			keepNewest(r.vision, keyOf(p.PostRef), p.Rev, at, p)
		case *events.PostTagged:
			keepNewest(r.tagged, keyOf(p.PostRef), p.Rev, at, p)
		case *events.PostEnriched:
			keepNewest(r.enriched, keyOf(p.PostRef), p.Rev, at, p)
			for _, pg := range p.Pages {
				r.page(pg, at)
			}
		case *events.PostEmbedded:
			keepNewest(r.embedded, keyOf(p.PostRef), p.Rev, at, p)
		case *events.AlbumParsed:
			r.albums[albumKey{int64(p.ChannelID), p.GroupedID}] = p
		case *events.AlbumAssembled:
			r.assembled[albumKey{int64(p.ChannelID), p.GroupedID}] = p
		case *events.TrendDetected:
			r.trends[trendKey{p.Tag, p.Window, p.WindowEnd.Unix()}] = &revised[*events.TrendDetected]{at: at, p: p}
		}
		// Other (future) types are not used by this read model; the checkpoint still passes them.
	}
	return r
}

func (r *reduced) post(p *events.Post, at time.Time, parsed bool) {
	k := keyOf(p.PostRef)
	if old, ok := r.content[k]; !ok || p.Version() >= old.post.Version() {
		r.content[k] = &content{post: p, at: at, parsed: parsed}
	}
	if parsed {
		if old, ok := r.parsedAt[k]; !ok || at.Before(old) {
			r.parsedAt[k] = at
		}
	}
	r.observe(k, &counters{at: at, views: p.Views, forwards: p.Forwards, replies: p.Replies, reactions: p.Reactions})
	for _, m := range p.Media {
		if m.SHA256 == "" {
			continue
		}
		if _, seen := r.objects[m.SHA256]; !seen {
			r.objects[m.SHA256] = m
		}
	}
}

func (r *reduced) observe(k key, c *counters) {
	if old, ok := r.counters[k]; ok && c.at.Before(old.at) {
		return
	}
	r.counters[k] = c
}

func (r *reduced) page(pg events.Page, factAt time.Time) {
	at := usec(pg.FetchedAt)
	if pg.FetchedAt.IsZero() {
		at = factAt
	}
	m := r.pageOK
	if pg.Error != "" || pg.Reason != "" {
		m = r.pageErr
	}
	if old, ok := m[pg.URL]; ok && at.Before(old.at) {
		return
	}
	m[pg.URL] = &pageObs{at: at, page: pg}
}

// usec is t in UTC at the microsecond precision Postgres stores (pgx truncates), so that a time
// compared in Go equals the same time read back from the database.
func usec(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
