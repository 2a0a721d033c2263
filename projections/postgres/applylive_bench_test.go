package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkApplyLive applies the facts of 6000 posts (parsed, tagged, enriched, embedded
// each, interleaved as the stages lag behind ingest) to a live schema in the batch sizes a
// running proj-postgres sees (what waits when it is free, up to TGFLOW_PROJ_BATCH): the live
// path, where each Apply reads the stored state of the keys it touches and a post's facts
// mostly arrive in different batches. Metrics: facts/s over the Apply calls, ms per Apply,
// facts per CPU second of this process (Apply's own work) and of the server backend (read from /proc when the server runs on
// this machine; a busy shared machine disturbs it least).
//
//	go test ./projections/postgres/ -run '^$' -bench ApplyLive -benchtime=1x
func BenchmarkApplyLive(b *testing.B) {
	ctx := context.Background()
	cfg := newPool(b).Config()
	cfg.MaxConns = 1 // one server backend, whose CPU time is read
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var pid uint32
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{50, 150, 500, 2000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			for i := range b.N {
				p := newProjection(b, pool, fmt.Sprintf("live_%d_%d", size, i))
				log := newBenchLog(6000)
				var applied, server, client time.Duration
				cpuOK := true
				calls := 0
				for {
					batch := log.next(size)
					if batch == nil {
						break
					}
					cpu0, ok := backendCPU(pid)
					cpuOK = cpuOK && ok
					client0, start := clientCPU(), time.Now()
					if err := p.Apply(ctx, batch); err != nil {
						b.Fatalf("apply at seq %d: %v", batch[0].Seq, err)
					}
					applied += time.Since(start)
					client += clientCPU() - client0
					cpu1, _ := backendCPU(pid)
					server += cpu1 - cpu0
					calls++
				}
				n := float64(log.total())
				b.ReportMetric(n/applied.Seconds(), "facts/s")
				b.ReportMetric(float64(applied.Microseconds())/1000/float64(calls), "ms/apply")
				b.ReportMetric(n/client.Seconds(), "facts/client-cpu-s")
				if cpuOK {
					b.ReportMetric(n/server.Seconds(), "facts/server-cpu-s")
				}
			}
		})
	}
}
