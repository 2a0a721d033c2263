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
// passes, every message parsed twice and every event built. msgs/s counts messages of the
// file per second of the whole operation.
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
	b.Run("open+facts", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			e, err := export.Open(dir)
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
	})
}
