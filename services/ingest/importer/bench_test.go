package importer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/services/ingest/export"
	"github.com/tgflow/tgflow/services/ingest/export/exporttest"
	"github.com/tgflow/tgflow/services/ingest/importer"
)

// EnvBenchMessages overrides the export size of BenchmarkImport100k (a quick look on a
// busy machine: TGFLOW_BENCH_IMPORT_MESSAGES=20000).
const EnvBenchMessages = "TGFLOW_BENCH_IMPORT_MESSAGES"

// writeExport writes an export of n generated messages and returns its path.
func writeExport(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "result.json")
	if err := os.WriteFile(path, exporttest.Generate(n), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkImport100k: messages/s from an export file of 100k messages to acknowledged
// facts, against publishing the same facts, pre-built, in the same run. open_share is the
// part of the import spent in export.Open (the validation pass, before anything is published).
func BenchmarkImport100k(b *testing.B) {
	n := 100_000
	if v := os.Getenv(EnvBenchMessages); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q is not a positive number", EnvBenchMessages, v)
		}
	}
	path := writeExport(b, n)
	ctx := context.Background()

	// Import.
	env := natstest.Start(b)
	im := newImporter(b, env)
	start := time.Now()
	x, err := export.Open(path, export.Spool(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	openSecs := time.Since(start).Seconds()
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
	b.ReportMetric(openSecs/importSecs, "open_share")
	b.ReportMetric(float64(len(evs))/pubSecs, "prebuilt_facts/s")
	b.ReportMetric((float64(res.Published)/importSecs)/(float64(len(evs))/pubSecs), "ratio")
}

// BenchmarkImportMemory imports exports of two sizes (each into a fresh log) and reports,
// for each, the bytes allocated per message and the peak of the live heap (as marked by each GC)
// (sampled every few ms; the embedded server shares the process, so its share is in it).
// The export is streamed, the ledger written in bounded groups: the peak must not follow
// the export's size. The server's part does follow it within the log's duplicate window
// (it keeps every message id of the last 2 minutes), so each size runs twice: with the
// log's window, and with a 200 ms window, which leaves the importer's own part (and the
// server's fixed part). (The n=100000 case writes a 70 MB file.)
func BenchmarkImportMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, window := range []time.Duration{0, 200 * time.Millisecond} {
			name := fmt.Sprintf("messages=%d/dupwindow=", n)
			if window == 0 {
				name += "log"
			} else {
				name += window.String()
			}
			b.Run(name, func(b *testing.B) { importMemory(b, n, window) })
		}
	}
}

// importMemory imports an export of n messages b.N times; window (if not 0) is the log's
// duplicate window.
func importMemory(b *testing.B, n int, window time.Duration) {
	path := writeExport(b, n)
	ctx := context.Background()
	var total, peak uint64
	for range b.N {
		env := natstest.Start(b)
		if window > 0 {
			natstest.ShortDuplicateWindow(b, env, window)
		}
		im := newImporter(b, env)
		runtime.GC()
		stop := samplePeakHeap(&peak)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		x, err := export.Open(path, export.Spool(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		res, err := im.Import(ctx, x)
		if err != nil {
			b.Fatal(err)
		}
		if err := x.Close(); err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		stop()
		total += ms.TotalAlloc - before
		if res.Stats.Messages != n {
			b.Fatalf("imported %d messages, want %d", res.Stats.Messages, n)
		}
	}
	b.ReportMetric(float64(total)/float64(n*b.N), "B/msg")
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
	b.ReportMetric(0, "ns/op")
}

// samplePeakHeap records the largest live heap (bytes of heap objects) into *peak until
// the returned stop is called.
func samplePeakHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
