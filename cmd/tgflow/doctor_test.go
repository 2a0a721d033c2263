package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/doctor"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

func doctorJSON(t *testing.T, out string) doctor.Report {
	t.Helper()
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	return r
}

func stateOf(r doctor.Report, name string) string {
	for _, c := range r.Consumers {
		if c.Name == name {
			return strings.Join(c.States, ",")
		}
	}
	return "missing from the report"
}

// After a clean run of the sample, doctor finds nothing wrong (exit 0): every stage that
// ran is idle, the Postgres projection's checkpoint is the log head, the services not
// configured here (ingest, Qdrant, Neo4j) are "not running" though their consumers hold
// work, nothing is stuck or dead-lettered.
func TestDoctorHealthyAfterTheSample(t *testing.T) {
	dir := t.TempDir()
	env := []string{"TGFLOW_DATA_DIR=" + dir, "TGFLOW_POSTGRES_URL=" + testenv.NewPostgresDB(t)}
	if _, errOut, err := tgflow(t, env, "dev", "--sample", "--until-idle"); err != nil {
		t.Fatalf("dev: %v\n%s", err, errOut)
	}
	out, errOut, err := tgflow(t, env, "doctor", "--json", "--stuck-after", "0s", "--dead-after", "0s")
	if err != nil {
		t.Fatalf("doctor: %v\n%s\n%s", err, out, errOut)
	}
	r := doctorJSON(t, out)
	if !r.Healthy || len(r.Stuck) != 0 || r.DLQ.Total != 0 {
		t.Fatalf("after a clean sample run: healthy %v, stuck %d, DLQ %d, problems %+v", r.Healthy, len(r.Stuck), r.DLQ.Total, r.Problems)
	}
	for _, name := range []string{topology.ConsumerVision, topology.ConsumerTagger, topology.ConsumerEnricher, topology.ConsumerEmbedder, topology.ConsumerAlbums, topology.ConsumerTrends, topology.ConsumerProjPostgres} {
		if got := stateOf(r, name); got != doctor.StateIdle {
			t.Errorf("%s: %s, want idle", name, got)
		}
	}
	for _, name := range []string{topology.ConsumerIngest, topology.ConsumerProjQdrant, topology.ConsumerProjNeo4j} {
		if got := stateOf(r, name); got != doctor.StateNotRunning {
			t.Errorf("%s: %s, want not running", name, got)
		}
	}
	for _, p := range r.Projections {
		if p.Consumer == topology.ConsumerProjPostgres && (!p.Configured || p.Checkpoint == 0 || p.Checkpoint != p.AckFloor || p.Pending != 0) {
			t.Errorf("postgres projection after the run: %+v", p)
		}
	}
	if r.Storage.Disk == nil {
		t.Error("laptop mode: the free disk of the data dir is not reported")
	}
	// The text report says the same.
	text, _, err := tgflow(t, env, "doctor")
	if err != nil || !strings.Contains(text, "status: healthy") {
		t.Fatalf("doctor (text): %v\n%s", err, text)
	}
	// Naming a projection that did not run as expected here makes its consumer, which holds
	// every fact, dead: exit 1.
	out, _, err = tgflow(t, env, "doctor", "--json", "--services", "tagger,proj-neo4j", "--dead-after", "0s")
	if !errors.Is(err, errDoctorUnhealthy) || exitCode(err) != 1 {
		t.Fatalf("doctor --services proj-neo4j: %v (exit %d)", err, exitCode(err))
	}
	if got := stateOf(doctorJSON(t, out), topology.ConsumerProjNeo4j); got != doctor.StateDead {
		t.Fatalf("proj-neo4j-v1 expected here: %s, want dead", got)
	}
}

