package events_test

import (
	"errors"
	"testing"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

// FuzzDecode: whatever the headers and body, Decode returns an event or a *DecodeError,
// never a panic, and a decoded event re-encodes.
func FuzzDecode(f *testing.F) {
	for _, fact := range projectiontest.NewScript().Facts {
		h, body, err := events.Encode(fact.Event)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h["ce-type"][0], h["ce-id"][0], h["ce-time"][0], h["ce-subject"][0], body)
	}
	f.Add("org.tgflow.post.parsed.v1", "x", "2026-01-01T00:00:00Z", "%", []byte(`{"channel_id":1e99}`))
	f.Fuzz(func(t *testing.T, typ, id, ts, subject string, body []byte) {
		h := events.Header{
			"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {"tgflow/fuzz"}, "ce-type": {typ},
			"ce-time": {ts}, "ce-subject": {subject}, "content-type": {"application/json"},
		}
		ev, err := events.Decode(h, body)
		if err != nil {
			var de *events.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a DecodeError: %T %v", err, err)
			}
			return
		}
		if _, _, err := events.Encode(ev); err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
	})
}
