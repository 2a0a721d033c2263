package projsvc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/logx"
	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/nats/natstest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/nats/worker"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/services/projsvc"
)

// publishScript writes the contract script's facts to the log; it returns their log
// sequences in script order.
func publishScript(t *testing.T, js jetstream.JetStream, facts []projections.Fact) {
	t.Helper()
	for _, f := range facts {
		h, body, err := events.Encode(f.Event)
		if err != nil {
			t.Fatal(err)
		}
		subj, err := f.Event.NATSSubject(events.Default)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: subj, Header: nats.Header(h), Data: body}
		m.Header.Set(nats.MsgIdHdr, f.Event.ID)
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

type backend struct {
	name     string
	consumer string
	open     func(t *testing.T, env map[string]string) (projections.Rebuilder, func())
	env      func(t *testing.T) map[string]string
}

func backends() []backend {
	open := func(name string) func(t *testing.T, env map[string]string) (projections.Rebuilder, func()) {
		return func(t *testing.T, env map[string]string) (projections.Rebuilder, func()) {
			b, _ := projsvc.LookupBackend(name)
			p, _, closeFn, err := b.Open(context.Background(), env, logx.Discard())
			if err != nil {
				t.Fatal(err)
			}
			return p, closeFn
		}
	}
	return []backend{
		{name: "postgres", consumer: topology.ConsumerProjPostgres, open: open("postgres"), env: func(t *testing.T) map[string]string {
			return map[string]string{"TGFLOW_POSTGRES_URL": testenv.NewPostgresDB(t)}
		}},
		{name: "neo4j", consumer: topology.ConsumerProjNeo4j, open: open("neo4j"), env: func(t *testing.T) map[string]string {
			uri, user, pw := testenv.Neo4j(t)
			clearNeo4j(t, uri, user, pw)
			return map[string]string{"TGFLOW_NEO4J_URI": uri, "TGFLOW_NEO4J_USER": user, "TGFLOW_NEO4J_PASSWORD": pw}
		}},
		{name: "qdrant", consumer: topology.ConsumerProjQdrant, open: open("qdrant"), env: func(t *testing.T) map[string]string {
			addr, _ := qdrantAddr(t)
			return map[string]string{"TGFLOW_QDRANT_ADDR": addr, "TGFLOW_EMBED_DIM": fmt.Sprint(projectiontest.Dim),
				"TGFLOW_QDRANT_ALIAS": fmt.Sprintf("posts_%d", time.Now().UnixNano())}
		}},
	}
}

// runProjector runs the live projector until the consumer is idle, then stops it.
func runProjector(t *testing.T, js jetstream.JetStream, consumer string, p projections.Projection, hook func(jetstream.Msg) error) {
	t.Helper()
	c, _ := topology.LookupConsumer(consumer)
	cfg := c.Config()
	cfg.AckWait = time.Second
	cfg.BackOff = nil
	run, err := worker.NewProjector(js, worker.Config{Consumer: cfg, Batch: 7, BeforeAck: hook,
		Metrics: worker.NewMetrics(prometheus.NewRegistry()), Logger: logx.Discard()}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	natstest.Eventually(t, 30*time.Second, consumer+" idle", func() bool {
		cons, err := js.Consumer(context.Background(), topology.LogStream, consumer)
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func snap(t *testing.T, p projections.Projection) projections.Snapshot {
	t.Helper()
	s, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Sort()
}

func TestRebuildVerifyStatus(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := natstest.Start(t)
			script := projectiontest.NewScript()
			publishScript(t, env.JS, script.Facts)
			live, closeFn := b.open(t, b.env(t))
			defer closeFn()

			// A projector killed between its write and its ack (every first delivery) is
			// redelivered; the checkpoint makes the second apply a no-op.
			var withheld atomic.Int64
			runProjector(t, env.JS, b.consumer, live, func(m jetstream.Msg) error {
				if meta, _ := m.Metadata(); meta.NumDelivered == 1 {
					withheld.Add(1)
					return errors.New("killed before ack")
				}
				return nil
			})
			if withheld.Load() == 0 {
				t.Fatal("the hook never withheld an ack")
			}
			want := snap(t, live)
			_, inPlace := live.(projections.InPlace)
			cons, _ := topology.LookupConsumer(b.consumer)
			// Compare with a clean projection of the same facts (an in-place backend has one
			// graph: its Verify below rebuilds it cleanly and compares instead).
			if !inPlace {
				clean, closeClean := b.open(t, b.env(t))
				defer closeClean()
				for _, f := range script.Facts {
					if !slices.Contains(cons.Inputs, f.Event.Type) {
						continue // the live projector's consumer filters it out
					}
					if err := clean.Apply(context.Background(), []projections.Fact{f}); err != nil {
						t.Fatal(err)
					}
				}
				if diff := snap(t, clean).Digest().Diff(want.Digest()); len(diff) > 0 {
					t.Fatalf("projector with withheld acks differs from a clean apply: %v", diff)
				}
			}

			r := projsvc.Replayer{JS: env.JS, Consumer: cons, Batch: 5, Logger: logx.Discard()}
			diff, err := projsvc.Verify(context.Background(), r, live, nil)
			if err != nil || len(diff) > 0 {
				t.Fatalf("verify on an honest model: %v %v", diff, err)
			}

			// An interrupted rebuild leaves the live model untouched and resumes.
			ctx, cancel := context.WithCancel(context.Background())
			if err := projsvc.Rebuild(ctx, r, live, cancelAfter{cancel: cancel}); err == nil {
				t.Fatal("interrupted rebuild returned no error")
			}
			cancel()
			if diff := snap(t, live).Digest().Diff(want.Digest()); len(diff) > 0 && !inPlace {
				t.Fatalf("interrupted rebuild changed the live model: %v", diff)
			}
			if err := projsvc.Rebuild(context.Background(), r, live, nil); err != nil {
				t.Fatal(err)
			}
			if diff := snap(t, live).Digest().Diff(want.Digest()); len(diff) > 0 {
				t.Fatalf("rebuilt model differs from the live one: %v", diff)
			}

			// A live model that drifted from the log is caught.
			last := script.Facts[len(script.Facts)-1]
			bogus := events.New(events.ProducerIngest, &events.PostDeleted{PostRef: projectiontest.PostEdited, DeletedAt: projectiontest.T0}, projectiontest.T0)
			if err := live.Apply(context.Background(), []projections.Fact{{Seq: last.Seq + 1, Event: bogus}}); err != nil {
				t.Fatal(err)
			}
			diff, err = projsvc.Verify(context.Background(), r, live, nil)
			if err == nil && len(diff) == 0 {
				t.Fatal("verify did not notice a fact that is not in the log")
			}

			st := projsvc.StatusOf(context.Background(), env.JS, b.name, b.consumer, live, 10*time.Millisecond)
			wantCP := last.Seq + 1 // the bogus fact
			if inPlace {
				wantCP = last.Seq // verify rebuilt the one graph from the log
			}
			if st.Err != nil || st.Head != last.Seq || st.Checkpoint != wantCP {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

type cancelAfter struct{ cancel context.CancelFunc }

func (c cancelAfter) Start(uint64) {}
func (c cancelAfter) Add(int)      { c.cancel() }
func (c cancelAfter) Finish()      {}

// clearNeo4j empties the one Community database before a test uses it.
func clearNeo4j(t *testing.T, uri, user, pw string) {
	t.Helper()
	auth := nd.NoAuth()
	if user != "" {
		auth = nd.BasicAuth(user, pw, "")
	}
	d, err := nd.NewDriverWithContext(uri, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if _, err := nd.ExecuteQuery(context.Background(), d, "MATCH (n) DETACH DELETE n", nil, nd.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
}
