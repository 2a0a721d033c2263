package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/projsvc"
)

// skipped is a service that did not start because it is not configured.
type skipped struct {
	name string
	err  error
}

// reason is what turns the service on, e.g. "TGFLOW_QDRANT_ADDR is not set".
func (s skipped) reason() string {
	return strings.TrimPrefix(s.err.Error(), services.ErrNotConfigured.Error()+": ")
}

// printSkipped says once which services are off and which variable turns each on.
func printSkipped(w io.Writer, off []skipped) {
	if len(off) == 0 {
		return
	}
	fmt.Fprintln(w, "not running (not configured; the variable named turns it on):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, s := range off {
		fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.reason())
	}
	tw.Flush()
}

// summaryInput is what printSummary reports on besides the log.
type summaryInput struct {
	consumers    []string
	dataDir      string // laptop mode's data dir; empty for a single service
	natsURL      string
	embeddedPort int  // TGFLOW_EMBEDDED_PORT: where a long-running dev serves NATS
	external     bool // NATS is TGFLOW_NATS_URL's, not embedded
	pg           *embeddedpg.Server
	off          []skipped
	env          map[string]string
}

// pgCounts are the rows of the Postgres read model the summary shows.
type pgCounts struct {
	checkpoint                                      uint64
	channels, posts                                 int
	taggedPosts, tags, distinctTags, topicPosts     int
	pagesFetched                                    int
	pagesFailed                                     []reasonCount
	embedded                                        int
	embedModels                                     []string
	images, imagesOCR, albums, trends, pagesOfPosts int
	topTag                                          string
}

type reasonCount struct {
	reason string
	n      int
}

