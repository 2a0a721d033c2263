package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

var update = flag.Bool("update", false, "rewrite events/schemas/")

func TestSchemasAreCurrent(t *testing.T) {
	want := map[string]bool{}
	for _, s := range events.Specs() {
		b, err := events.Schema(s)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("schemas", events.SchemaFile(s.Type))
		want[filepath.Base(path)] = true
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is stale or missing; run: go test ./events -run TestSchemasAreCurrent -update", path)
		}
	}
	entries, _ := os.ReadDir("schemas")
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("schemas/%s belongs to no registered type", e.Name())
		}
	}
}

// Every fact of the projection script survives encode → decode unchanged.
func TestRoundTripEveryType(t *testing.T) {
	seen := map[events.Type]bool{}
	for _, f := range projectiontest.NewScript().Facts {
		in := f.Event
		h, body, err := events.Encode(in)
		if err != nil {
			t.Fatalf("encode %s: %v", in.Type, err)
		}
		if h["content-type"][0] != "application/json" || h["ce-specversion"][0] != "1.0" {
			t.Fatalf("headers %v", h)
		}
		out, err := events.Decode(h, body)
		if err != nil {
			t.Fatalf("decode %s: %v", in.Type, err)
		}
		if !out.Time.Equal(in.Time) {
			t.Fatalf("%s time %v != %v", in.Type, out.Time, in.Time)
		}
		out.Time = in.Time
		a, _ := json.Marshal(in.Data)
		b, _ := json.Marshal(out.Data)
		if !bytes.Equal(a, b) || out.ID != in.ID || out.Type != in.Type || out.Source != in.Source ||
			out.Subject != in.Subject || out.TraceParent != in.TraceParent || out.PartitionKey != in.PartitionKey {
			t.Fatalf("%s round trip differs:\n in %+v %s\nout %+v %s", in.Type, in, a, out, b)
		}
		seen[in.Type] = true
	}
	for _, s := range events.Specs() {
		if !seen[s.Type] {
			t.Errorf("the script has no %s fact: add one so every type is round-tripped", s.Type)
		}
	}
}

func TestHeaderValuesArePercentEncoded(t *testing.T) {
	p := &events.ChannelSubscribed{Username: "durov", At: time.Unix(0, 0)}
	ev := events.New(events.ProducerCLI, p, time.Unix(0, 0))
	ev.Subject = "канал \"100%\""
	h, body, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	got := h["ce-subject"][0]
	if want := "%D0%BA%D0%B0%D0%BD%D0%B0%D0%BB %22100%25%22"; got != want {
		t.Fatalf("ce-subject = %q, want %q", got, want)
	}
	out, err := events.Decode(h, body)
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != ev.Subject {
		t.Fatalf("decoded subject %q", out.Subject)
	}
}

func TestDeterministicIDs(t *testing.T) {
	a := projectiontest.NewScript()
	b := projectiontest.NewScript()
	ids := map[string]bool{}
	for i := range a.Facts {
		if a.Facts[i].Event.ID != b.Facts[i].Event.ID {
			t.Fatalf("fact %d: ids differ between two builds", i)
		}
		if ids[a.Facts[i].Event.ID] {
			t.Fatalf("fact %d: id %s reused", i, a.Facts[i].Event.ID)
		}
		ids[a.Facts[i].Event.ID] = true
	}
	in := a.Facts[2].Event
	p := &events.PostTagged{PostRef: events.PostRef{ChannelID: 1, MessageID: 1}, Trigger: events.TriggerInitial, PostedAt: time.Now(), Provider: "x"}
	x := events.Derive(in, events.ProducerTagger, p, time.Now())
	y := events.Derive(in, events.ProducerTagger, p, time.Now().Add(time.Hour))
	if x.ID != y.ID {
		t.Fatal("a redelivered input must derive the same output id")
	}
	if events.TraceID(x.TraceParent) != events.TraceID(in.TraceParent) || x.TraceParent == in.TraceParent {
		t.Fatalf("trace: in %s out %s", in.TraceParent, x.TraceParent)
	}
}

