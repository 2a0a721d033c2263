package export_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tgflow/tgflow/services/ingest/export"
)

// BenchmarkParse measures a generated 100k-message export on disk (about 140 MB): "open" is
// the validation pass alone; "open+facts" is the whole import without media bytes: both
// passes, every message parsed twice and every event built; "open+facts/spooled" the same with
// a spool (parsed once, Facts replays the spool). msgs/s counts messages of the file per
// second of the whole operation.
func BenchmarkParse(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	data := genExport(n)
	if err := os.WriteFile(filepath.Join(dir, "result.json"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	export.SetVerifyFast(false)
	defer export.SetVerifyFast(true)

	b.Run("open", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			e, err := export.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			_ = e.Close()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	for _, bc := range []struct {
		name string
		opts []export.Option
	}{
		{"open+facts", nil},
		{"open+facts/spooled", []export.Option{export.Spool(b.TempDir())}},
	} {
		b.Run(bc.name, func(b *testing.B) { openAndFacts(b, dir, n, len(data), bc.opts...) })
	}
}

// openAndFacts opens the export in dir and runs Facts to the end, b.N times.
func openAndFacts(b *testing.B, dir string, n, size int, opts ...export.Option) {
	b.SetBytes(int64(size))
	for b.Loop() {
		e, err := export.Open(dir, opts...)
		if err != nil {
			b.Fatal(err)
		}
		events := 0
		for _, err := range e.Facts(context.Background(), nil) {
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
		_ = e.Close()
		if st := e.Stats(); events != st.Posts+st.Albums {
			b.Fatalf("%d events, stats %+v", events, st)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
