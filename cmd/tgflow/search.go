package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"golang.org/x/term"

	"github.com/tgflow/tgflow/internal/config"
	"github.com/tgflow/tgflow/internal/embeddedpg"
	"github.com/tgflow/tgflow/projections/qdrant"
	"github.com/tgflow/tgflow/services"
	"github.com/tgflow/tgflow/services/api"
	"github.com/tgflow/tgflow/services/embedder"
	"github.com/tgflow/tgflow/services/projsvc"
	"github.com/tgflow/tgflow/services/search"
)

func init() {
	register(command{
		name: "search",
		args: "QUERY [--channel C] [--tag T] [--topic T] [--since DATE] [--until DATE] [--limit N] [--json] | --related CHANNEL/ID [--limit N] [--json]",
		doc:  "search posts: Postgres full-text (russian/english), fused with Qdrant semantic search when TGFLOW_QDRANT_ADDR is set; --related lists posts connected in Neo4j",
		run:  runSearch,
	})
}

// readModels are the read models a reading command reaches, each nil when not configured.
type readModels struct {
	Pool    *pgxpool.Pool
	Schema  string
	Service *search.Service
	closers []func()
}

func (r *readModels) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// openReadModels connects to the configured read models: Postgres through a read-only
// session (api.ReadOnlyPool), Qdrant with the query embedder of the pipeline's own
// configuration (TGFLOW_EMBEDDER and its model: the vector space the collection holds),
// Neo4j for related posts.
func openReadModels(ctx context.Context, a *app, b *config.Base, log *slog.Logger) (*readModels, error) {
	// Laptop mode: the embedded Postgres of the data dir (the running dev's, or started here
	// and stopped on Close); none when dev never created one.
	pgSrv, err := laptopPostgres(ctx, a, b, log, false)
	if err != nil && !errors.Is(err, embeddedpg.ErrNoCluster) {
		return nil, err
	}
	var pc projsvc.PostgresConfig
	var qc projsvc.QdrantConfig
	var nc projsvc.Neo4jConfig
	if err := errors.Join(config.Load(&pc, a.env), config.Load(&qc, a.env), config.Load(&nc, a.env)); err != nil {
		return nil, errors.Join(err, pgSrv.Close())
	}
	r := &readModels{Service: &search.Service{}, Schema: pc.Schema}
	r.closers = append(r.closers, func() {
		if err := pgSrv.Close(); err != nil {
			log.Error("embedded Postgres did not stop cleanly", "err", err)
		}
	})
	if pc.URL != "" {
		pool, err := api.ReadOnlyPool(ctx, pc.URL.Reveal())
		if err != nil {
			return nil, fmt.Errorf("env: TGFLOW_POSTGRES_URL: %w", err)
		}
		r.closers = append(r.closers, pool.Close)
		r.Pool = pool
		pg := search.Postgres{DB: pool, Schema: pc.Schema}
		r.Service.FullText, r.Service.Hydrator = pg, pg
	}
	if qc.Addr != "" {
		client, err := qdrant.Dial(qc.Addr)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.closers = append(r.closers, func() {
			if err := client.Close(); err != nil {
				log.Warn("close the Qdrant client", "err", err)
			}
		})
		emb, err := embedder.Open(ctx, qc.Embedder, b.DataDir, log, nil)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("the query embedder: %w", err)
		}
		r.Service.Semantic, r.Service.Embedder = &search.Qdrant{Client: client, Base: qc.Alias}, emb
	}
	if nc.URI != "" {
		auth := nd.NoAuth()
		if nc.User != "" {
			auth = nd.BasicAuth(nc.User, nc.Password.Reveal(), "")
		}
		driver, err := nd.NewDriverWithContext(nc.URI, auth)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("env: TGFLOW_NEO4J_URI: %w", err)
		}
		r.closers = append(r.closers, func() {
			if err := driver.Close(context.WithoutCancel(ctx)); err != nil {
				log.Warn("close the Neo4j driver", "err", err)
			}
		})
		r.Service.Graph = search.Neo4j{Driver: driver}
	}
	return r, nil
}

