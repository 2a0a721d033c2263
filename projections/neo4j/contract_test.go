package neo4j_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
	"github.com/tgflow/tgflow/projections/projectiontest"
)

func TestContract(t *testing.T) {
	d := newDriver(t)
	projectiontest.Run(t, projectiontest.Harness{
		// Each call clears the one database: the suite is done with the previous projection
		// when it asks for the next.
		New:    func(t *testing.T) projections.Projection { return newProjection(t, d) },
		Expect: expectScript,
	})
}

func at(min int) string {
	return projectiontest.T0.Add(time.Duration(min) * time.Minute).Format(time.RFC3339)
}

func postRef(r events.PostRef) string { return "Post:" + r.Key() }

func expectScript(t *testing.T, s projectiontest.Script, snap projections.Snapshot) {
	editAt := projectiontest.T0.Add(20 * time.Minute)
	p10, p11 := postRef(projectiontest.PostEdited), postRef(projectiontest.PostDeleted)
	p20, p21 := postRef(projectiontest.PostReplied), postRef(projectiontest.PostForward)
	chA, chB := fmt.Sprintf("Channel:%d", projectiontest.ChannelA), fmt.Sprintf("Channel:%d", projectiontest.ChannelB)

	t.Run("edited post has the edited text and version", func(t *testing.T) {
		p := one(t, snap, "Post", p10)
		field(t, p10, p, "text", "Выборы перенесены: https://example.org/a #economy")
		field(t, p10, p, "version", editAt.Unix())
		field(t, p10, p, "edited_at", editAt.Format(time.RFC3339))
		field(t, p10, p, "posted_at", at(1))
		field(t, p10, p, "deleted_at", nil)
		field(t, p10, p, "stub", nil)
		field(t, p10, p, "embedding_version", editAt.Unix())
		field(t, p10, p, "embedding_revision", 0)
		field(t, p10, p, "vision_labels", []string{"ballot", "box"})
	})

	t.Run("tags of the newest revision only", func(t *testing.T) {
		tagged := edgesFrom(t, snap, "TAGGED", p10)
		if len(tagged) != 1 || tagged[0].to != "Tag:выборы" {
			t.Fatalf("post 10 TAGGED = %v, want only выборы of the edit", tagged)
		}
		e := tagged[0].props
		field(t, "TAGGED", e, "trigger", events.TriggerEdit)
		field(t, "TAGGED", e, "version", editAt.Unix())
		field(t, "TAGGED", e, "revision", 0)
		p := one(t, snap, "Post", p10)
		field(t, p10, p, "tags_version", editAt.Unix())
		field(t, p10, p, "tags_trigger", events.TriggerEdit)
		if _, ok := nodes(t, snap, "Tag")["Tag:stale-tag"]; ok {
			t.Error("the stale tagged fact created Tag:stale-tag")
		}
		for _, e := range edges(t, snap, "TAGGED") {
			if e.to == "Tag:stale-tag" {
				t.Errorf("stale TAGGED edge %v", e)
			}
		}
		// Earlier accepted revisions created their tags; they stay as vocabulary.
		if _, ok := nodes(t, snap, "Tag")["Tag:голосование"]; !ok {
			t.Error("Tag:голосование of the vision re-tag is missing")
		}
	})

	t.Run("deleted post is a tombstone", func(t *testing.T) {
		p := one(t, snap, "Post", p11)
		field(t, p11, p, "deleted_at", at(31))
		field(t, p11, p, "text", "Short-lived post about markets")
		field(t, p11, p, "tags_version", nil)
		field(t, p11, p, "embedding_version", nil)
		if e := edgesFrom(t, snap, "TAGGED", p11); len(e) != 0 {
			t.Errorf("deleted post keeps TAGGED %v", e)
		}
		deleted := 0
		for _, n := range nodes(t, snap, "Post") {
			if _, ok := n.props["deleted_at"]; ok {
				deleted++
			}
		}
		if deleted != 1 {
			t.Errorf("%d tombstones, want 1", deleted)
		}
	})

	t.Run("every post is published by its channel", func(t *testing.T) {
		posts := nodes(t, snap, "Post")
		if len(posts) != 7 {
			t.Errorf("%d posts, want 7: %v", len(posts), snap["Post"])
		}
		by := map[string][]string{}
		for _, e := range edges(t, snap, "PUBLISHED") {
			by[e.to] = append(by[e.to], e.from)
		}
		for ref, n := range posts {
			want := fmt.Sprintf("Channel:%v", n.props["channel_id"])
			if got := by[ref]; len(got) != 1 || got[0] != want {
				t.Errorf("%s PUBLISHED by %v, want [%s]", ref, got, want)
			}
			if _, stub := n.props["stub"]; stub {
				t.Errorf("%s is still a stub", ref)
			}
		}
	})

	t.Run("album with three items", func(t *testing.T) {
		ref := "Album:" + events.AlbumKey(projectiontest.ChannelA, projectiontest.AlbumGroupedID)
		a := one(t, snap, "Album", ref)
		field(t, ref, a, "summary", "Three photos of a rally")
		field(t, ref, a, "outcome", events.AlbumComplete)
		field(t, ref, a, "item_count", 3)
		field(t, ref, a, "caption", "Album caption")
		var items []string
		for _, e := range edges(t, snap, "IN_ALBUM") {
			if e.to != ref {
				continue
			}
			items = append(items, e.from)
			pos, _ := e.props["position"].(float64)
			if want := postRef(events.PostRef{ChannelID: projectiontest.ChannelA, MessageID: projectiontest.AlbumItems[int(pos)]}); e.from != want {
				t.Errorf("IN_ALBUM position %v from %s, want %s", pos, e.from, want)
			}
		}
		if len(items) != 3 {
			t.Errorf("IN_ALBUM edges from %v, want the 3 items", items)
		}
	})

	t.Run("links to pages on domains", func(t *testing.T) {
		links := edgesFrom(t, snap, "LINKS_TO", p10)
		if len(links) != 1 || links[0].to != "Page:https://example.org/a" {
			t.Fatalf("post 10 LINKS_TO = %v", links)
		}
		field(t, "LINKS_TO", links[0].props, "version", editAt.Unix())
		pg := one(t, snap, "Page", "Page:https://example.org/a")
		field(t, "page a", pg, "title", "Example A")
		field(t, "page a", pg, "status", 200)
		field(t, "page a", pg, "error", nil)
		if on := edgesFrom(t, snap, "ON", "Page:https://example.org/a"); len(on) != 1 || on[0].to != "Domain:example.org" {
			t.Errorf("page a ON %v", on)
		}
		chips := one(t, snap, "Page", "Page:https://chips.example.com/x")
		field(t, "chips page", chips, "error", "timeout after 10s")
		field(t, "chips page", chips, "fetched_at", nil)
		if on := edgesFrom(t, snap, "ON", "Page:https://chips.example.com/x"); len(on) != 1 || on[0].to != "Domain:chips.example.com" {
			t.Errorf("chips page ON %v", on)
		}
		if l := edgesFrom(t, snap, "LINKS_TO", p20); len(l) != 1 || l[0].to != "Page:https://chips.example.com/x" {
			t.Errorf("post 20 LINKS_TO %v", l)
		}
	})

	t.Run("forward and reply", func(t *testing.T) {
		var fwd []string
		for _, e := range edgesFrom(t, snap, "FORWARDED_FROM", p21) {
			fwd = append(fwd, e.to)
		}
		slices.Sort(fwd)
		if want := []string{chA, p10}; !slices.Equal(fwd, want) {
			t.Errorf("post 21 FORWARDED_FROM %v, want %v", fwd, want)
		}
		if r := edgesFrom(t, snap, "REPLIES_TO", p21); len(r) != 1 || r[0].to != p20 {
			t.Errorf("post 21 REPLIES_TO %v, want %s", r, p20)
		}
		p := one(t, snap, "Post", p20)
		field(t, p20, p, "views", 500)
		field(t, p20, p, "metrics_at", at(30))
	})

	t.Run("trend", func(t *testing.T) {
		var trends []node
		for _, n := range nodes(t, snap, "Trend") {
			trends = append(trends, n)
		}
		if len(trends) != 1 {
			t.Fatalf("trends = %v", snap["Trend"])
		}
		tr := trends[0]
		field(t, tr.ref, tr.props, "tag", "выборы")
		field(t, tr.ref, tr.props, "count", 3)
		field(t, tr.ref, tr.props, "window_end", at(60))
		if of := edgesFrom(t, snap, "OF", tr.ref); len(of) != 1 || of[0].to != "Tag:выборы" {
			t.Errorf("trend OF %v", of)
		}
		var samples []string
		for _, e := range edgesFrom(t, snap, "SAMPLE", tr.ref) {
			samples = append(samples, e.to)
		}
		slices.Sort(samples)
		if want := []string{p10, p21}; !slices.Equal(samples, want) {
			t.Errorf("trend SAMPLE %v, want %v", samples, want)
		}
	})

	t.Run("image of the post with its labels", func(t *testing.T) {
		img := "Image:" + strings.Repeat("aa11", 16)
		if h := edgesFrom(t, snap, "HAS_IMAGE", p10); len(h) != 1 || h[0].to != img {
			t.Fatalf("post 10 HAS_IMAGE %v, want %s", h, img)
		}
		i := one(t, snap, "Image", img)
		field(t, img, i, "description", "A ballot box")
		field(t, img, i, "width", 640)
		field(t, img, i, "analyzed_at", at(6))
		var labels []string
		for _, e := range edgesFrom(t, snap, "LABELED", img) {
			labels = append(labels, e.to)
		}
		slices.Sort(labels)
		if want := []string{"Label:ballot", "Label:box"}; !slices.Equal(labels, want) {
			t.Errorf("image LABELED %v, want %v", labels, want)
		}
		ref := "Album:" + events.AlbumKey(projectiontest.ChannelA, projectiontest.AlbumGroupedID)
		if l := edgesFrom(t, snap, "LABELED", ref); len(l) != 1 || l[0].to != "Label:rally" {
			t.Errorf("album LABELED %v, want rally", l)
		}
	})

	t.Run("channel merged by username", func(t *testing.T) {
		chans := nodes(t, snap, "Channel")
		if _, ok := chans["Channel:@beta_digest"]; ok {
			t.Errorf("beta_digest is still a node of its own: %v", snap["Channel"])
		}
		beta := one(t, snap, "Channel", chB)
		field(t, chB, beta, "username", "beta_digest")
		field(t, chB, beta, "subscribed", true)
		field(t, chB, beta, "subscribed_at", at(0))
		field(t, chB, beta, "title", "Beta Digest")
		field(t, chB, beta, "sync_runs", 1)
		field(t, chB, beta, "last_skipped", []string{"video_too_large=1"})
		alpha := one(t, snap, "Channel", chA)
		field(t, chA, alpha, "username", "alpha_news")
		field(t, chA, alpha, "last_cursor", 32)
		gone := one(t, snap, "Channel", "Channel:@gone_channel")
		field(t, "gone", gone, "id", nil)
		field(t, "gone", gone, "subscribed", false)
		field(t, "gone", gone, "last_error_code", "USERNAME_NOT_OCCUPIED")
		field(t, "gone", gone, "last_error_permanent", true)
		temp := one(t, snap, "Channel", "Channel:@temp_channel")
		field(t, "temp", temp, "subscribed", false)
		field(t, "temp", temp, "unsubscribed_at", at(37))
		if len(chans) != 4 {
			t.Errorf("%d channels, want 4: %v", len(chans), snap["Channel"])
		}
	})

	t.Run("checkpoint", func(t *testing.T) {
		c := one(t, snap, "Checkpoint", "Checkpoint:neo4j")
		field(t, "checkpoint", c, "seq", int64(s.Facts[len(s.Facts)-1].Seq))
	})
}