// countPostgres reads the counts of the read model in schema.
func countPostgres(ctx context.Context, dsn, schema string) (*pgCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		// pgx errors can echo the URL: say only where it failed.
		return nil, fmt.Errorf("connect to %s", config.URLs(dsn))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return nil, err
	}
	var c pgCounts
	var cp *int64
	one := []struct {
		sql  string
		dest []any
	}{
		{`SELECT max(seq) FROM projection_checkpoints`, []any{&cp}},
		{`SELECT count(*) FROM channels`, []any{&c.channels}},
		{`SELECT count(*) FROM posts WHERE version IS NOT NULL AND deleted_at IS NULL`, []any{&c.posts}},
		{`SELECT count(DISTINCT (channel_id, message_id)), count(*), count(DISTINCT tag) FROM post_tags`, []any{&c.taggedPosts, &c.tags, &c.distinctTags}},
		{`SELECT count(DISTINCT (channel_id, message_id)) FROM post_topics`, []any{&c.topicPosts}},
		{`SELECT count(*) FILTER (WHERE fetched_at IS NOT NULL) FROM pages`, []any{&c.pagesFetched}},
		{`SELECT count(DISTINCT (channel_id, message_id)) FROM post_pages`, []any{&c.pagesOfPosts}},
		{`SELECT count(*) FROM post_embeddings`, []any{&c.embedded}},
		{`SELECT count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE coalesce(ocr_text, '') <> '') FROM post_vision`, []any{&c.images, &c.imagesOCR}},
		{`SELECT count(*) FROM albums`, []any{&c.albums}},
		{`SELECT count(*) FROM trends`, []any{&c.trends}},
		{`SELECT coalesce((SELECT tag FROM post_tags GROUP BY tag ORDER BY count(*) DESC, tag LIMIT 1), '')`, []any{&c.topTag}},
	}
	for _, q := range one {
		if err := conn.QueryRow(ctx, q.sql).Scan(q.dest...); err != nil {
			return nil, fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	if cp != nil {
		c.checkpoint = uint64(*cp)
	}
	// The failure code of a page where the schema has one (error_reason), else its message.
	rows, err := conn.Query(ctx, `SELECT coalesce(nullif(to_jsonb(p)->>'error_reason', ''), error, 'unknown'), count(*)
		FROM pages p WHERE fetched_at IS NULL GROUP BY 1 ORDER BY 2 DESC, 1`)
	if err != nil {
		return nil, err
	}
	c.pagesFailed, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (reasonCount, error) {
		var rc reasonCount
		return rc, r.Scan(&rc.reason, &rc.n)
	})
	if err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT provider || coalesce(' ' || nullif(model, ''), '') || ', ' || dim || ' dims' FROM post_embeddings GROUP BY provider, model, dim ORDER BY count(*) DESC`)
	if err != nil {
		return nil, err
	}
	if c.embedModels, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, err
	}
	return &c, nil
}

// factCounts counts the log's facts by type (the subject without its last token), from the
// stream's subject counts: no consumer is created.
func factCounts(ctx context.Context, s jetstream.Stream) (map[string]int, map[string]int, *jetstream.StreamInfo, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return nil, nil, nil, err
	}
	facts := map[string]int{}
	subjects := map[string]int{} // distinct subjects per type, e.g. channels with posts
	for subj, n := range info.State.Subjects {
		typ := subj
		if i := strings.LastIndexByte(subj, '.'); i > 0 {
			typ = subj[:i]
		}
		facts[typ] += int(n)
		subjects[typ]++
	}
	return facts, subjects, info, nil
}

// printSummary writes what the run left: the facts of the log and the rows of the Postgres
// read model side by side, the DLQ, the lag of every consumer, where the data lives and what
// to try next.
func printSummary(ctx context.Context, w io.Writer, js jetstream.JetStream, in summaryInput) error {
	s, err := js.Stream(ctx, topology.LogStream)
	if err != nil {
		return err
	}
	facts, subjects, info, err := factCounts(ctx, s)
	if err != nil {
		return err
	}
	dls, err := worker.ListDeadLetters(ctx, js, "", 0)
	if err != nil {
		return err
	}
	dlqCount := map[string]int{}
	for _, d := range dls {
		dlqCount[d.Consumer]++
	}
	var pgCfg projsvc.PostgresConfig
	var pgc *pgCounts
	var pgErr error
	if err := config.Load(&pgCfg, in.env); err != nil {
		pgErr = err
	} else if pgCfg.URL != "" {
		pgc, pgErr = countPostgres(ctx, pgCfg.URL.Reveal(), pgCfg.Schema)
	}

	fmt.Fprintf(w, "\nlog %s: %d facts, %d bytes, last seq %d; DLQ: %d\n", topology.LogStream, info.State.Msgs, info.State.Bytes, info.State.LastSeq, len(dls))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	pgCol := "POSTGRES (" + pgCfg.Schema + ")"
	switch {
	case pgErr != nil:
		pgCol = "POSTGRES: " + pgErr.Error()
	case pgc == nil:
		pgCol = "POSTGRES: off (TGFLOW_POSTGRES_URL is not set)"
	}
	fmt.Fprintf(tw, "\tFACTS IN THE LOG\t%s\n", pgCol)
	row := func(what string, logN string, pg func(*pgCounts) string) {
		v := ""
		if pgc != nil {
			v = pg(pgc)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", what, logN, v)
	}
	n := func(k string) string { return fmt.Sprint(facts[k]) }
	row("channels", fmt.Sprintf("%d with posts", subjects["posts.parsed"]), func(c *pgCounts) string { return fmt.Sprint(c.channels) })
	row("posts", n("posts.parsed"), func(c *pgCounts) string { return fmt.Sprint(c.posts) })
	if facts["posts.edited"]+facts["posts.deleted"] > 0 {
		row("  edits, deletions", fmt.Sprintf("%d, %d", facts["posts.edited"], facts["posts.deleted"]), func(*pgCounts) string { return "" })
	}
	row("tagged", n("posts.tagged"), func(c *pgCounts) string {
		return fmt.Sprintf("%d posts, %d tags (%d distinct)", c.taggedPosts, c.tags, c.distinctTags)
	})
	row("enriched", n("posts.enriched"), func(c *pgCounts) string {
		var failed []string
		total := 0
		for _, r := range c.pagesFailed {
			failed = append(failed, fmt.Sprintf("%s %d", r.reason, r.n))
			total += r.n
		}
		out := fmt.Sprintf("%d posts with links; pages: %d fetched, %d failed", c.pagesOfPosts, c.pagesFetched, total)
		if len(failed) > 0 {
			out += " (" + strings.Join(failed, ", ") + ")"
		}
		return out
	})
	row("embedded", n("posts.embedded"), func(c *pgCounts) string {
		if len(c.embedModels) == 0 {
			return fmt.Sprintf("%d, %d posts with topics", c.embedded, c.topicPosts)
		}
		return fmt.Sprintf("%d (%s), %d posts with topics", c.embedded, strings.Join(c.embedModels, "; "), c.topicPosts)
	})
	row("images analysed", n("posts.vision.analyzed")+" posts", func(c *pgCounts) string {
		return fmt.Sprintf("%d images, %d with OCR text", c.images, c.imagesOCR)
	})
	row("albums", n("albums.assembled"), func(c *pgCounts) string { return fmt.Sprint(c.albums) })
	row("trends", n("trends.detected"), func(c *pgCounts) string { return fmt.Sprint(c.trends) })
	row("DLQ", fmt.Sprint(len(dls)), func(*pgCounts) string { return "" })
	row("applied up to", fmt.Sprintf("seq %d (the head)", info.State.LastSeq), func(c *pgCounts) string {
		if c.checkpoint < info.State.LastSeq {
			return fmt.Sprintf("seq %d (%d behind)", c.checkpoint, info.State.LastSeq-c.checkpoint)
		}
		return fmt.Sprintf("seq %d (up to date)", c.checkpoint)
	})
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(in.consumers) > 0 {
		fmt.Fprintln(w)
		consumers := slices.Sorted(slices.Values(in.consumers))
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONSUMER\tDELIVERED\tACK FLOOR\tLAG\tREDELIVERED\tDLQ")
		for _, name := range consumers {
			ci, err := consumerInfo(ctx, js, name)
			if err != nil {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d\t(%v)\n", name, dlqCount[name], err)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending+uint64(ci.NumAckPending), ci.NumRedelivered, dlqCount[name])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "(lag: facts not yet delivered plus delivered and not yet acknowledged)")
	}
	if in.dataDir == "" {
		return nil
	}
	printWhereAndNext(w, in, pgCfg, pgc)
	return nil
}

// printWhereAndNext says where the data lives and which commands to try next.
func printWhereAndNext(w io.Writer, in summaryInput, pgCfg projsvc.PostgresConfig, pgc *pgCounts) {
	dir := absPath(in.dataDir)
	fmt.Fprintln(w, "\nwhere the data lives:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  data dir\t%s\n", dir)
	natsURL := in.natsURL
	if in.external {
		fmt.Fprintf(tw, "  log (NATS)\t%s\n", config.URLs(natsURL))
	} else {
		if in.embeddedPort != 0 {
			natsURL = fmt.Sprintf("nats://127.0.0.1:%d", in.embeddedPort)
		}
		fmt.Fprintf(tw, "  log (NATS)\t%s (the log's files; served at %s while tgflow dev runs)\n", filepath.Join(dir, "jetstream"), natsURL)
	}
	switch {
	case in.pg != nil:
		fmt.Fprintf(tw, "  Postgres\t%s, schema %s: embedded PostgreSQL %s run as %s, data in %s (stopped with dev, reused by the next command; %s holds the URL while it runs)\n",
			config.URLs(in.pg.URL()), pgCfg.Schema, embeddedpg.Version, in.pg.RunsAs(), in.pg.DataPath(), embeddedpg.URLFile(laptopPostgresDir(dir)))
	case pgCfg.URL != "":
		fmt.Fprintf(tw, "  Postgres\t%s, schema %s\n", config.URLs(pgCfg.URL.Reveal()), pgCfg.Schema)
	}
	for _, s := range in.off {
		if strings.HasPrefix(s.name, "proj-") {
			fmt.Fprintf(tw, "  %s\toff: %s\n", strings.TrimPrefix(s.name, "proj-"), s.reason())
		}
	}
	if err := tw.Flush(); err != nil {
		return
	}

	fmt.Fprintln(w, "\nnext:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	env := ""
	if in.dataDir != defaultDataDir {
		env = "TGFLOW_DATA_DIR=" + shellQuote(in.dataDir) + " "
	}
	has := map[string]bool{}
	for _, c := range commands() {
		has[c.name] = true
	}
	if has["search"] && pgc != nil {
		q := "telegram"
		if pgc.topTag != "" {
			q = pgc.topTag
		}
		fmt.Fprintf(tw, "  %stgflow search %s\tsearch the posts (Postgres full text; semantic with TGFLOW_QDRANT_ADDR)\n", env, shellQuote(q))
	}
	if has["api"] {
		fmt.Fprintf(tw, "  %stgflow api\tthe JSON API and the web page, on http://127.0.0.1:8080\n", env)
	}
	fmt.Fprintf(tw, "  %stgflow projections status\teach read model's checkpoint against the log\n", env)
	fmt.Fprintf(tw, "  %stgflow dev\tkeep everything running (Ctrl-C stops it); meanwhile, with the nats CLI:\n", env)
	for _, r := range []string{
		"stream info TGFLOW\tthe log",
		"stream subjects TGFLOW 'posts.>'\tfacts per subject",
		"stream view TGFLOW --subject 'posts.tagged.>'\tread facts (headers carry the CloudEvents attributes)",
		"consumer report TGFLOW\tlag of every stage",
	} {
		fmt.Fprintf(tw, "    nats -s %s %s\n", natsURL, r)
	}
	tw.Flush()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '=' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