// parseInterspersed parses flags placed anywhere among the positional arguments
// (`tgflow search go релиз --limit 3`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runSearch(ctx context.Context, a *app, args []string) error {
	fs := newFlags("search", a)
	channel := fs.String("channel", "", "only posts of this channel (@name or id)")
	tag := fs.String("tag", "", "only posts with this tag")
	topic := fs.String("topic", "", "only posts about this topic")
	since := fs.String("since", "", "only posts at or after this date (2006-01-02 or RFC 3339)")
	until := fs.String("until", "", "only posts before this date")
	limit := fs.Int("limit", search.DefaultLimit, fmt.Sprintf("results, 1..%d", search.MaxLimit))
	asJSON := fs.Bool("json", false, "print a JSON array")
	related := fs.String("related", "", "list posts related to CHANNEL/ID in Neo4j instead of searching")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *related == "" && len(pos) == 0 {
		return fmt.Errorf("%w: tgflow search QUERY [flags] | --related CHANNEL/ID", errUsage)
	}
	if *related != "" && len(pos) > 0 {
		return fmt.Errorf("%w: --related takes no query", errUsage)
	}
	q := search.Query{Text: strings.Join(pos, " "), Filter: search.Filter{Tag: *tag, Topic: *topic}, Limit: *limit}
	var errs []error
	var errDate error
	if q.Since, errDate = search.ParseDate("--since", *since); errDate != nil {
		errs = append(errs, errDate)
	}
	if q.Until, errDate = search.ParseDate("--until", *until); errDate != nil {
		errs = append(errs, errDate)
	}
	if q.ChannelID, q.ChannelUsername, err = search.ParseChannel(*channel); err != nil {
		errs = append(errs, err)
	}
	if *related == "" {
		if err := q.Normalize(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	rm, err := openReadModels(ctx, a, b, log)
	if err != nil {
		return err
	}
	defer rm.Close()
	if *related != "" {
		rel, err := rm.Service.Related(ctx, *related, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(a.stdout, rel)
		}
		printRelated(a.stdout, rel)
		return nil
	}
	if rm.Service.FullText == nil && rm.Service.Semantic == nil {
		return fmt.Errorf("%w: search needs TGFLOW_POSTGRES_URL (full-text) or TGFLOW_QDRANT_ADDR (semantic)", services.ErrNotConfigured)
	}
	res, err := rm.Service.Search(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(a.stdout, res.Hits)
	}
	printHits(a.stdout, res, isTerminal(a.stdout))
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// marked renders an excerpt with its highlights: bold on a terminal, **word** otherwise.
func marked(h search.Hit, tty bool) string {
	open, close := "**", "**"
	if tty {
		open, close = "\x1b[1m", "\x1b[0m"
	}
	var b strings.Builder
	for _, s := range search.Segments(h.Excerpt, h.Highlights) {
		if s.Mark {
			b.WriteString(open + s.Text + close)
		} else {
			b.WriteString(s.Text)
		}
	}
	return b.String()
}

func channelName(h search.Hit) string {
	name := h.ChannelTitle
	if name == "" {
		name = h.ChannelID.String()
	}
	if h.ChannelUsername != "" {
		name += " @" + h.ChannelUsername
	}
	return name
}

func printHits(w io.Writer, res search.Result, tty bool) {
	if len(res.Hits) == 0 {
		fmt.Fprintf(w, "nothing found (%s)\n", strings.Join(res.Backends, " + "))
		return
	}
	for i, h := range res.Hits {
		fmt.Fprintf(w, "%d. %s · %s · %s %.4f\n", i+1, channelName(h), h.Date.UTC().Format("2006-01-02 15:04"), h.Backend, h.Score)
		fmt.Fprintf(w, "   %s\n", marked(h, tty))
		if len(h.Tags) > 0 {
			fmt.Fprintf(w, "   #%s\n", strings.Join(h.Tags, " #"))
		}
		fmt.Fprintf(w, "   %s\n", h.Link)
	}
}

func printRelated(w io.Writer, rel []search.Related) {
	if len(rel) == 0 {
		fmt.Fprintln(w, "no related post")
		return
	}
	for i, r := range rel {
		fmt.Fprintf(w, "%d. %s · %s · weight %.0f · %s\n", i+1, channelName(r.Hit), r.Date.UTC().Format("2006-01-02"), r.Weight, r.Link)
		if r.Excerpt != "" {
			fmt.Fprintf(w, "   %s\n", r.Excerpt)
		}
		for _, p := range r.Path {
			fmt.Fprintf(w, "   via %s\n", p)
		}
	}
}
