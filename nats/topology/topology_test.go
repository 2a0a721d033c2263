package topology_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
)

var update = flag.Bool("update", false, "rewrite the committed JSON files under nats/")

const natsDir = "../"

func TestCommittedFilesMatchCode(t *testing.T) {
	if *update {
		if err := topology.WriteFiles(natsDir); err != nil {
			t.Fatal(err)
		}
	}
	files, err := topology.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(natsDir, f.Path))
		if err != nil {
			t.Fatalf("%v (run: go test ./nats/topology -run TestCommittedFilesMatchCode -update)", err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("nats/%s differs from the code (run: go test ./nats/topology -run TestCommittedFilesMatchCode -update)", f.Path)
		}
	}
	// No stale files either.
	var onDisk []string
	for _, sub := range []string{"streams", "consumers"} {
		_ = filepath.Walk(filepath.Join(natsDir, sub), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && strings.HasSuffix(p, ".json") {
				rel, _ := filepath.Rel(natsDir, p)
				onDisk = append(onDisk, rel)
			}
			return nil
		})
	}
	for _, p := range onDisk {
		if !slices.ContainsFunc(files, func(f topology.File) bool { return f.Path == p }) {
			t.Errorf("nats/%s is not declared in code", p)
		}
	}
}

// The committed files decode strictly into the server's own config types, which is what
// `nats stream add --config` and `nats consumer add --config` send to the server.
func TestCommittedFilesDecodeIntoServerTypes(t *testing.T) {
	files, err := topology.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.Path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(natsDir, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if strings.HasPrefix(f.Path, "streams") {
				var cfg server.StreamConfig
				if err := dec.Decode(&cfg); err != nil {
					t.Fatalf("not a server StreamConfig: %v", err)
				}
				if cfg.Retention != server.LimitsPolicy || cfg.MaxAge != 0 || cfg.Storage != server.FileStorage {
					t.Errorf("stream %s: retention %v, max age %v, storage %v", cfg.Name, cfg.Retention, cfg.MaxAge, cfg.Storage)
				}
				return
			}
			var cfg server.ConsumerConfig
			if err := dec.Decode(&cfg); err != nil {
				t.Fatalf("not a server ConsumerConfig: %v", err)
			}
			if cfg.Durable == "" || cfg.Durable != cfg.Name || cfg.AckPolicy != server.AckExplicit {
				t.Errorf("consumer %q: durable %q, ack policy %v", cfg.Name, cfg.Durable, cfg.AckPolicy)
			}
		})
	}
}

func TestLogIsNeverTrimmedByConsumers(t *testing.T) {
	cfg := topology.LogStreamConfig()
	if cfg.Retention.String() != "Limits" || cfg.MaxAge != 0 || !cfg.DenyDelete || !cfg.DenyPurge {
		t.Fatalf("log stream: retention %v, max age %v, deny delete %v, deny purge %v", cfg.Retention, cfg.MaxAge, cfg.DenyDelete, cfg.DenyPurge)
	}
	if cfg.Duplicates < 10*60e9 {
		t.Fatalf("duplicate window %v < 10m", cfg.Duplicates)
	}
}

func TestEveryFactTypeHasExactlyOneProducer(t *testing.T) {
	stages := map[string]bool{events.ProducerCLI: true} // the CLI publishes subscription commands
	for _, c := range topology.Consumers() {
		if c.Kind == topology.KindStage {
			if stages[c.Producer] {
				t.Errorf("producer %s is declared by two stages", c.Producer)
			}
			stages[c.Producer] = true
		}
	}
	subjects := map[string]events.Type{}
	for _, s := range events.Specs() {
		if !stages[s.Producer] {
			t.Errorf("%s is produced by %q, which is not a stage", s.Type, s.Producer)
		}
		if other, dup := subjects[s.Subject]; dup {
			t.Errorf("%s and %s share subject %s", s.Type, other, s.Subject)
		}
		subjects[s.Subject] = s.Type
		// No filter of one type may match another type's subjects.
		for _, o := range events.Specs() {
			if o.Type != s.Type && server.SubjectsCollide(s.Filter(), o.Filter()) {
				t.Errorf("filters of %s and %s overlap", s.Type, o.Type)
			}
		}
	}
	// Exactly one producer per type: in the registry a Spec has one Producer field, so check
	// the other direction — every stage produces something.
	for p := range stages {
		if len(events.Produces(p)) == 0 {
			t.Errorf("stage %s produces no fact type", p)
		}
	}
}

