package qdrant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"

	qd "github.com/qdrant/go-client/qdrant"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/internal/textlang"
)

// postState is everything the projection knows of one post, kept in the meta collection
// (one record per post key) because the facts that make up a point arrive separately and in
// any order: the payload fields come from posts.parsed/edited, the tags from posts.tagged,
// the pages from posts.enriched, the image labels and OCR text from posts.vision.analyzed,
// the vector and the topics from posts.embedded, and a point can only exist once there is a
// vector. Each part carries the revision it came from; a part is replaced only by a fact at
// least as new, so stale facts are ignored and re-applying a fact changes nothing. The vector
// itself lives only in the point; the state keeps its revision and its topics.
type postState struct {
	Key string `json:"key"`
	// Deleted is the tombstone: once set, no later fact brings the post back.
	Deleted   bool         `json:"deleted,omitempty"`
	DeletedAt int64        `json:"deleted_at,omitempty"`
	Post      *postFields  `json:"post,omitempty"`
	Tags      *tagState    `json:"tags,omitempty"`
	Pages     *pageState   `json:"pages,omitempty"`
	Vision    *visionState `json:"vision,omitempty"`
	Vector    *vectorState `json:"vector,omitempty"`
}

// vectorState is what posts.embedded says besides the vector: its revision and the post's
// topics (the embedder's, computed from the vector or passed on from a chat tagger). Rev is
// inlined, so states stored before topics moved here decode unchanged.
type vectorState struct {
	events.Rev
	Topics []string `json:"topics,omitempty"`
}

// postFields are the payload fields taken from posts.parsed / posts.edited.
type postFields struct {
	Version         int64    `json:"version"`
	ChannelUsername string   `json:"channel_username,omitempty"`
	PostedAt        int64    `json:"posted_at"`
	HasMedia        bool     `json:"has_media,omitempty"`
	GroupedID       int64    `json:"grouped_id,omitempty"`
	LinkDomains     []string `json:"link_domains,omitempty"`
	Text            string   `json:"text,omitempty"`
	Lang            string   `json:"lang,omitempty"`
}

type tagState struct {
	Rev   events.Rev `json:"rev"`
	Names []string   `json:"names"`
}

// pageState is what posts.enriched says of the pages a post links to: the titles and
// domains of the pages that were fetched (skipped and failed pages have neither).
type pageState struct {
	Rev     events.Rev `json:"rev"`
	Titles  []string   `json:"titles,omitempty"`
	Domains []string   `json:"domains,omitempty"`
}

// visionState is what posts.vision.analyzed says of the post's images.
type visionState struct {
	Rev    events.Rev `json:"rev"`
	Labels []string   `json:"labels,omitempty"`
	OCR    string     `json:"ocr,omitempty"`
}

// Payload bounds.
const (
	// TextExcerptRunes bounds the text kept in a point's payload.
	TextExcerptRunes = 500
	// OCRExcerptRunes bounds the OCR text kept in a point's payload.
	OCRExcerptRunes = 300
	// MaxPageTitles bounds the page titles kept, each cut at PageTitleRunes.
	MaxPageTitles  = 10
	PageTitleRunes = 200
	// MaxVisionLabels bounds the image labels kept.
	MaxVisionLabels = 40
)

func fieldsOf(p *events.Post) *postFields {
	return &postFields{
		Version:         p.Version(),
		ChannelUsername: strings.ToLower(p.ChannelUsername),
		PostedAt:        p.Date.Unix(),
		HasMedia:        len(p.Media) > 0,
		GroupedID:       p.GroupedID,
		LinkDomains:     linkDomains(p.Links),
		Text:            excerpt(p.Text, TextExcerptRunes),
		Lang:            langOf(p.Text),
	}
}

// langOf is the language of a post's text by the rule every read model shares (textlang),
// so that Qdrant's lang and Postgres's search configuration agree.
func langOf(text string) string { return textlang.Of(text) }

// applyPost keeps the newest post version; an equal version replaces (same fact again, or
// the same version observed once more).
func (s *postState) applyPost(p *events.Post) {
	if s.Deleted || (s.Post != nil && p.Version() < s.Post.Version) {
		return
	}
	s.Post = fieldsOf(p)
}

