package proctest_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tgflow/tgflow/cmd/tgflow/internal/proctest"
	"github.com/tgflow/tgflow/internal/testenv"
)

// TestFaultRunLosesNothing feeds one generated corpus twice: once while random service
// processes are SIGKILLed and restarted and the NATS server is killed and restarted once,
// once without faults. The faulted run ends with nothing pending on any consumer, an empty
// DLQ, exactly the topology's consumers, a Postgres model equal to a rebuild from its log
// (tgflow projections verify) and equal, section by section, to the fault-free run's.
func TestFaultRunLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every service as a process, twice")
	}
	dir := t.TempDir()
	bins := map[string]string{
		"tgflow": proctest.Build(t, dir, "github.com/tgflow/tgflow/cmd/tgflow"),
		"nats":   proctest.Build(t, dir, "github.com/nats-io/nats-server/v2"),
	}
	pages := proctest.PageServer()
	t.Cleanup(pages.Close)
	seed := uint64(time.Now().UnixNano())
	t.Logf("corpus seed %d", seed)
	// TGFLOW_FAULT_POSTS makes a long run (the test command's is short).
	posts := 300
	if v := os.Getenv("TGFLOW_FAULT_POSTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("TGFLOW_FAULT_POSTS=%q: want a number of posts >= 10", v)
		}
		posts = n
	}
	corpus := proctest.NewCorpus(proctest.CorpusOptions{Posts: posts, Channels: max(6, posts/200), PageURL: pages.URL, Seed: seed})
	t.Logf("corpus: %d posts, %d edits, %d deletions, %d albums, %d images, %d facts",
		corpus.Posts, corpus.Edits, corpus.Deletes, corpus.Albums, len(corpus.Images), len(corpus.Facts))

	faulted := proctest.RunCorpus(t, bins, corpus, testenv.NewPostgresDB(t), true, 0)
	clean := proctest.RunCorpus(t, bins, corpus, testenv.NewPostgresDB(t), false, 0)
	for _, d := range proctest.Compare(clean, faulted) {
		t.Error(d)
	}
}