func TestEveryConsumerFilterMatchesAProducedFact(t *testing.T) {
	stream := topology.LogStreamConfig()
	for _, c := range topology.Consumers() {
		for _, f := range c.Filters() {
			inStream := slices.ContainsFunc(stream.Subjects, func(s string) bool { return server.SubjectsCollide(f, s) })
			if !inStream {
				t.Errorf("consumer %s filter %s is outside the log's subjects", c.Name, f)
			}
			if strings.HasPrefix(f, topology.ReplayPrefix+".") {
				if f != topology.ReplaySubject(c.Name, ">") {
					t.Errorf("consumer %s replay filter %s", c.Name, f)
				}
				continue
			}
			if !slices.ContainsFunc(events.Specs(), func(s events.Spec) bool { return s.Filter() == f }) {
				t.Errorf("consumer %s filter %s matches no produced fact", c.Name, f)
			}
		}
	}
}

// Consumer names are constants of the topology, never generated at run time: the old
// system minted a name per restart and leaked hundreds of consumers.
func TestConsumerNamesAreFixed(t *testing.T) {
	nameRE := regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	first, second := topology.Consumers(), topology.Consumers()
	seen := map[string]bool{}
	for i, c := range first {
		if c.Name != second[i].Name {
			t.Fatalf("consumer names differ between calls: %s vs %s", c.Name, second[i].Name)
		}
		if !nameRE.MatchString(c.Name) {
			t.Errorf("consumer name %q is not a fixed kebab-case name", c.Name)
		}
		if seen[c.Name] {
			t.Errorf("consumer %s declared twice", c.Name)
		}
		seen[c.Name] = true
		cfg := c.Config()
		if cfg.Durable != c.Name || cfg.Name != c.Name {
			t.Errorf("consumer %s: durable %q name %q", c.Name, cfg.Durable, cfg.Name)
		}
		if c.Kind == topology.KindProjection && !regexp.MustCompile(`-v[0-9]+$`).MatchString(c.Name) {
			t.Errorf("projection consumer %s has no version suffix", c.Name)
		}
	}
}

func TestApplyTwiceReportsNoChange(t *testing.T) {
	env := natstest.Start(t) // applies streams and buckets
	ctx := context.Background()
	first, err := topology.Apply(ctx, env.JS, topology.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, c := range first {
		if c.Kind == "consumer" && c.Action == topology.Created {
			created++
		}
	}
	if created != len(topology.Consumers()) {
		t.Fatalf("first apply created %d consumers, want %d:\n%v", created, len(topology.Consumers()), first)
	}
	second, err := topology.Apply(ctx, env.JS, topology.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Changed() {
		var b bytes.Buffer
		second.Print(&b)
		t.Fatalf("second apply changed something:\n%s", b.String())
	}
	var b bytes.Buffer
	second.Print(&b)
	if !strings.Contains(b.String(), "no change") {
		t.Fatalf("report does not say no change:\n%s", b.String())
	}
}

func TestApplyReportsAnUpdate(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	c, _ := topology.LookupConsumer(topology.ConsumerTagger)
	if _, err := topology.ApplyConsumer(ctx, env.JS, c); err != nil {
		t.Fatal(err)
	}
	cfg := c.Config()
	cfg.MaxAckPending = 7
	if _, err := env.JS.CreateOrUpdateConsumer(ctx, topology.LogStream, cfg); err != nil {
		t.Fatal(err)
	}
	ch, err := topology.ApplyConsumer(ctx, env.JS, c)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Action != topology.Updated || !slices.Contains(ch.Fields, "max_ack_pending") {
		t.Fatalf("change = %+v, want updated max_ack_pending", ch)
	}
}
