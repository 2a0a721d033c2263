package importer_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/export/exporttest"
	"github.com/tgflow/tgflow/services/ingest/importer"
)

// BenchmarkImport100k: messages/s from an export file of 100k messages to acknowledged
// facts, against publishing the same facts, pre-built, in the same run.
func BenchmarkImport100k(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "result.json")
	if err := os.WriteFile(path, exporttest.Generate(n), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	// Import.
	env := natstest.Start(b)
	im := newImporter(b, env)
	start := time.Now()
	x, err := export.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	res, err := im.Import(ctx, x)
	if err != nil {
		b.Fatal(err)
	}
	importSecs := time.Since(start).Seconds()

	// The same facts, pre-built, published to a fresh log.
	var evs []events.Event
	for ev, err := range x.Facts(ctx, nil) {
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	x.Close()
	env2 := natstest.Start(b)
	start = time.Now()
	if err := importer.PublishAll(ctx, env2.JS, evs); err != nil {
		b.Fatal(err)
	}
	pubSecs := time.Since(start).Seconds()

	b.ReportMetric(float64(res.Stats.Messages)/importSecs, "import_msgs/s")
	b.ReportMetric(float64(len(evs))/pubSecs, "prebuilt_facts/s")
	b.ReportMetric((float64(res.Published)/importSecs)/(float64(len(evs))/pubSecs), "ratio")
}
