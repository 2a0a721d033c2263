package events_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
)

// One post version has one id whichever path observed it (the live reader, the export
// importer: they differ in origin and may differ in details); a new version has a new id;
// the recipe itself is pinned, since ids already in the log must stay reproducible.
func TestPostEventIDIsTheVersion(t *testing.T) {
	base := events.Post{PostRef: events.PostRef{ChannelID: 42, MessageID: 7},
		Date: time.Unix(1700000000, 0).UTC(), EditDate: 1700000100, Text: "x", Origin: "telegram"}
	live := events.PostEvent(&events.PostParsed{Post: base})
	exported := base
	exported.Origin = "export"
	exported.Views = 12
	if got := events.PostEvent(&events.PostParsed{Post: exported}).ID; got != live.ID {
		t.Fatalf("same version, two paths: ids %s and %s", live.ID, got)
	}
	edited := base
	edited.EditDate++
	if events.PostEvent(&events.PostParsed{Post: edited}).ID == live.ID {
		t.Fatal("a new version kept the old id")
	}
	if live.Producer() != events.ProducerIngest || !live.Time.Equal(base.Date) || live.Type != events.TypePostParsed {
		t.Fatalf("event %+v", live)
	}
	const pinned = "e5b9cdf083f0ba7f5e5ba4c4afe54aab"
	if live.ID != pinned {
		t.Fatalf("post id recipe changed: %s, want %s", live.ID, pinned)
	}
}

func TestAppendUnique(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		add  string
		want []string
	}{
		{"new", []string{"a"}, "b", []string{"a", "b"}},
		{"repeat", []string{"a", "b"}, "a", []string{"a", "b"}},
		{"empty", []string{"a"}, "", []string{"a"}},
		{"invalid utf-8", nil, "\xff", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := events.AppendUnique(tc.in, tc.add); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := events.AppendLink([]string{"https://a.example/"}, "tg://resolve?domain=x"); len(got) != 1 {
		t.Fatalf("a non-web link was kept: %q", got)
	}
	if got := events.AppendLink(nil, "https://a.example/"); len(got) != 1 {
		t.Fatalf("a web link was dropped: %q", got)
	}
}
