package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

const (
	benchPosts    = 100_000
	benchBatch    = 20000
	benchChannels = 200
	benchWave     = 250
)

// BenchmarkRebuild replays the facts of 100k posts (parsed, tagged, enriched, embedded each,
// interleaved the way the stages lag behind ingest) the way a rebuild does: into a new shadow
// schema (bulk mode: secondary indexes deferred), through Apply in batches of 20000 (what `tgflow projections rebuild postgres` uses), then Swap
// (which builds the deferred indexes) makes it live. Then it loads the rows the rebuild
// produced, table by table, with COPY FROM STDIN (text format, the whole table in one COPY):
//
//   - plain:   into tables of the same columns, no keys, no indexes (the cost of just loading
//     the same rows; no real load can do without the keys);
//   - keys:    into tables with the same columns, constraints, primary keys and unique
//     indexes, but without the secondary indexes;
//   - schema:  the same as keys, then the secondary indexes built (the cheapest way to get
//     the same tables, indexes included: what bulk mode does);
//   - indexed: into tables with every key and index (LIKE … INCLUDING ALL).
//
// Metrics: facts/s is the rebuild throughput (wall clock of the Apply and Swap calls only;
// ns/op also counts generating the facts); vs-<baseline> is COPY time / rebuild time. The
// *-server-cpu metrics use the CPU time of the server backend instead of the wall clock (read
// from /proc when the server runs on this machine), which a busy shared machine disturbs less.
//
//	go test ./projections/postgres/ -run '^$' -bench Rebuild -benchtime=1x
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	// One connection: Apply and COPY run on the same server backend, whose CPU time is read
	// from /proc when the server is local (the wall clock of a shared machine is noisy).
	pool := newPool(b)
	cfg := pool.Config()
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var pid uint32
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		live := newProjection(b, pool, fmt.Sprintf("bench_%d", i))
		sh, err := live.Shadow(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// Only Apply is timed: generating the next batch stands in for reading it from the log.
		log := newBenchLog(benchPosts)
		var applied, client, server time.Duration
		cpuOK := true
		for {
			batch := log.next(benchBatch)
			if batch == nil {
				break
			}
			cpu0, ok := backendCPU(pid)
			cpuOK = cpuOK && ok
			client0, start := clientCPU(), time.Now()
			if err := sh.Apply(ctx, batch); err != nil {
				b.Fatalf("apply at seq %d: %v", batch[0].Seq, err)
			}
			applied += time.Since(start)
			client += clientCPU() - client0
			cpu1, _ := backendCPU(pid)
			server += cpu1 - cpu0
		}
		cpu0, ok := backendCPU(pid)
		cpuOK = cpuOK && ok
		client0, start := clientCPU(), time.Now()
		if err := live.Swap(ctx, sh); err != nil {
			b.Fatal(err)
		}
		swap := time.Since(start)
		applied += swap
		client += clientCPU() - client0
		cpu1, _ := backendCPU(pid)
		server += cpu1 - cpu0
		b.StopTimer()

		base := copyBaselines(b, pool, pid, live.Schema(), fmt.Sprintf("raw_%d", i))
		n := float64(log.total())
		b.ReportMetric(n/applied.Seconds(), "facts/s")
		b.ReportMetric(float64(base[0].rows), "rows")
		b.Logf("%d facts rebuilt in %v (%.0f facts/s; Swap with its index builds %v; client CPU %v, server CPU %v); "+
			"the %d rows they produced load with COPY:", log.total(), applied.Round(time.Millisecond), n/applied.Seconds(),
			swap.Round(time.Millisecond), client.Round(time.Millisecond), server, base[0].rows)
		for _, c := range base {
			b.ReportMetric(c.wall.Seconds()/applied.Seconds(), "vs-"+c.name+"-copy")
			line := fmt.Sprintf("  %-8s %8v wall (ratio %.2f)", c.name, c.wall.Round(time.Millisecond), c.wall.Seconds()/applied.Seconds())
			if cpuOK {
				b.ReportMetric(c.cpu.Seconds()/server.Seconds(), "vs-"+c.name+"-copy-server-cpu")
				line += fmt.Sprintf(", %8v server CPU (ratio %.2f)", c.cpu, c.cpu.Seconds()/server.Seconds())
			}
			b.Log(line)
		}
		if cpuOK {
			b.ReportMetric(n/server.Seconds(), "facts/server-cpu-s")
		}
		b.StartTimer()
	}
}

// copyResult is one COPY baseline: the rows loaded, the wall time and the server CPU time.
type copyResult struct {
	name      string
	rows      int64
	wall, cpu time.Duration
}

