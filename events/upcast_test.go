package events_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
)

// noteV2 is a test type: v1 had a single "author" string, v2 has "authors" as a list.
type noteV2 struct {
	ID      int64    `json:"id"`
	Authors []string `json:"authors"`
}

func (*noteV2) EventType() events.Type { return "org.tgflow.test.note.v2" }
func (n *noteV2) SubjectToken() string { return "1" }
func (n *noteV2) Key() string          { return "note/1" }
func (n *noteV2) Validate() error {
	if len(n.Authors) == 0 {
		return errors.New("no authors")
	}
	return nil
}

func TestUpcasterDecodesV1AsV2(t *testing.T) {
	r := events.NewRegistry()
	events.Register[*noteV2](r, "test.notes", "tester", "a note")
	r.RegisterUpcaster("org.tgflow.test.note.v1", "org.tgflow.test.note.v2", func(old json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			ID     int64  `json:"id"`
			Author string `json:"author"`
		}
		if err := json.Unmarshal(old, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(noteV2{ID: v1.ID, Authors: []string{v1.Author}})
	})
	h := events.Header{
		"ce-specversion": {"1.0"}, "ce-id": {"abc"}, "ce-source": {"tgflow/tester"},
		"ce-type": {"org.tgflow.test.note.v1"}, "ce-time": {time.Now().UTC().Format(time.RFC3339)},
		"content-type": {"application/json"},
	}
	ev, err := r.Decode(h, []byte(`{"id":7,"author":"ann"}`))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := ev.Data.(*noteV2)
	if !ok || ev.Type != "org.tgflow.test.note.v2" || n.ID != 7 || len(n.Authors) != 1 || n.Authors[0] != "ann" {
		t.Fatalf("decoded %s %#v", ev.Type, ev.Data)
	}
	// A v1 body the upcaster cannot read is a typed error, not a panic.
	_, err = r.Decode(h, []byte(`[]`))
	if !errors.Is(err, events.ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	// v0 has no upcaster: unknown.
	h["ce-type"] = []string{"org.tgflow.test.note.v0"}
	if _, err := r.Decode(h, []byte(`{}`)); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("err = %v", err)
	}
}
