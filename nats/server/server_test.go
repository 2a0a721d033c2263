// Package server_test checks the production NATS config: it is generated from the users'
// declaration, and every service user can do its job and nothing else.
package server_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/nats/server"
	"github.com/tgflow/tgflow/nats/server/servertest"
	"github.com/tgflow/tgflow/nats/topology"
	"github.com/tgflow/tgflow/services/ingest/logscan"
)

var update = flag.Bool("update", false, "rewrite nats.conf from Users")

func TestCommittedConfMatchesCode(t *testing.T) {
	want := server.Conf()
	if *update {
		if err := os.WriteFile(servertest.ConfPath(), want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(servertest.ConfPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("nats.conf differs from server.Users(): run go test ./nats/server -run TestCommittedConfMatchesCode -update")
	}
}

// The users follow the topology: each consumer is read by exactly one user, and a stage's
// user is the producer the topology names for it.
func TestUsersFollowTheTopology(t *testing.T) {
	owner := map[string]string{}
	for _, u := range server.Users() {
		for _, c := range u.Consumers {
			if prev, dup := owner[c]; dup {
				t.Errorf("consumer %s is read by users %s and %s", c, prev, u.Name)
			}
			owner[c] = u.Name
		}
	}
	for _, c := range topology.Consumers() {
		name, ok := owner[c.Name]
		if !ok {
			t.Errorf("consumer %s: no user reads it", c.Name)
			continue
		}
		u, _ := server.Lookup(name)
		if u.Producer != c.Producer {
			t.Errorf("consumer %s: the topology's producer is %q, its user %s publishes as %q", c.Name, c.Producer, u.Name, u.Producer)
		}
	}
	for _, p := range events.Producers() {
		if _, ok := server.Lookup(p); !ok {
			t.Errorf("producer %s has no user", p)
		}
	}
}

func connect(t *testing.T, s *servertest.Server, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(user), nats.Name("test-"+user), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func applyAsAdmin(t *testing.T, s *servertest.Server) jetstream.JetStream {
	t.Helper()
	_, admin := connect(t, s, "admin")
	if _, err := topology.Apply(context.Background(), admin, topology.ApplyOptions{}); err != nil {
		t.Fatalf("admin apply: %v", err)
	}
	return admin
}

// refused reports which of subjects the server refused user: each is published, then a
// flush waits until the server has handled them (it logs a violation before it answers).
func refused(t *testing.T, s *servertest.Server, nc *nats.Conn, subjects []string) map[string]bool {
	t.Helper()
	before := len(s.Violations())
	for _, subj := range subjects {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range s.Violations()[before:] {
		for _, subj := range subjects {
			if strings.Contains(line, fmt.Sprintf("%q", subj)) {
				out[subj] = true
			}
		}
	}
	return out
}

// Every user publishes the facts of its producer and is refused every other fact subject;
// admin alone publishes anything. The facts that got through are the ones on the log.
func TestEachUserPublishesExactlyItsProducersFacts(t *testing.T) {
	s := servertest.Start(t)
	admin := applyAsAdmin(t, s)
	ctx := context.Background()
	for _, u := range server.Users() {
		nc, _ := connect(t, s, u.Name)
		token := strings.ReplaceAll(u.Name, "-", "_")
		var subjects []string
		for _, spec := range events.Specs() {
			subjects = append(subjects, spec.Subject+"."+token)
		}
		got := refused(t, s, nc, subjects)
		for _, spec := range events.Specs() {
			subj := spec.Subject + "." + token
			mayPublish := u.Admin || spec.Producer == u.Producer
			if got[subj] == mayPublish {
				t.Errorf("user %s, %s (produced by %s): refused=%v", u.Name, subj, spec.Producer, got[subj])
			}
		}
	}
	stream, err := admin.Stream(ctx, topology.LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	var onLog []string
	for subj := range info.State.Subjects {
		onLog = append(onLog, subj)
	}
	slices.Sort(onLog)
	var want []string
	for _, u := range server.Users() {
		for _, spec := range events.Specs() {
			if u.Admin || spec.Producer == u.Producer {
				want = append(want, spec.Subject+"."+strings.ReplaceAll(u.Name, "-", "_"))
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(onLog, want) {
		t.Fatalf("facts on the log:\n%v\nwant:\n%v", onLog, want)
	}
}

// No user may create, update, pull from, acknowledge for or delete another service's
// durable consumer, nor dead-letter in its name; a user deletes none of its own either.
func TestNoUserTouchesAnotherServicesConsumer(t *testing.T) {
	s := servertest.Start(t)
	applyAsAdmin(t, s)
	log := topology.LogStream
	for _, u := range server.Users() {
		if u.Admin {
			continue
		}
		nc, _ := connect(t, s, u.Name)
		for _, c := range topology.Consumers() {
			own := slices.Contains(u.Consumers, c.Name)
			ops := map[string]bool{ // subject → allowed
				"$JS.API.CONSUMER.CREATE." + log + "." + c.Name:              own,
				"$JS.API.CONSUMER.CREATE." + log + "." + c.Name + ".posts.>": own && len(c.Filters()) == 1,
				"$JS.API.CONSUMER.DURABLE.CREATE." + log + "." + c.Name:      false,
				"$JS.API.CONSUMER.MSG.NEXT." + log + "." + c.Name:            own,
				"$JS.ACK." + log + "." + c.Name + ".1.1.1.1.1.0":             own,
				"$JS.API.CONSUMER.DELETE." + log + "." + c.Name:              false,
				"$JS.API.CONSUMER.PAUSE." + log + "." + c.Name:               own && u.PausesConsumers,
				topology.DLQSubject(c.Name):                                  own,
			}
			var subjects []string
			for subj := range ops {
				subjects = append(subjects, subj)
			}
			slices.Sort(subjects)
			got := refused(t, s, nc, subjects)
			for _, subj := range subjects {
				if got[subj] == ops[subj] {
					t.Errorf("user %s: %s refused=%v", u.Name, subj, got[subj])
				}
			}
		}
	}
}

// Buckets and object stores: a user reaches the ones it names, writes only those it names
// read-write, and no other.
func TestUsersReachOnlyTheirBuckets(t *testing.T) {
	s := servertest.Start(t)
	applyAsAdmin(t, s)
	type store struct{ name, stream, write string }
	var stores []store
	for _, kv := range topology.KeyValues() {
		stores = append(stores, store{kv.Bucket, "KV_" + kv.Bucket, "$KV." + kv.Bucket + ".k"})
	}
	for _, o := range topology.ObjectStores() {
		stores = append(stores, store{o.Bucket, "OBJ_" + o.Bucket, "$O." + o.Bucket + ".M.k"})
	}
	for _, u := range server.Users() {
		if u.Admin {
			continue
		}
		nc, _ := connect(t, s, u.Name)
		for _, st := range stores {
			access := u.Buckets[st.name]
			if strings.HasPrefix(st.stream, "OBJ_") {
				access = u.Objects[st.name]
			}
			read, write := "$JS.API.STREAM.INFO."+st.stream, st.write
			got := refused(t, s, nc, []string{read, write})
			if got[read] != (access == 0) {
				t.Errorf("user %s: read %s refused=%v, access %d", u.Name, st.stream, got[read], access)
			}
			if got[write] != (access != server.ReadWrite) {
				t.Errorf("user %s: write %s refused=%v, access %d", u.Name, st.stream, got[write], access)
			}
		}
	}
}

// The ingest user can do what ingest does — its KV buckets (get, put, compare-and-set,
// watch), the media store, its facts, its consumer, a scan of its facts on the log — with
// no permission violation.
func TestIngestUserPermissions(t *testing.T) {
	s := servertest.Start(t)
	applyAsAdmin(t, s)
	ctx := context.Background()
	_, js := connect(t, s, "ingest")
	for _, b := range []string{topology.BucketCursors, topology.BucketChannels, topology.BucketSession, topology.BucketLeases} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatalf("bind %s: %v", b, err)
		}
		rev, err := kv.Create(ctx, "k1", []byte("1"))
		if err != nil {
			t.Fatalf("%s create: %v", b, err)
		}
		if _, err := kv.Update(ctx, "k1", []byte("2"), rev); err != nil {
			t.Fatalf("%s update: %v", b, err)
		}
		e, err := kv.Get(ctx, "k1")
		if err != nil || string(e.Value()) != "2" {
			t.Fatalf("%s get: %v", b, err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatalf("%s list keys: %v", b, err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		if n != 1 {
			t.Fatalf("%s: %d keys", b, n)
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			t.Fatalf("%s watch: %v", b, err)
		}
		if err := w.Stop(); err != nil {
			t.Fatalf("%s stop watch: %v", b, err)
		}
		if err := kv.Delete(ctx, "k1"); err != nil {
			t.Fatalf("%s delete: %v", b, err)
		}
	}
	obs, err := js.ObjectStore(ctx, topology.ObjectMedia)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second put replaces the object (its old chunks are purged)
		if _, err := obs.PutBytes(ctx, "abc123", []byte("jpeg bytes")); err != nil {
			t.Fatalf("media put: %v", err)
		}
	}
	if b, err := obs.GetBytes(ctx, "abc123"); err != nil || string(b) != "jpeg bytes" {
		t.Fatalf("media get: %q %v", b, err)
	}
	post := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: 5, MessageID: 1}, Date: time.Now()}}, time.Now(), "0")
	h, body, err := events.Encode(post)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "posts.parsed.5", Header: nats.Header(h), Data: body}); err != nil {
		t.Fatalf("publish posts.parsed: %v", err)
	}
	if ids, err := logscan.IDs(ctx, js, "posts.parsed.5", time.Time{}); err != nil || !ids[post.ID] {
		t.Fatalf("read its facts back from the log: %v (%d ids)", err, len(ids))
	}
	c, _ := topology.LookupConsumer(topology.ConsumerIngest)
	cons, err := js.CreateOrUpdateConsumer(ctx, topology.LogStream, c.Config())
	if err != nil {
		t.Fatalf("ingest consumer: %v", err)
	}
	if _, err := cons.FetchNoWait(1); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("ingest was refused:\n%s", strings.Join(v, "\n"))
	}
}