func (s *postState) applyTags(t *events.PostTagged) {
	if s.Deleted || (s.Tags != nil && t.Rev.Compare(s.Tags.Rev) < 0) {
		return
	}
	names := make([]string, 0, len(t.Tags))
	for _, tag := range t.Tags {
		names = append(names, tag.Name)
	}
	s.Tags = &tagState{Rev: t.Rev, Names: names}
}

func (s *postState) applyPages(e *events.PostEnriched) {
	if s.Deleted || (s.Pages != nil && e.Rev.Compare(s.Pages.Rev) < 0) {
		return
	}
	ps := &pageState{Rev: e.Rev}
	for _, pg := range e.Pages {
		if pg.Error != "" || pg.Reason != "" {
			continue // not fetched: no title, and its domain is in link_domains already
		}
		if t := strings.TrimSpace(pg.Title); t != "" && len(ps.Titles) < MaxPageTitles {
			if t = excerpt(t, PageTitleRunes); !slices.Contains(ps.Titles, t) {
				ps.Titles = append(ps.Titles, t)
			}
		}
		if d := strings.TrimPrefix(strings.ToLower(pg.Domain), "www."); d != "" && !slices.Contains(ps.Domains, d) {
			ps.Domains = append(ps.Domains, d)
		}
	}
	slices.Sort(ps.Domains)
	s.Pages = ps
}

func (s *postState) applyVision(v *events.PostVisionAnalyzed) {
	if s.Deleted || (s.Vision != nil && v.Rev.Compare(s.Vision.Rev) < 0) {
		return
	}
	vs := &visionState{Rev: v.Rev}
	var ocr []string
	for _, it := range v.Items {
		for _, l := range it.Labels {
			if l = strings.TrimSpace(l); l != "" && len(vs.Labels) < MaxVisionLabels && !slices.Contains(vs.Labels, l) {
				vs.Labels = append(vs.Labels, l)
			}
		}
		if t := strings.TrimSpace(it.OCRText); t != "" {
			ocr = append(ocr, t)
		}
	}
	vs.OCR = excerpt(strings.Join(ocr, "\n"), OCRExcerptRunes)
	s.Vision = vs
}

// applyVector reports whether the embedding e is the post's vector now (its topics with it).
func (s *postState) applyVector(e *events.PostEmbedded) bool {
	if s.Deleted || (s.Vector != nil && e.Rev.Compare(s.Vector.Rev) < 0) {
		return false
	}
	s.Vector = &vectorState{Rev: e.Rev, Topics: slices.Clone(e.Topics)}
	return true
}

func (s *postState) applyDelete(d *events.PostDeleted) {
	if s.Deleted {
		return
	}
	*s = postState{Key: s.Key, Deleted: true, DeletedAt: d.DeletedAt.Unix()}
}

// payload is the point's payload. Field names are the search API's contract; the indexed
// ones are listed in payloadIndexes.
func (s *postState) payload() (map[string]any, error) {
	ch, msg, err := events.ParsePostKey(s.Key)
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"post_key":   s.Key,
		"channel_id": int64(ch),
		"message_id": msg,
	}
	if p := s.Post; p != nil {
		m["version"] = p.Version
		m["posted_at"] = p.PostedAt
		m["has_media"] = p.HasMedia
		m["text"] = p.Text
		if p.ChannelUsername != "" {
			m["channel_username"] = p.ChannelUsername
		}
		if p.GroupedID != 0 {
			m["grouped_id"] = p.GroupedID
		}
		if len(p.LinkDomains) > 0 {
			m["link_domains"] = p.LinkDomains
		}
		if p.Lang != "" {
			m["lang"] = p.Lang
		}
	}
	if t := s.Tags; t != nil {
		m["tags"] = t.Names
		m["tags_version"] = t.Rev.Version
		m["tags_revision"] = int64(t.Rev.Revision)
	}
	if pg := s.Pages; pg != nil {
		m["page_titles"] = nonNil(pg.Titles)
		m["page_domains"] = nonNil(pg.Domains)
	}
	if v := s.Vision; v != nil {
		m["vision_labels"] = nonNil(v.Labels)
		if v.OCR != "" {
			m["ocr_text"] = v.OCR
		}
	}
	if v := s.Vector; v != nil {
		m["topics"] = nonNil(v.Topics)
		m["vector_version"] = v.Version
		m["vector_revision"] = int64(v.Revision)
	}
	return m, nil
}

