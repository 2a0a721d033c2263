package postgres_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/postgres"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

// indexes lists the indexes of schema's tables as "table: definition" with the schema name
// taken out, so two schemas can be compared.
func indexes(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT tablename || ': ' || replace(indexdef, $1 || '.', '')
FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'goose_db_version' ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A new shadow is filled in bulk mode (secondary indexes deferred), survives being resumed by
// another handle, equals a live model built normally, and Swap builds every index of the
// migrations before it goes live.
func TestBulkShadow(t *testing.T) {
	ctx := context.Background()
	pool, s, want := withReference(t)
	wantIdx := indexes(t, pool, "reference")
	if !strings.Contains(strings.Join(wantIdx, "\n"), "posts_posted_at") {
		t.Fatalf("reference indexes lack posts_posted_at: %v", wantIdx)
	}

	live := newProjection(t, pool, "tgflow")
	apply(t, live, s.Until(s.Deletion), 5)
	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shIdx := indexes(t, pool, "tgflow_shadow")
	if len(shIdx) >= len(wantIdx) || strings.Contains(strings.Join(shIdx, "\n"), "posts_posted_at") {
		t.Fatalf("bulk shadow kept its secondary indexes: %v", shIdx)
	}
	for _, keep := range []string{"posts_pkey", "channels_username_key", "channels_id_key", "pipeline_progress_pkey"} {
		if !strings.Contains(strings.Join(shIdx, "\n"), keep) {
			t.Errorf("bulk shadow lacks %s: %v", keep, shIdx)
		}
	}
	half := len(s.Facts) / 2
	apply(t, sh, s.Facts[:half], 4)
	_ = sh.Close()

	// Resumed by another handle: still in bulk mode, nothing re-created or dropped.
	resumed, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, pool, "tgflow_shadow"); strings.Join(got, "\n") != strings.Join(shIdx, "\n") {
		t.Fatalf("resumed shadow indexes = %v, want %v", got, shIdx)
	}
	apply(t, resumed, s.Facts[half-3:], 6)
	assertSame(t, want, snapshot(t, resumed))

	if err := live.Swap(ctx, resumed); err != nil {
		t.Fatalf("swap: %v", err)
	}
	if got := indexes(t, pool, "tgflow"); strings.Join(got, "\n") != strings.Join(wantIdx, "\n") {
		t.Fatalf("indexes after swap:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantIdx, "\n"))
	}
	if tableExists(t, pool, "tgflow.projection_deferred_indexes") {
		t.Fatal("the deferred index table went live")
	}
	// The swapped-out live model was never in bulk mode and keeps its indexes.
	if got := indexes(t, pool, "tgflow_old_1"); strings.Join(got, "\n") != strings.Join(wantIdx, "\n") {
		t.Fatalf("old live indexes = %v", got)
	}
	assertSame(t, want, snapshot(t, live))
	// The live model keeps applying with its indexes.
	extra := projections.Fact{Seq: s.Facts[len(s.Facts)-1].Seq + 1, Event: parsed(events.PostRef{ChannelID: 9, MessageID: 9}, "late", 0, 50)}
	if err := live.Apply(ctx, []projections.Fact{extra}); err != nil {
		t.Fatal(err)
	}
}

// A shadow that already holds facts (left by a version without bulk mode) is not put in
// bulk mode: its indexes stay.
func TestNonEmptyShadowKeepsIndexes(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	s := projectiontest.NewScript()
	live := newProjection(t, pool, "tgflow")
	old := newProjection(t, pool, "tgflow_shadow") // a plain handle, as an older version made it
	apply(t, old, s.Facts[:5], 5)
	want := indexes(t, pool, "tgflow_shadow")
	sh, err := live.Shadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, pool, "tgflow_shadow"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("indexes of a resumed non-empty shadow changed: %v", got)
	}
	apply(t, sh, s.Facts, 7)
	if err := live.Swap(ctx, sh); err != nil {
		t.Fatal(err)
	}
	if got := indexes(t, pool, "tgflow"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("indexes after swap = %v", got)
	}
}

// The contract suite on a shadow in bulk mode.
func TestContractBulkShadow(t *testing.T) {
	projectiontest.Run(t, projectiontest.Harness{
		New: func(t *testing.T) projections.Projection {
			live := newProjection(t, newPool(t), "tgflow")
			sh, err := live.Shadow(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return sh
		},
		Expect: expectScript,
	})
}

// The contract suite with every new row loaded by COPY (live batches are too small for it).
func TestContractCopy(t *testing.T) {
	t.Cleanup(postgres.SetCopyMinRows(1))
	TestContract(t)
}

// New rows are loaded with COPY in text format: every character that format escapes, and
// values that look like its markers, survive; floats keep every bit. Loaded by statements,
// the same values arrive the same.
func TestCopyEscaping(t *testing.T) {
	for _, tt := range []struct {
		name    string
		minRows int
	}{{"copy", 1}, {"statements", 1 << 30}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(postgres.SetCopyMinRows(tt.minRows))
			testEscaping(t)
		})
	}
}

func testEscaping(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pool := newPool(t)
	p := newProjection(t, pool, "tgflow")
	nasty := "tab\there\nnewline\r\ncrlf back\\slash \\N \\. end\\"
	ref := events.PostRef{ChannelID: 5, MessageID: 6}
	post := &events.PostParsed{Post: events.Post{PostRef: ref, Date: tmin(0), Text: nasty, Links: []string{nasty, `q"uote,{}`},
		Hashtags: []string{"NULL", ""}, Entities: []events.Entity{{Type: "url", URL: nasty}}}}
	score := math.Nextafter(0.1, 1)
	tagged := &events.PostTagged{PostRef: ref, Trigger: events.TriggerInitial, Tags: []events.Tag{{Name: nasty, Score: score}}, Provider: "p\tq"}
	fs := facts(events.New(events.ProducerIngest, post, tmin(1), "1"), events.New(events.ProducerTagger, tagged, tmin(2), "2"))
	if err := p.Apply(ctx, fs); err != nil {
		t.Fatal(err)
	}
	var text string
	var links, hashtags []string
	var ents string
	err := pool.QueryRow(ctx, `SELECT text, links, hashtags, entities::text FROM tgflow.posts WHERE channel_id = 5`).Scan(&text, &links, &hashtags, &ents)
	if err != nil {
		t.Fatal(err)
	}
	if text != nasty || len(links) != 2 || links[0] != nasty || links[1] != `q"uote,{}` || len(hashtags) != 2 || hashtags[0] != "NULL" || hashtags[1] != "" {
		t.Fatalf("posts row = %q %q %q", text, links, hashtags)
	}
	if !strings.Contains(ents, `tab\there\nnewline\r\ncrlf back\\slash`) {
		t.Errorf("entities = %s", ents)
	}
	var tag, provider string
	var gotScore float64
	if err := pool.QueryRow(ctx, `SELECT tag, score, provider FROM tgflow.post_tags`).Scan(&tag, &gotScore, &provider); err != nil {
		t.Fatal(err)
	}
	if tag != nasty || gotScore != score || provider != "p\tq" {
		t.Fatalf("post_tags row = %q %v %q", tag, gotScore, provider)
	}
}
