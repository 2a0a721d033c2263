package events

import (
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	json "github.com/goccy/go-json"
)

// Binary-mode header names (CloudEvents NATS protocol binding).
const (
	HeaderID           = "ce-id"
	HeaderType         = "ce-type"
	HeaderSource       = "ce-source"
	HeaderSpecVersion  = "ce-specversion"
	HeaderTime         = "ce-time"
	HeaderSubject      = "ce-subject"
	HeaderTraceParent  = "ce-traceparent"
	HeaderPartitionKey = "ce-partitionkey"
	HeaderContentType  = "content-type"
	ContentTypeJSON    = "application/json"
	SpecVersion        = "1.0"
)

// Header is the NATS header map (nats.Header has this underlying type).
type Header = map[string][]string

// Encode validates an event and returns its binary-mode headers and JSON body. Header values
// are percent-encoded as the binding requires.
func Encode(e Event) (Header, []byte, error) { return Default.Encode(e) }

// Decode turns binary-mode headers and a JSON body into a typed, validated event.
func Decode(h Header, body []byte) (Event, error) { return Default.Decode(h, body) }

// Encode is Encode over this registry.
func (r *Registry) Encode(e Event) (Header, []byte, error) {
	if e.Data == nil {
		return nil, nil, fmt.Errorf("encode %s: %w: no payload", e.Type, ErrMalformed)
	}
	if e.Type != e.Data.EventType() {
		return nil, nil, fmt.Errorf("encode: type %s does not match payload type %s", e.Type, e.Data.EventType())
	}
	if _, err := r.SpecOf(e.Data); err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	if err := e.Data.Validate(); err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	body, err := json.Marshal(e.Data)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	// The envelope is built by New/Derive; check what they cannot guarantee. Decode, the
	// trust boundary, runs sdk-go's full validation.
	if e.ID == "" || e.Source == "" || e.Time.IsZero() {
		return nil, nil, fmt.Errorf("encode %s: %w: id, source and time are required", e.Type, ErrMalformed)
	}
	h := make(Header, 9)
	vals := make([]string, 0, 9) // one backing array for every header value
	set := func(k, v string) {
		if v != "" {
			vals = append(vals, pctEncode(v))
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, e.ID)
	set(HeaderType, string(e.Type))
	set(HeaderSource, e.Source)
	set(HeaderSubject, e.Subject)
	set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	set(HeaderTraceParent, e.TraceParent)
	set(HeaderPartitionKey, e.PartitionKey)
	set(HeaderContentType, ContentTypeJSON)
	return h, body, nil
}

// Decode is Decode over this registry. Every failure is a *DecodeError.
func (r *Registry) Decode(h Header, body []byte) (Event, error) {
	get := func(k string) (string, error) {
		vals, ok := h[k]
		if !ok {
			vals = h[textproto.CanonicalMIMEHeaderKey(k)]
		}
		if len(vals) == 0 {
			return "", nil
		}
		return pctDecode(vals[0])
	}
	var e Event
	var errs []string
	attr := func(k string) string {
		v, err := get(k)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k, err))
		}
		return v
	}
	spec := attr(HeaderSpecVersion)
	e.ID = attr(HeaderID)
	e.Type = Type(attr(HeaderType))
	e.Source = attr(HeaderSource)
	e.Subject = attr(HeaderSubject)
	e.TraceParent = attr(HeaderTraceParent)
	e.PartitionKey = attr(HeaderPartitionKey)
	if ts := attr(HeaderTime); ts == "" {
		errs = append(errs, "ce-time is missing: every tgflow fact says when it happened")
	} else {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			errs = append(errs, fmt.Sprintf("ce-time %q is not RFC 3339", ts))
		}
		e.Time = t
	}
	if ct := attr(HeaderContentType); ct != "" && !strings.HasPrefix(ct, ContentTypeJSON) {
		errs = append(errs, fmt.Sprintf("content-type %q is not %s", ct, ContentTypeJSON))
	}
	if spec != SpecVersion {
		errs = append(errs, fmt.Sprintf("ce-specversion %q is not %s", spec, SpecVersion))
	}
	if len(errs) > 0 {
		return Event{}, &DecodeError{Type: e.Type, Err: ErrMalformed, Reason: strings.Join(errs, "; ")}
	}
	if err := sdkValidate(e); err != nil {
		return Event{}, &DecodeError{Type: e.Type, Err: ErrMalformed, Reason: strings.TrimSpace(err.Error())}
	}
	s, body, err := r.resolve(e.Type, body)
	if err != nil {
		return Event{}, err
	}
	e.Type = s.Type
	p := s.New()
	if err := json.Unmarshal(body, p); err != nil {
		return Event{}, &DecodeError{Type: e.Type, Err: ErrMalformed, Reason: "body: " + err.Error()}
	}
	if err := p.Validate(); err != nil {
		return Event{}, &DecodeError{Type: e.Type, Err: ErrInvalid, Reason: err.Error()}
	}
	e.Data = p
	return e, nil
}

// sdkValidate runs sdk-go's CloudEvents 1.0 context validation on e's attributes. The
// context is built directly (not through the setters, which validate each field again and
// allocate), with the parsed source URI cached: there are only a few producers.
func sdkValidate(e Event) error {
	src, err := sourceRef(e.Source)
	if err != nil {
		return err
	}
	c := ce.EventContextV1{ID: e.ID, Type: string(e.Type), Source: src, DataContentType: &contentTypeJSON}
	if e.Subject != "" {
		c.Subject = &e.Subject
	}
	if !e.Time.IsZero() {
		c.Time = &types.Timestamp{Time: e.Time}
	}
	if e.TraceParent != "" || e.PartitionKey != "" {
		c.Extensions = map[string]any{}
		if e.TraceParent != "" {
			c.Extensions["traceparent"] = e.TraceParent
		}
		if e.PartitionKey != "" {
			c.Extensions["partitionkey"] = e.PartitionKey
		}
	}
	if verr := c.Validate(); verr != nil {
		return verr
	}
	return nil
}

var (
	contentTypeJSON = ContentTypeJSON
	sources         sync.Map // string → types.URIRef
)

func sourceRef(s string) (types.URIRef, error) {
	if v, ok := sources.Load(s); ok {
		return v.(types.URIRef), nil
	}
	ref := types.ParseURIRef(s)
	if ref == nil {
		return types.URIRef{}, fmt.Errorf("source %q is not a URI reference", s)
	}
	if strings.HasPrefix(s, SourcePrefix) {
		sources.Store(s, *ref) // bounded: one entry per producer
	}
	return *ref, nil
}

// pctEncode percent-encodes the characters a header value may not carry as is: everything
// outside printable ASCII, plus '"' and '%' (CloudEvents HTTP/NATS binary-mode rules).
func pctEncode(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= 0x20 && c <= 0x7e && c != '"' && c != '%'
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func pctDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad percent-encoding at byte %d", i)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
