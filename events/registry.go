package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Producers: every fact type has exactly one.
const (
	ProducerCLI      = "cli"
	ProducerIngest   = "ingest"
	ProducerVision   = "vision"
	ProducerTagger   = "tagger"
	ProducerEnricher = "enricher"
	ProducerEmbedder = "embedder"
	ProducerAlbums   = "albums"
	ProducerTrends   = "trends"
)

// SourcePrefix prefixes a producer name in the CloudEvents source attribute.
const SourcePrefix = "tgflow/"

// Spec describes one event type: its Go payload, its NATS subject prefix and the one stage
// that produces it.
type Spec struct {
	Type Type
	// Subject is the subject prefix; the payload's SubjectToken is appended as the last token.
	Subject  string
	Producer string
	// Doc is one line for the README and the generated schema.
	Doc string
	new func() Payload
}

// Filter is the consumer filter subject that matches every event of this type.
func (s Spec) Filter() string { return s.Subject + ".*" }

// New returns a new zero payload of this type.
func (s Spec) New() Payload { return s.new() }

// GoType is the payload's struct type.
func (s Spec) GoType() reflect.Type { return reflect.TypeOf(s.new()).Elem() }

// Upcaster turns the JSON body of an old event type into the body of a newer type.
type Upcaster func(old json.RawMessage) (json.RawMessage, error)

type upcast struct {
	to Type
	fn Upcaster
}

// Registry maps event types to their specs. The package registry (Default) holds every type
// tgflow defines; tests build their own to show type evolution.
type Registry struct {
	mu        sync.RWMutex
	specs     map[Type]Spec
	upcasters map[Type]upcast
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{specs: map[Type]Spec{}, upcasters: map[Type]upcast{}}
}

// Register adds the spec of payload type P. It panics on a programming error (duplicate type,
// bad subject), since registration happens at init from constant tables.
func Register[P Payload](r *Registry, subject, producer, doc string) {
	newP := func() Payload {
		var p P
		return reflect.New(reflect.TypeOf(p).Elem()).Interface().(Payload)
	}
	t := newP().EventType()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[t]; dup {
		panic(fmt.Sprintf("events: type %s registered twice", t))
	}
	if subject == "" || strings.ContainsAny(subject, "*> ") || strings.HasSuffix(subject, ".") {
		panic(fmt.Sprintf("events: bad subject prefix %q for %s", subject, t))
	}
	r.specs[t] = Spec{Type: t, Subject: subject, Producer: producer, Doc: doc, new: newP}
}

// RegisterUpcaster declares that events of type from (no longer a Go type) decode as type to
// after fn rewrites their body. Chains (v1 → v2 → v3) are followed.
func (r *Registry) RegisterUpcaster(from, to Type, fn Upcaster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.specs[from]; ok {
		panic(fmt.Sprintf("events: %s is a live type; remove its Go type before upcasting it", from))
	}
	r.upcasters[from] = upcast{to: to, fn: fn}
}

// Lookup returns the spec of a type.
func (r *Registry) Lookup(t Type) (Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[t]
	return s, ok
}

// Specs returns every spec, sorted by type.
func (r *Registry) Specs() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, 0, len(r.specs))
	for _, s := range r.specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// SpecOf returns the spec of a payload's type.
func (r *Registry) SpecOf(p Payload) (Spec, error) {
	s, ok := r.Lookup(p.EventType())
	if !ok {
		return Spec{}, fmt.Errorf("%w: %s", ErrUnknownType, p.EventType())
	}
	return s, nil
}

// resolve follows upcasters from t to a live type, rewriting body on the way.
func (r *Registry) resolve(t Type, body []byte) (Spec, []byte, error) {
	seen := map[Type]bool{}
	for {
		if s, ok := r.Lookup(t); ok {
			return s, body, nil
		}
		r.mu.RLock()
		u, ok := r.upcasters[t]
		r.mu.RUnlock()
		if !ok || seen[t] {
			return Spec{}, nil, &DecodeError{Type: t, Err: ErrUnknownType, Reason: "no payload type or upcaster is registered"}
		}
		seen[t] = true
		nb, err := u.fn(body)
		if err != nil {
			return Spec{}, nil, &DecodeError{Type: t, Err: ErrMalformed, Reason: fmt.Sprintf("upcast to %s: %v", u.to, err)}
		}
		t, body = u.to, nb
	}
}

// Default holds every event type tgflow defines.
var Default = NewRegistry()

func init() {
	Register[*ChannelSubscribed](Default, "channels.subscribed", ProducerCLI, "Start following a channel (command as fact).")
	Register[*ChannelUnsubscribed](Default, "channels.unsubscribed", ProducerCLI, "Stop following a channel.")
	Register[*ChannelSynced](Default, "channels.synced", ProducerIngest, "One ingest run of a channel finished, with its counts.")
	Register[*ChannelFailed](Default, "channels.failed", ProducerIngest, "A channel could not be read, with the reason and the next attempt.")
	Register[*PostParsed](Default, "posts.parsed", ProducerIngest, "A post seen for the first time.")
	Register[*PostEdited](Default, "posts.edited", ProducerIngest, "A new version of a known post.")
	Register[*PostDeleted](Default, "posts.deleted", ProducerIngest, "A post is gone from its channel.")
	Register[*PostMetrics](Default, "posts.metrics", ProducerIngest, "Views, forwards, replies and reactions refreshed.")
	Register[*PostVisionAnalyzed](Default, "posts.vision.analyzed", ProducerVision, "Images of a post described, OCR'd and hashed.")
	Register[*PostTagged](Default, "posts.tagged", ProducerTagger, "1–5 normalized tags of a post revision.")
	Register[*PostEnriched](Default, "posts.enriched", ProducerEnricher, "A tagged post with the pages it links to.")
	Register[*PostEmbedded](Default, "posts.embedded", ProducerEmbedder, "One vector per post revision.")
	Register[*AlbumParsed](Default, "albums.parsed", ProducerIngest, "Every item of an album is known.")
	Register[*AlbumAssembled](Default, "albums.assembled", ProducerAlbums, "Album summary, complete or at its deadline.")
	Register[*TrendDetected](Default, "trends.detected", ProducerTrends, "A tag burst across channels in a sliding window.")
}

// Specs returns every spec of the default registry.
func Specs() []Spec { return Default.Specs() }

// Lookup finds a type in the default registry.
func Lookup(t Type) (Spec, bool) { return Default.Lookup(t) }

// Produces returns the specs a producer emits.
func Produces(producer string) []Spec {
	var out []Spec
	for _, s := range Specs() {
		if s.Producer == producer {
			out = append(out, s)
		}
	}
	return out
}

// Producers returns every producer name, sorted.
func Producers() []string {
	var out []string
	for _, s := range Specs() {
		if !slices.Contains(out, s.Producer) {
			out = append(out, s.Producer)
		}
	}
	sort.Strings(out)
	return out
}
