package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/internal/tracing"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/importer"
	"github.com/tgflow/tgflow/testdata/sample"
)

const defaultMaxMediaBytes = 50 << 20

func runImport(ctx context.Context, a *app, args []string) error {
	fs := newFlags("import", a)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: tgflow import PATH (a result.json or the export folder)", errUsage)
	}
	b, log, err := a.base()
	if err != nil {
		return err
	}
	// Validate the whole file before connecting: a malformed export publishes nothing. The
	// validation pass spools what it parsed (in TMPDIR, unlinked at once), so the import
	// publishes from the spool instead of parsing the file a second time.
	x, err := export.Open(fs.Arg(0), export.Spool(""))
	if err != nil {
		return err
	}
	defer x.Close()
	c, err := connect(ctx, b, "import", log)
	if err != nil {
		return err
	}
	defer c.Close()
	shutdownTracing, err := tracing.Setup(ctx, a.env, "import")
	if err != nil {
		return err
	}
	defer func() {
		if err := shutdownTracing(context.WithoutCancel(ctx)); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}()
	res, err := importExport(ctx, c.JS, x, log)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printImport(a.stdout, res)
	return nil
}

func importExport(ctx context.Context, js jetstream.JetStream, x *export.Export, log *slog.Logger) (importer.Result, error) {
	im, err := importer.New(ctx, js, log, defaultMaxMediaBytes)
	if err != nil {
		return importer.Result{}, err
	}
	return im.Import(ctx, x)
}

// importSample loads the bundled sample channels (tgflow dev --sample).
func importSample(ctx context.Context, js jetstream.JetStream, w io.Writer, log *slog.Logger) error {
	x, err := export.OpenFS(sample.FS, sample.Root)
	if err != nil {
		return fmt.Errorf("bundled sample: %w", err)
	}
	defer x.Close()
	res, err := importExport(ctx, js, x, log)
	if err != nil {
		return fmt.Errorf("bundled sample: %w", err)
	}
	fmt.Fprint(w, "sample: ")
	printImport(w, res)
	return nil
}

func printImport(w io.Writer, r importer.Result) {
	st := r.Stats
	fmt.Fprintf(w, "%d channel(s), %d messages, %d posts, %d albums: published %d facts, %d already in the log, in %s\n",
		st.Channels, st.Messages, st.Posts, st.Albums, r.Published, r.Unchanged, r.Duration.Round(1e6))
	printCounts(w, "chats skipped", st.ChatsSkipped)
	printCounts(w, "messages skipped", st.Skipped)
	printCounts(w, "media not stored", st.MediaSkipped)
}

func printCounts(w io.Writer, what string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "  %s:", what)
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, m[k])
	}
	fmt.Fprintln(w)
}
