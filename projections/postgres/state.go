package postgres

import (
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// stored is what the read model holds for the row keys of one batch. It is read inside the
// batch's transaction after the checkpoint row is locked FOR UPDATE, so no other writer can
// change it before the commit: acceptance is decided in Go from it, and the writes are plain
// inserts for new rows, updates for existing ones and deletes only where old rows exist.
type stored struct {
	posts    map[key]postState
	progress map[key]*progressRow
	pages    map[string]pageState
}

type postState struct {
	hasVersion bool
	version    int64
	metricsAt  time.Time // zero: NULL
	deletedAt  time.Time // zero: NULL
}

// The derived stages tracked by pipeline_progress, in column order.
const (
	stageVision = iota
	stageTagged
	stageEnriched
	stageEmbedded
	numStages
)

var stageNames = [numStages]string{"vision", "tagged", "enriched", "embedded"}

type stageRev struct {
	set bool
	rev events.Rev
	at  time.Time
}

// progressRow is one pipeline_progress row; zero times are NULL.
type progressRow struct {
	parsedAt   time.Time
	hasVersion bool
	version    int64
	versionAt  time.Time
	stages     [numStages]stageRev
}

type pageState struct {
	fetchedAt, errorAt time.Time // zero: NULL
}

// batchKeys are the keys a batch may touch, from every fact (a superset of the facts above
// the checkpoint, which are not known until the checkpoint is read in the same round trip).
type batchKeys struct {
	posts, progress map[key]bool
	pages           map[string]bool
}

func keysOf(facts []projections.Fact) batchKeys {
	k := batchKeys{posts: map[key]bool{}, progress: map[key]bool{}, pages: map[string]bool{}}
	for _, f := range facts {
		switch p := f.Event.Data.(type) {
		case *events.PostParsed:
			k.posts[keyOf(p.PostRef)], k.progress[keyOf(p.PostRef)] = true, true
		case *events.PostEdited:
			k.posts[keyOf(p.PostRef)], k.progress[keyOf(p.PostRef)] = true, true
		case *events.PostMetrics:
			k.posts[keyOf(p.PostRef)] = true
		case *events.PostDeleted:
			k.posts[keyOf(p.PostRef)] = true
		case *events.PostVisionAnalyzed:
			k.progress[keyOf(p.PostRef)] = true
		case *events.PostTagged:
			k.progress[keyOf(p.PostRef)] = true
		case *events.PostEnriched:
			k.progress[keyOf(p.PostRef)] = true
			for _, pg := range p.Pages {
				k.pages[pg.URL] = true
			}
		case *events.PostEmbedded:
			k.progress[keyOf(p.PostRef)] = true
		}
	}
	return k
}

func keyCols(keys map[key]bool) *cols {
	ks := sortedKeys(keys)
	ch, msg := make([]int64, len(ks)), make([]int64, len(ks))
	for i, k := range ks {
		ch[i], msg[i] = k.ch, k.msg
	}
	var c cols
	c.add("channel_id", "bigint", ch)
	c.add("message_id", "bigint", msg)
	return &c
}

// queueReads queues the reads of the stored state of keys into b; st is filled when the
// batch's results are read.
func queueReads(b *pgx.Batch, keys batchKeys, st *stored) {
	st.posts, st.progress, st.pages = map[key]postState{}, map[key]*progressRow{}, map[string]pageState{}
	if len(keys.posts) > 0 {
		c := keyCols(keys.posts)
		b.Queue(`SELECT x.channel_id, x.message_id, x.version, x.metrics_at, x.deleted_at FROM `+c.from()+
			` JOIN posts x ON x.channel_id = t.channel_id AND x.message_id = t.message_id`, c.args...).Query(func(rows pgx.Rows) error {
			var k key
			var v pgtype.Int8
			var m, d pgtype.Timestamptz
			dest := []any{&k.ch, &k.msg, &v, &m, &d}
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				st.posts[k] = postState{hasVersion: v.Valid, version: v.Int64, metricsAt: tsOf(m), deletedAt: tsOf(d)}
			}
			return rows.Err()
		})
	}
	if len(keys.progress) > 0 {
		c := keyCols(keys.progress)
		b.Queue(`SELECT x.channel_id, x.message_id, x.parsed_at, x.version, x.version_at,
  x.vision_version, x.vision_revision, x.vision_at, x.tagged_version, x.tagged_revision, x.tagged_at,
  x.enriched_version, x.enriched_revision, x.enriched_at, x.embedded_version, x.embedded_revision, x.embedded_at
FROM `+c.from()+` JOIN pipeline_progress x ON x.channel_id = t.channel_id AND x.message_id = t.message_id`, c.args...).Query(func(rows pgx.Rows) error {
			var k key
			var parsed, versionAt pgtype.Timestamptz
			var version pgtype.Int8
			var sv [numStages]pgtype.Int8
			var sr [numStages]pgtype.Int4
			var sa [numStages]pgtype.Timestamptz
			dest := []any{&k.ch, &k.msg, &parsed, &version, &versionAt}
			for i := range numStages {
				dest = append(dest, &sv[i], &sr[i], &sa[i])
			}
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				r := &progressRow{parsedAt: tsOf(parsed), hasVersion: version.Valid, version: version.Int64, versionAt: tsOf(versionAt)}
				for i := range numStages {
					if sv[i].Valid {
						r.stages[i] = stageRev{set: true, rev: events.Rev{Version: sv[i].Int64, Revision: int(sr[i].Int32)}, at: tsOf(sa[i])}
					}
				}
				st.progress[k] = r
			}
			return rows.Err()
		})
	}
	if len(keys.pages) > 0 {
		urls := make([]string, 0, len(keys.pages))
		for u := range keys.pages {
			urls = append(urls, u)
		}
		var c cols
		c.add("url", "text", urls)
		b.Queue(`SELECT x.url, x.fetched_at, x.error_at FROM `+c.from()+` JOIN pages x ON x.url = t.url`, c.args...).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var u string
				var f, e pgtype.Timestamptz
				if err := rows.Scan(&u, &f, &e); err != nil {
					return err
				}
				st.pages[u] = pageState{fetchedAt: tsOf(f), errorAt: tsOf(e)}
			}
			return rows.Err()
		})
	}
}

func tsOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