// A stage stopped while the others ran (the enricher): each tagged post is stuck before it,
// named with its missing step, and the enricher is dead; exit 1.
func TestDoctorStuckPostsWhenAStageIsStopped(t *testing.T) {
	dir := t.TempDir()
	env := []string{"TGFLOW_DATA_DIR=" + dir, "TGFLOW_POSTGRES_URL=" + testenv.NewPostgresDB(t)}
	if _, errOut, err := tgflow(t, env, "nats", "apply", "--all"); err != nil {
		t.Fatalf("nats apply: %v\n%s", err, errOut)
	}
	if _, errOut, err := tgflow(t, env, "dev", "--sample", "--until-idle", "--services", "vision,tagger,embedder,albums,trends,proj-postgres"); err != nil {
		t.Fatalf("dev without the enricher: %v\n%s", err, errOut)
	}
	out, _, err := tgflow(t, env, "doctor", "--json", "--stuck-after", "0s", "--max-stuck", "1000", "--dead-after", "0s")
	if !errors.Is(err, errDoctorUnhealthy) || exitCode(err) != 1 {
		t.Fatalf("doctor: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	r := doctorJSON(t, out)
	if got := stateOf(r, topology.ConsumerEnricher); got != doctor.StateDead {
		t.Errorf("enricher: %s, want dead", got)
	}
	if len(r.Stuck) == 0 {
		t.Fatal("no stuck post")
	}
	tagged := map[string]bool{}
	for _, s := range r.Stuck {
		if s.Step != topology.ConsumerEnricher || s.Type != events.TypePostTagged {
			t.Errorf("stuck %s at %s (%s): only the enricher's posts.tagged should be", s.Key, s.Step, s.Type)
		}
		tagged[s.Key] = true
	}
	// Every post the tagger tagged, and only those, is stuck (none is listed twice per version).
	facts := 0
	for _, c := range r.Consumers {
		if c.Name == topology.ConsumerEnricher {
			facts = int(c.Pending)
		}
	}
	if len(r.Stuck) != facts {
		t.Fatalf("%d stuck facts, the enricher has %d pending", len(r.Stuck), facts)
	}
	t.Logf("%d tagged facts of %d posts stuck before the enricher", len(r.Stuck), len(tagged))
}

// Exit status 2 when the server cannot be reached.
func TestDoctorCannotConnect(t *testing.T) {
	_, _, err := tgflow(t, []string{"TGFLOW_NATS_URL=nats://127.0.0.1:1"}, "doctor")
	if exitCode(err) != 2 || !strings.HasPrefix(err.Error(), "cannot connect: ") {
		t.Fatalf("err %v, exit %d; want exit 2", err, exitCode(err))
	}
}

// A consumer left behind by an old deployment, created by hand with the nats CLI's
// JetStream JSON API, is named as a leak with the command that removes it; exit 1.
func TestDoctorNamesALeakCreatedWithTheNatsCLI(t *testing.T) {
	nats := natsCLI(t)
	nenv := natstest.Start(t)
	tagger, _ := topology.LookupConsumer(topology.ConsumerTagger)
	if _, err := topology.ApplyConsumer(context.Background(), nenv.JS, tagger); err != nil {
		t.Fatal(err)
	}
	const leak = "tagger-1f2e3d4c"
	req := `{"stream_name":"TGFLOW","config":{"durable_name":"` + leak + `","ack_policy":"explicit","filter_subject":"posts.parsed.>"}}`
	cmd := exec.Command(nats, "req", "$JS.API.CONSUMER.CREATE.TGFLOW."+leak, req)
	cmd.Env = append(os.Environ(), "NATS_URL="+nenv.URL)
	if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), `"error"`) {
		t.Fatalf("nats req: %v\n%s", err, out)
	}
	env := []string{"TGFLOW_NATS_URL=" + nenv.URL}
	out, _, err := tgflow(t, env, "doctor", "--services", "tagger")
	if !errors.Is(err, errDoctorUnhealthy) || exitCode(err) != 1 {
		t.Fatalf("doctor: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	if !strings.Contains(out, "FAIL consumer "+leak+": unknown") || !strings.Contains(out, "nats consumer rm TGFLOW "+leak) {
		t.Fatalf("the leak is not named:\n%s", out)
	}
	// Removed with the command doctor gives, the system is healthy again.
	cmd = exec.Command(nats, "consumer", "rm", "TGFLOW", leak, "--force")
	cmd.Env = append(os.Environ(), "NATS_URL="+nenv.URL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nats consumer rm: %v\n%s", err, out)
	}
	if out, _, err := tgflow(t, env, "doctor", "--services", "tagger"); err != nil {
		t.Fatalf("doctor after the removal: %v\n%s", err, out)
	}
}