func validHeaders(t *testing.T) (events.Header, []byte) {
	t.Helper()
	h, body, err := events.Encode(projectiontest.NewScript().Facts[2].Event)
	if err != nil {
		t.Fatal(err)
	}
	return h, body
}

func TestDecodeErrorsAreTyped(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h events.Header, body []byte) (events.Header, []byte)
		want   error
	}{
		{"unknown type", func(h events.Header, b []byte) (events.Header, []byte) {
			h["ce-type"] = []string{"org.tgflow.post.parsed.v9"}
			return h, b
		}, events.ErrUnknownType},
		{"missing id", func(h events.Header, b []byte) (events.Header, []byte) { delete(h, "ce-id"); return h, b }, events.ErrMalformed},
		{"missing source", func(h events.Header, b []byte) (events.Header, []byte) { delete(h, "ce-source"); return h, b }, events.ErrMalformed},
		{"wrong spec version", func(h events.Header, b []byte) (events.Header, []byte) {
			h["ce-specversion"] = []string{"0.3"}
			return h, b
		}, events.ErrMalformed},
		{"bad time", func(h events.Header, b []byte) (events.Header, []byte) {
			h["ce-time"] = []string{"yesterday"}
			return h, b
		}, events.ErrMalformed},
		{"bad percent-encoding", func(h events.Header, b []byte) (events.Header, []byte) {
			h["ce-subject"] = []string{"%zz"}
			return h, b
		}, events.ErrMalformed},
		{"not json", func(h events.Header, b []byte) (events.Header, []byte) { return h, []byte("{") }, events.ErrMalformed},
		{"trailing data", func(h events.Header, b []byte) (events.Header, []byte) { return h, append(b, []byte(" {}")...) }, events.ErrMalformed},
		{"wrong field type", func(h events.Header, b []byte) (events.Header, []byte) {
			return h, []byte(`{"channel_id":"abc","message_id":1,"date":"2026-01-01T00:00:00Z"}`)
		}, events.ErrMalformed},
		{"invalid payload", func(h events.Header, b []byte) (events.Header, []byte) {
			return h, []byte(`{"channel_id":-1001,"message_id":0,"date":"2026-01-01T00:00:00Z"}`)
		}, events.ErrInvalid},
		{"wrong content type", func(h events.Header, b []byte) (events.Header, []byte) {
			h["content-type"] = []string{"text/plain"}
			return h, b
		}, events.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, body := validHeaders(t)
			h, body = tc.mutate(h, body)
			_, err := events.Decode(h, body)
			var de *events.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want a DecodeError wrapping %v", err, tc.want)
			}
		})
	}
}

func TestEncodeRejectsInvalidPayload(t *testing.T) {
	ev := events.New(events.ProducerIngest, &events.PostParsed{Post: events.Post{PostRef: events.PostRef{ChannelID: -100123, MessageID: 1}}}, time.Now())
	_, _, err := events.Encode(ev)
	if !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"channel_id", "date is zero"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

func TestParseChannelID(t *testing.T) {
	tests := []struct {
		in   string
		want events.ChannelID
		ok   bool
	}{
		{"1234567890", 1234567890, true},
		{"-1001234567890", 1234567890, true},
		{" 42 ", 42, true},
		{"-42", 0, false},
		{"0", 0, false},
		{"abc", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := events.ParseChannelID(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseChannelID(%q) = %d, %v", tc.in, got, err)
		}
	}
	ch, msg, err := events.ParsePostKey("1234/56")
	if err != nil || ch != 1234 || msg != 56 {
		t.Fatalf("ParsePostKey = %d %d %v", ch, msg, err)
	}
}

func TestRevCompare(t *testing.T) {
	older, newer := events.Rev{Version: 1, Revision: 5}, events.Rev{Version: 2}
	if older.Compare(newer) != -1 || newer.Compare(older) != 1 || older.Compare(older) != 0 {
		t.Fatal("Rev.Compare: edit version dominates revision")
	}
	if (events.Rev{Revision: 1}).Compare(events.Rev{}) != 1 {
		t.Fatal("a vision re-tag of the same version is newer")
	}
}
