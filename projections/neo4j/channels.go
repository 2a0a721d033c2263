package neo4j

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/events"
	"github.com/tgflow/tgflow/projections"
)

// A channel is named by its id, its username, or both. A channel subscribed by username
// alone is a Channel node without id; the first fact naming both merges it into the node of
// the id (or gives it the id). Channel facts are few (subscriptions, one per ingest run), and
// merging is a read-modify-write, so a batch reads the channel nodes its facts name, folds
// the facts in log order in memory and writes the resulting nodes.

// chanNode is one Channel node during the fold.
type chanNode struct {
	eid      string // elementId of the stored node; "" for a node the batch creates
	storedLC any    // username_lc as stored
	props    map[string]any
	deleted  bool
	dirty    bool
}

type channelFold struct {
	byID   map[int64]*chanNode
	byUser map[string]*chanNode
	nodes  []*chanNode
}

const cyReadChannels = `MATCH (c:Channel) WHERE c.id IN $ids
RETURN elementId(c) AS eid, properties(c) AS props
UNION
MATCH (c:Channel) WHERE c.username_lc IN $names
RETURN elementId(c) AS eid, properties(c) AS props`

// applyChannels folds the channel facts and writes the changed Channel nodes.
func applyChannels(ctx context.Context, tx nd.ExplicitTransaction, facts []projections.Fact) error {
	if len(facts) == 0 {
		return nil
	}
	var ids, names []any
	for _, f := range facts {
		id, user := channelIdent(f.Event.Data)
		if id.Valid() {
			ids = append(ids, int64(id))
		}
		if user != "" {
			names = append(names, strings.ToLower(user))
		}
	}
	cf := &channelFold{byID: map[int64]*chanNode{}, byUser: map[string]*chanNode{}}
	err := query(ctx, tx, cyReadChannels, map[string]any{"ids": orEmpty(ids), "names": orEmpty(names)}, func(r *nd.Record) error {
		eid, _ := r.Values[0].(string)
		props, _ := r.Values[1].(map[string]any)
		cf.add(&chanNode{eid: eid, storedLC: props["username_lc"], props: withDefaults(props)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read channels: %w", err)
	}
	for _, f := range facts {
		cf.apply(f.Event.Data)
	}
	return cf.write(ctx, tx)
}

func channelIdent(d events.Payload) (events.ChannelID, string) {
	switch p := d.(type) {
	case *events.ChannelSubscribed:
		return p.ChannelID, p.Username
	case *events.ChannelUnsubscribed:
		return p.ChannelID, p.Username
	case *events.ChannelSynced:
		return p.ChannelID, p.Username
	case *events.ChannelFailed:
		return p.ChannelID, p.Username
	}
	return 0, ""
}

// withDefaults gives a node the properties every Channel has, whichever fact created it.
func withDefaults(props map[string]any) map[string]any {
	if props == nil {
		props = map[string]any{}
	}
	if _, ok := props["subscribed"]; !ok {
		props["subscribed"] = false
	}
	if _, ok := props["sync_runs"]; !ok {
		props["sync_runs"] = int64(0)
	}
	return props
}

func (cf *channelFold) add(n *chanNode) {
	cf.nodes = append(cf.nodes, n)
	if id, ok := n.props["id"].(int64); ok {
		cf.byID[id] = n
	}
	if lc, ok := n.props["username_lc"].(string); ok {
		cf.byUser[lc] = n
	}
}

func (cf *channelFold) create(props map[string]any) *chanNode {
	n := &chanNode{props: withDefaults(props), dirty: true}
	cf.add(n)
	return n
}

func (cf *channelFold) apply(d events.Payload) {
	id, user := channelIdent(d)
	n := cf.locate(id, user)
	n.dirty = true
	m := n.props
	switch p := d.(type) {
	case *events.ChannelSubscribed:
		m["subscribed"], m["subscribed_at"] = true, p.At.UTC()
		m["backfill_messages"], m["backfill_days"] = optInt(p.Backfill.Messages), optInt(p.Backfill.Days)
	case *events.ChannelUnsubscribed:
		m["subscribed"], m["unsubscribed_at"] = false, p.At.UTC()
	case *events.ChannelSynced:
		if p.Title != "" {
			m["title"] = p.Title
		}
		runs, _ := m["sync_runs"].(int64)
		m["sync_runs"] = runs + 1
		m["last_sync_started_at"], m["last_synced_at"], m["last_sync_backfill"] = p.StartedAt.UTC(), p.FinishedAt.UTC(), p.Backfill
		m["last_cursor"], m["last_fetched"], m["last_new"] = p.Cursor, int64(p.Fetched), int64(p.New)
		m["last_edited"], m["last_deleted"], m["last_media_stored"] = int64(p.Edited), int64(p.Deleted), int64(p.MediaStored)
		var skipped []string
		for k, v := range p.Skipped {
			skipped = append(skipped, fmt.Sprintf("%s=%d", k, v))
		}
		slices.Sort(skipped)
		m["last_skipped"] = strs(skipped)
	case *events.ChannelFailed:
		m["last_error_code"], m["last_error"], m["last_error_at"] = p.Code, opt(p.Reason), p.At.UTC()
		m["last_error_permanent"], m["retry_at"] = p.Permanent, nil
		if !p.RetryAt.IsZero() {
			m["retry_at"] = p.RetryAt.UTC()
		}
	}
}

// locate returns the node of the channel named by id and/or username, creating it if
// needed. A fact naming both merges a node known only by that username into the node of the
// id (or gives it the id), and takes the username from a node of another id that held it
// (usernames move between channels).
func (cf *channelFold) locate(id events.ChannelID, username string) *chanNode {
	lc := strings.ToLower(username)
	if !id.Valid() {
		if n := cf.byUser[lc]; n != nil {
			return n
		}
		return cf.create(map[string]any{"username": username, "username_lc": lc})
	}
	n := cf.byID[int64(id)]
	if username == "" {
		if n == nil {
			n = cf.create(map[string]any{"id": int64(id)})
		}
		return n
	}
	if holder := cf.byUser[lc]; holder != nil && holder != n {
		if _, hasID := holder.props["id"]; !hasID {
			if n == nil {
				holder.props["id"] = int64(id)
				cf.byID[int64(id)] = holder
				n = holder
			} else {
				mergeInto(n, holder)
				holder.deleted = true
				delete(cf.byUser, lc)
			}
		} else {
			delete(holder.props, "username")
			delete(holder.props, "username_lc")
			holder.dirty = true
			delete(cf.byUser, lc)
		}
	}
	if n == nil {
		n = cf.create(map[string]any{"id": int64(id)})
	}
	if old, ok := n.props["username_lc"].(string); ok && old != lc && cf.byUser[old] == n {
		delete(cf.byUser, old)
	}
	n.props["username"], n.props["username_lc"] = username, lc
	cf.byUser[lc] = n
	n.dirty = true
	return n
}

// Properties of the subscription and of the last failure, moved as groups when a node known
// by username is merged into the node of its id.
var (
	subscriptionProps = []string{"subscribed", "subscribed_at", "unsubscribed_at", "backfill_messages", "backfill_days"}
	errorProps        = []string{"last_error_code", "last_error", "last_error_at", "last_error_permanent", "retry_at"}
)

// mergeInto folds u (known only by username) into n: the subscription state of the node
// that changed it last wins, and so does the later failure; the title stays n's if it has
// one. Sync state exists only on nodes with an id.
func mergeInto(n, u *chanNode) {
	if after(latest(u.props, "subscribed_at", "unsubscribed_at"), latest(n.props, "subscribed_at", "unsubscribed_at")) {
		copyProps(n.props, u.props, subscriptionProps)
	}
	if after(latest(u.props, "last_error_at"), latest(n.props, "last_error_at")) {
		copyProps(n.props, u.props, errorProps)
	}
	if _, ok := n.props["title"]; !ok && u.props["title"] != nil {
		n.props["title"] = u.props["title"]
	}
	n.dirty = true
}

func copyProps(dst, src map[string]any, keys []string) {
	for _, k := range keys {
		if v, ok := src[k]; ok && v != nil {
			dst[k] = v
		} else {
			delete(dst, k)
		}
	}
}

func latest(m map[string]any, keys ...string) time.Time {
	var t time.Time
	for _, k := range keys {
		if v, ok := m[k].(time.Time); ok && v.After(t) {
			t = v
		}
	}
	return t
}

// after reports whether a is later than b; the zero time is earlier than any other.
func after(a, b time.Time) bool { return !a.IsZero() && a.After(b) }

// write deletes the merged nodes, frees the usernames that moved, then writes every changed
// node whole (so no uniqueness constraint sees two holders of one username).
func (cf *channelFold) write(ctx context.Context, tx nd.ExplicitTransaction) error {
	var drop, free, update, create []any
	for _, n := range cf.nodes {
		switch {
		case n.deleted && n.eid != "":
			drop = append(drop, n.eid)
		case n.deleted || !n.dirty:
		case n.eid == "":
			create = append(create, map[string]any{"props": n.props})
		default:
			if n.storedLC != nil && n.storedLC != n.props["username_lc"] {
				free = append(free, n.eid)
			}
			update = append(update, map[string]any{"eid": n.eid, "props": n.props})
		}
	}
	steps := []struct {
		cypher string
		rows   []any
	}{
		{`UNWIND $rows AS e MATCH (c:Channel) WHERE elementId(c) = e DETACH DELETE c`, drop},
		{`UNWIND $rows AS e MATCH (c:Channel) WHERE elementId(c) = e REMOVE c.username_lc`, free},
		{`UNWIND $rows AS r MATCH (c:Channel) WHERE elementId(c) = r.eid SET c = r.props`, update},
		{`UNWIND $rows AS r CREATE (c:Channel) SET c = r.props`, create},
	}
	for _, s := range steps {
		if len(s.rows) == 0 {
			continue
		}
		if err := exec(ctx, tx, s.cypher, map[string]any{"rows": s.rows}); err != nil {
			return fmt.Errorf("write channels: %w", err)
		}
	}
	return nil
}

func optInt(n int) any {
	if n == 0 {
		return nil
	}
	return int64(n)
}