// linkDomains are the lower-case host names of the links, without "www.", deduplicated and
// sorted; links that are not absolute URLs are left out.
func linkDomains(links []string) []string {
	var out []string
	for _, l := range links {
		u, err := url.Parse(strings.TrimSpace(l))
		if err != nil || u.Hostname() == "" {
			continue
		}
		host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
		if !slices.Contains(out, host) {
			out = append(out, host)
		}
	}
	slices.Sort(out)
	return out
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func excerpt(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// encodeState is the canonical JSON of a state: equal states encode to equal bytes.
func encodeState(s *postState) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("qdrant: marshal post state: %v", err)) // plain structs cannot fail
	}
	return b
}

// stateToPayload turns a state into the meta record's payload (structured, so the meta
// collection stays readable in Qdrant's own tools).
func stateToPayload(s *postState) (map[string]*qd.Value, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(encodeState(s)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	m["kind"] = kindPost
	return toPayload(m)
}

func stateFromPayload(p map[string]*qd.Value) (*postState, error) {
	m := fromPayload(p)
	delete(m, "kind")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var s postState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode post state: %w", err)
	}
	return &s, nil
}

// toPayload converts plain Go values (as built by payload or decoded from JSON with
// UseNumber) into Qdrant values, keeping integers as integers.
func toPayload(m map[string]any) (map[string]*qd.Value, error) {
	out := make(map[string]*qd.Value, len(m))
	for k, v := range m {
		qv, err := toValue(v)
		if err != nil {
			return nil, fmt.Errorf("payload field %s: %w", k, err)
		}
		out[k] = qv
	}
	return out, nil
}

func toValue(v any) (*qd.Value, error) {
	switch x := v.(type) {
	case nil:
		return qd.NewValueNull(), nil
	case bool:
		return qd.NewValueBool(x), nil
	case string:
		return qd.NewValueString(x), nil
	case int64:
		return qd.NewValueInt(x), nil
	case int:
		return qd.NewValueInt(int64(x)), nil
	case float64:
		return qd.NewValueDouble(x), nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return qd.NewValueInt(n), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return qd.NewValueDouble(f), nil
	case []string:
		l := make([]*qd.Value, len(x))
		for i, s := range x {
			l[i] = qd.NewValueString(s)
		}
		return qd.NewValueFromList(l...), nil
	case []any:
		l := make([]*qd.Value, len(x))
		for i, e := range x {
			ev, err := toValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = ev
		}
		return qd.NewValueFromList(l...), nil
	case map[string]any:
		fields, err := toPayload(x)
		if err != nil {
			return nil, err
		}
		return qd.NewValueStruct(&qd.Struct{Fields: fields}), nil
	}
	return nil, fmt.Errorf("unsupported payload value %T", v)
}

func fromPayload(p map[string]*qd.Value) map[string]any {
	m := make(map[string]any, len(p))
	for k, v := range p {
		m[k] = fromValue(v)
	}
	return m
}

func fromValue(v *qd.Value) any {
	switch x := v.GetKind().(type) {
	case *qd.Value_BoolValue:
		return x.BoolValue
	case *qd.Value_StringValue:
		return x.StringValue
	case *qd.Value_IntegerValue:
		return x.IntegerValue
	case *qd.Value_DoubleValue:
		if math.IsInf(x.DoubleValue, 0) || math.IsNaN(x.DoubleValue) {
			return nil
		}
		return x.DoubleValue
	case *qd.Value_ListValue:
		l := make([]any, 0, len(x.ListValue.GetValues()))
		for _, e := range x.ListValue.GetValues() {
			l = append(l, fromValue(e))
		}
		return l
	case *qd.Value_StructValue:
		return fromPayload(x.StructValue.GetFields())
	}
	return nil
}