// copyBaselines copies every content table of schema out (untimed) and back in with COPY FROM
// STDIN (timed) into the baselines described at BenchmarkRebuild: plain, keys, schema and
// indexed, in that order.
func copyBaselines(b *testing.B, pool *pgxpool.Pool, pid uint32, schema, raw string) []copyResult {
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	pg := conn.Conn().PgConn()
	res := []copyResult{{name: "plain"}, {name: "keys"}, {name: "schema"}, {name: "indexed"}}
	like := []string{"", " INCLUDING ALL", " INCLUDING ALL", " INCLUDING ALL"}
	for _, c := range res {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+raw+"_"+c.name); err != nil {
			b.Fatal(err)
		}
	}
	timed := func(res *copyResult, f func() error) {
		cpu0, _ := backendCPU(pid)
		start := time.Now()
		err := f()
		res.wall += time.Since(start)
		cpu1, _ := backendCPU(pid)
		res.cpu += cpu1 - cpu0
		if err != nil {
			b.Fatal(err)
		}
	}
	var secondary []string // CREATE INDEX statements of the schema baseline
	for _, t := range []string{"channels", "posts", "post_media", "media_objects", "albums", "album_items", "post_tags",
		"post_topics", "post_vision", "pages", "post_pages", "post_embeddings", "trends", "pipeline_progress"} {
		src := pgx.Identifier{schema, t}.Sanitize()
		var buf bytes.Buffer
		if _, err := pg.CopyTo(ctx, &buf, "COPY "+src+" TO STDOUT"); err != nil {
			b.Fatal(err)
		}
		for k := range res {
			dst := pgx.Identifier{raw + "_" + res[k].name, t}.Sanitize()
			if _, err := conn.Exec(ctx, "CREATE TABLE "+dst+" (LIKE "+src+like[k]+")"); err != nil {
				b.Fatal(err)
			}
			if res[k].name == "keys" || res[k].name == "schema" {
				// Drop the secondary indexes (what bulk mode defers); schema rebuilds them below.
				rows, err := conn.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = $1::regclass AND NOT i.indisunique AND NOT i.indisprimary`, dst)
				if err != nil {
					b.Fatal(err)
				}
				var drop []string
				for rows.Next() {
					var name, def string
					if err := rows.Scan(&name, &def); err != nil {
						b.Fatal(err)
					}
					drop = append(drop, name)
					if res[k].name == "schema" {
						secondary = append(secondary, def)
					}
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				for _, d := range drop {
					if _, err := conn.Exec(ctx, "DROP INDEX "+d); err != nil {
						b.Fatal(err)
					}
				}
			}
			timed(&res[k], func() error {
				tag, err := pg.CopyFrom(ctx, bytes.NewReader(buf.Bytes()), "COPY "+dst+" FROM STDIN")
				res[k].rows += tag.RowsAffected()
				return err
			})
		}
	}
	for _, def := range secondary {
		timed(&res[2], func() error {
			_, err := conn.Exec(ctx, def)
			return err
		})
	}
	return res
}

// clientCPU is the CPU time of this process so far.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the user+system CPU time of a local server process, from /proc.
func backendCPU(pid uint32) (time.Duration, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, false
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * time.Second / 100, true // USER_HZ is 100 on Linux
}

// benchLog generates the log of n posts wave by wave, the way a replay streams it: every
// post is parsed, tagged, enriched and embedded; each stage lags the one before by a wave of
// 250 posts, so a batch mixes the four types. Only a few waves are in memory at a time.
type benchLog struct {
	n, wave, seq int
	rng          *rand.Rand
	texts        []string
	pageTexts    []string
	vocab        []string
	vector       []float32
	ring         [4][]benchPost
	buf          []projections.Fact
}

type benchPost struct {
	ref                      events.PostRef
	parsed, tagged, enriched events.Event
}

func newBenchLog(n int) *benchLog {
	l := &benchLog{n: n, rng: rand.New(rand.NewPCG(1, 2))}
	words := strings.Fields(`выборы экономика рынок нефть курс рубль доллар банк ставка инфляция AI chips cloud market
	election policy energy gas sanctions export import budget tax reform court law police city weather sport football
	науку космос запуск спутник технологии стартап инвестиции биржа акции облигации кризис рост падение прогноз`)
	l.texts = make([]string, 512)
	for i := range l.texts {
		var sb strings.Builder
		for sb.Len() < 180+l.rng.IntN(300) {
			sb.WriteString(words[l.rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		l.texts[i] = strings.TrimSpace(sb.String())
	}
	l.pageTexts = make([]string, 64)
	for i := range l.pageTexts {
		l.pageTexts[i] = strings.Repeat(l.texts[i]+". ", 3)
	}
	l.vocab = make([]string, 300)
	for i := range l.vocab {
		l.vocab[i] = fmt.Sprintf("%s-%d", words[i%len(words)], i/len(words))
	}
	l.vector = make([]float32, 384)
	for i := range l.vector {
		l.vector[i] = l.rng.Float32()
	}
	return l
}

// total is the number of facts the log holds.
func (l *benchLog) total() int { return 4 * l.n }

// next returns the next batch of at most size facts, nil at the end.
func (l *benchLog) next(size int) []projections.Fact {
	waves := (l.n + benchWave - 1) / benchWave
	for len(l.buf) < size && l.wave < waves+3 {
		l.emitWave(waves)
	}
	out := l.buf[:min(size, len(l.buf))]
	l.buf = l.buf[len(out):]
	if len(l.buf) == 0 {
		l.buf = nil
	}
	return out
}

func (l *benchLog) emitWave(waves int) {
	w := l.wave
	l.wave++
	if w < waves {
		cur := make([]benchPost, 0, benchWave)
		for j := range benchWave {
			if i := w*benchWave + j; i < l.n {
				cur = append(cur, l.post(i))
			}
		}
		l.ring[w%4] = cur
	}
	add := func(e events.Event) {
		l.seq++
		l.buf = append(l.buf, projections.Fact{Seq: uint64(l.seq), Event: e})
	}
	for j := range benchWave {
		if w < waves && j < len(l.ring[w%4]) {
			add(l.ring[w%4][j].parsed)
		}
		if v := w - 1; v >= 0 && v < waves && j < len(l.ring[v%4]) {
			add(l.ring[v%4][j].tagged)
		}
		if v := w - 2; v >= 0 && v < waves && j < len(l.ring[v%4]) {
			add(l.ring[v%4][j].enriched)
		}
		if v := w - 3; v >= 0 && v < waves && j < len(l.ring[v%4]) {
			p := l.ring[v%4][j]
			add(events.Derive(p.enriched, events.ProducerEmbedder, &events.PostEmbedded{PostRef: p.ref, Vector: l.vector,
				Provider: "hashing", Model: "fh-384"}, p.enriched.Time.Add(time.Second)))
		}
	}
}

func (l *benchLog) post(i int) benchPost {
	rng, base := l.rng, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ch := events.ChannelID(1_000_000 + i%benchChannels)
	ref := events.PostRef{ChannelID: ch, MessageID: int64(i/benchChannels + 1)}
	date := base.Add(time.Duration(i) * 7 * time.Second)
	pp := &events.PostParsed{Post: events.Post{PostRef: ref, ChannelUsername: fmt.Sprintf("chan_%d", i%benchChannels), Date: date,
		Text: l.texts[rng.IntN(len(l.texts))], Views: int64(rng.IntN(50_000)), Forwards: int64(rng.IntN(100)), Origin: "telegram"}}
	if rng.IntN(2) == 0 {
		u := fmt.Sprintf("https://site%d.example/news/%d", i%5000, i)
		if rng.IntN(5) == 0 {
			u = fmt.Sprintf("https://popular%d.example/", rng.IntN(500))
		}
		pp.Links = []string{u}
		pp.Entities = []events.Entity{{Type: "url", Offset: 0, Length: 10}}
	}
	if rng.IntN(3) == 0 {
		pp.Hashtags = []string{l.vocab[rng.IntN(len(l.vocab))]}
	}
	if rng.IntN(2) == 0 {
		pp.Reactions = map[string]int64{"👍": int64(rng.IntN(500)), "🔥": int64(rng.IntN(50))}
	}
	if rng.IntN(10) < 3 {
		sum := sha256.Sum256([]byte(ref.Key()))
		sha := hex.EncodeToString(sum[:])
		pp.Media = []events.Media{{Kind: events.MediaPhoto, MIME: "image/jpeg", Size: int64(50_000 + rng.IntN(500_000)),
			Width: 1280, Height: 720, SHA256: sha, ObjectKey: sha}}
	}
	p := benchPost{ref: ref}
	p.parsed = events.New(events.ProducerIngest, pp, date.Add(time.Second), "0")
	var tags []events.Tag
	for range 1 + rng.IntN(5) {
		tags = append(tags, events.Tag{Name: l.vocab[rng.IntN(len(l.vocab))], Score: rng.Float64()})
	}
	tp := &events.PostTagged{PostRef: ref, Trigger: events.TriggerInitial, Tags: tags, ChannelUsername: pp.ChannelUsername,
		PostedAt: date, Text: pp.Text, Links: pp.Links, Provider: "keyword"}
	p.tagged = events.Derive(p.parsed, events.ProducerTagger, tp, date.Add(5*time.Second))
	names := make([]string, len(tags))
	for j, t := range tags {
		names[j] = t.Name
	}
	var pages []events.Page
	for _, u := range pp.Links {
		pg := events.Page{URL: u, Domain: strings.Split(strings.TrimPrefix(u, "https://"), "/")[0]}
		if rng.IntN(100) < 85 {
			pg.FinalURL, pg.Status, pg.Title, pg.Lang = u, 200, "Title of "+u, "ru"
			pg.Text, pg.FetchedAt = l.pageTexts[rng.IntN(len(l.pageTexts))], date.Add(8*time.Second)
		} else {
			pg.Error = "timeout after 10s"
		}
		pages = append(pages, pg)
	}
	p.enriched = events.Derive(p.tagged, events.ProducerEnricher, &events.PostEnriched{PostRef: ref, Tags: names,
		ChannelUsername: pp.ChannelUsername, PostedAt: date, Text: pp.Text, Pages: pages}, date.Add(10*time.Second))
	return p
}
