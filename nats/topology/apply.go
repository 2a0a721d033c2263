package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Action is what Apply did to one resource.
type Action string

// Actions.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
	Skipped   Action = "skipped"
)

// Change is one line of an Apply report.
type Change struct {
	Kind   string // stream, consumer, kv, objectstore
	Name   string
	Action Action
	// Fields lists the changed config fields of an update.
	Fields []string
	Note   string
}

// Report is what Apply did.
type Report []Change

// Changed reports whether anything was created or updated.
func (r Report) Changed() bool {
	for _, c := range r {
		if c.Action == Created || c.Action == Updated {
			return true
		}
	}
	return false
}

// Print writes one line per change.
func (r Report) Print(w io.Writer) {
	for _, c := range r {
		line := fmt.Sprintf("%-11s %-18s %s", c.Kind, c.Name, c.Action)
		if len(c.Fields) > 0 {
			line += fmt.Sprintf(" (%v)", c.Fields)
		}
		if c.Note != "" {
			line += " — " + c.Note
		}
		fmt.Fprintln(w, line)
	}
	if !r.Changed() {
		fmt.Fprintln(w, "no change")
	}
}

// ApplyOptions selects what Apply manages.
type ApplyOptions struct {
	// Consumers limits the consumers created to these names; nil means every declared
	// consumer. A consumer whose service does not run would pile up pending facts, so
	// `tgflow nats apply` creates only those of services this binary implements.
	Consumers []string
	// Replicas is the replica count of the streams, buckets and object stores (their
	// consumers inherit it); 0 means 1. More than 1 needs a JetStream cluster of at least
	// that many servers. Changing it on an existing stream asks the cluster to add or remove
	// replicas; the data stays.
	Replicas int
}

// Apply creates or updates the streams, buckets, object stores and consumers. Running it
// twice in a row reports no change the second time.
func Apply(ctx context.Context, js jetstream.JetStream, opts ApplyOptions) (Report, error) {
	var rep Report
	replicas := max(opts.Replicas, 1)
	for _, cfg := range Streams() {
		cfg.Replicas = replicas
		ch, err := applyStream(ctx, js, cfg)
		if err != nil {
			return rep, err
		}
		rep = append(rep, ch)
	}
	for _, cfg := range KeyValues() {
		cfg.Replicas = replicas
		ch, err := applyBacking(ctx, js, "kv", cfg.Bucket, "KV_"+cfg.Bucket, func() error {
			_, err := js.CreateOrUpdateKeyValue(ctx, cfg)
			return err
		})
		if err != nil {
			return rep, err
		}
		rep = append(rep, ch)
	}
	for _, cfg := range ObjectStores() {
		cfg.Replicas = replicas
		ch, err := applyBacking(ctx, js, "objectstore", cfg.Bucket, "OBJ_"+cfg.Bucket, func() error {
			_, err := js.CreateOrUpdateObjectStore(ctx, cfg)
			return err
		})
		if err != nil {
			return rep, err
		}
		rep = append(rep, ch)
	}
	want := map[string]bool{}
	for _, n := range opts.Consumers {
		if _, ok := LookupConsumer(n); !ok {
			return rep, fmt.Errorf("apply: %q is not a declared consumer", n)
		}
		want[n] = true
	}
	for _, c := range Consumers() {
		if opts.Consumers != nil && !want[c.Name] {
			rep = append(rep, Change{Kind: "consumer", Name: c.Name, Action: Skipped, Note: "no service in this binary reads it"})
			continue
		}
		ch, err := ApplyConsumer(ctx, js, c)
		if err != nil {
			return rep, err
		}
		rep = append(rep, ch)
	}
	return rep, nil
}

func applyStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (Change, error) {
	return applyBacking(ctx, js, "stream", cfg.Name, cfg.Name, func() error {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
}

// applyBacking runs create-or-update and compares the server's normalized stream config
// before and after, so the report says exactly what changed.
func applyBacking(ctx context.Context, js jetstream.JetStream, kind, name, stream string, apply func() error) (Change, error) {
	before, err := streamConfig(ctx, js, stream)
	if err != nil {
		return Change{}, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	if err := whilePlacing(ctx, apply); err != nil {
		return Change{}, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	after, err := streamConfig(ctx, js, stream)
	if err != nil {
		return Change{}, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	return compare(kind, name, before, after), nil
}

func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &info.Config, nil
}

// placementWait bounds how long Apply retries a create or update that a cluster cannot
// place yet (see whilePlacing).
var placementWait = 30 * time.Second

// JetStream API error codes that mean "not now" on a cluster (nats-server's errors.json):
// no suitable peers for placement (a peer is offline or not yet current: a cluster forming
// or a node restarting) and JetStream temporarily unavailable (no meta leader yet).
const (
	errCodeClusterNoPeers   jetstream.ErrorCode = 10005
	errCodeClusterNotAvail  jetstream.ErrorCode = 10008
	placementRetryFirstWait                     = 100 * time.Millisecond
	placementRetryMaxWait                       = 2 * time.Second
)

// whilePlacing runs apply, and again with a growing pause while it fails because the
// cluster cannot place the resource yet, for at most placementWait (or until ctx ends).
// Any other error, or the last one at the deadline, is returned as it is.
func whilePlacing(ctx context.Context, apply func() error) error {
	deadline := time.Now().Add(placementWait)
	wait := placementRetryFirstWait
	for {
		err := apply()
		if err == nil || !transientPlacement(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, placementRetryMaxWait)
	}
}

// transientPlacement reports whether err is one a cluster gives while it forms or a node
// restarts.
func transientPlacement(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == errCodeClusterNoPeers || apiErr.ErrorCode == errCodeClusterNotAvail
	}
	return errors.Is(err, nats.ErrNoResponders)
}

// ApplyConsumer creates or updates one declared consumer.
func ApplyConsumer(ctx context.Context, js jetstream.JetStream, c Consumer) (Change, error) {
	var before *jetstream.ConsumerConfig
	if cons, err := js.Consumer(ctx, LogStream, c.Name); err == nil {
		before = &cons.CachedInfo().Config
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return Change{}, fmt.Errorf("consumer %s: %w", c.Name, err)
	}
	var cons jetstream.Consumer
	err := whilePlacing(ctx, func() (err error) {
		cons, err = js.CreateOrUpdateConsumer(ctx, LogStream, c.Config())
		return err
	})
	if err != nil {
		return Change{}, fmt.Errorf("consumer %s: %w", c.Name, err)
	}
	after := &cons.CachedInfo().Config
	return compare("consumer", c.Name, before, after), nil
}

func compare[T any](kind, name string, before, after *T) Change {
	if before == nil {
		return Change{Kind: kind, Name: name, Action: Created}
	}
	fields := diffFields(*before, *after)
	if len(fields) == 0 {
		return Change{Kind: kind, Name: name, Action: Unchanged}
	}
	return Change{Kind: kind, Name: name, Action: Updated, Fields: fields}
}

// diffFields compares two configs by their JSON fields.
func diffFields(a, b any) []string {
	var ma, mb map[string]json.RawMessage
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || !reflect.DeepEqual(normalize(va), normalize(vb)) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func normalize(raw json.RawMessage) any {
	var v any
	_ = json.Unmarshal(raw, &v)
	return v
}
