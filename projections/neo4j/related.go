package neo4j

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/events"
)

// Kinds of connection between two posts, as Connection.Kind.
const (
	// ConnTag: both posts are TAGGED with the tag (newest tagged revisions).
	ConnTag = "tag"
	// ConnPage: both posts LINKS_TO the page (newest enriched revisions).
	ConnPage = "page"
	// ConnDomain: the posts link to different pages ON the same domain, and share no page
	// there (a shared page is a ConnPage and does not count its domain again).
	ConnDomain = "domain"
	// ConnImage: both posts show the same picture (the same media sha256: one Image node).
	ConnImage = "image"
	// ConnNearDuplicate: an image of one post is a NEAR_DUPLICATE of an image of the other
	// (either direction).
	ConnNearDuplicate = "near_duplicate"
)

// Weights holds the weight of each connection kind in RelatedPost.Score: a shared page or a
// same or near-duplicate picture says more than a shared tag or domain.
var Weights = map[string]int{
	ConnTag:           1,
	ConnDomain:        1,
	ConnPage:          3,
	ConnImage:         3,
	ConnNearDuplicate: 3,
}

// Limits of Related.
const (
	DefaultRelatedLimit = 20
	MaxRelatedLimit     = 500
	// RelatedFanOut bounds the work of a common tag: of the posts sharing one tag, only the
	// newest RelatedFanOut (by posted_at, then key) are considered. A tag on thousands of
	// posts says little about any two of them.
	RelatedFanOut = 1000
)

var (
	// ErrPostNotFound: the graph has no such post, or only a stub of it (a post named by a
	// forward, reply, album or trend whose own facts never arrived).
	ErrPostNotFound = errors.New("post not in the graph")
	// ErrPostDeleted: the post is a tombstone; its tags, pages and images were dropped.
	ErrPostDeleted = errors.New("post is deleted")
	// ErrChannelNotFound: ResolveChannel found no channel of that username.
	ErrChannelNotFound = errors.New("channel not in the graph")
	// ErrBadRelatedArgs: a non-positive channel or message id, or a negative limit.
	ErrBadRelatedArgs = errors.New("bad related-posts arguments")
)

// RelatedPost is a post connected to the asked one, with every connection found.
type RelatedPost struct {
	ChannelID       events.ChannelID
	MessageID       int64
	Key             string // "<channel_id>/<message_id>"
	ChannelUsername string // the Channel node's username, "" when unknown
	ChannelTitle    string
	PostedAt        time.Time // zero when the post's content never arrived (derived facts only)
	Text            string    // the excerpt the graph keeps (Options.TextRunes)
	Tags            []string  // names of the post's tags, sorted
	// Score is the sum of the connections' weights (see Weights).
	Score int
	// Connections, the heaviest first, then by kind and path.
	Connections []Connection
}

// Connection is one path from the asked post to a related post.
type Connection struct {
	Kind   string // ConnTag, ConnPage, ConnDomain, ConnImage or ConnNearDuplicate
	Weight int    // Weights[Kind]
	// Path lists the nodes between the two posts, from the asked post's side:
	//   tag:            [Tag]
	//   page:           [Page]
	//   domain:         [Page (asked post's), Domain, Page (related post's)]
	//   image:          [Image]
	//   near_duplicate: [Image (asked post's), Image (related post's)]
	// For a domain the pages shown are the smallest URLs of each side on that domain.
	Path []PathNode
	// Distance is the Hamming distance of the pHashes for near_duplicate, 0 otherwise.
	Distance int
}

// PathNode is a node on a connection's path: its label and its key (a tag, page URL, domain
// name or image sha256).
type PathNode struct {
	Label string
	Name  string
}

// String renders the connection as "kind: Label name -> Label name".
func (c Connection) String() string {
	parts := make([]string, len(c.Path))
	for i, n := range c.Path {
		parts[i] = n.Label + " " + n.Name
	}
	s := c.Kind + ": " + strings.Join(parts, " -> ")
	if c.Kind == ConnNearDuplicate {
		s += fmt.Sprintf(" (distance %d)", c.Distance)
	}
	return s
}

const cyRelatedPost = `MATCH (p:Post {key: $key}) RETURN coalesce(p.stub, false), p.deleted_at IS NOT NULL`

// cyRelated finds the connections of each kind, drops the post itself and tombstones, and
// ranks by score, then the newest post, then the key.
const cyRelated = `MATCH (p:Post {key: $key})
CALL {
  WITH p
  MATCH (p)-[:TAGGED]->(t:Tag)
  CALL {
    WITH t
    MATCH (t)<-[:TAGGED]-(q:Post)
    RETURN q ORDER BY q.posted_at DESC, q.key LIMIT $fanout
  }
  RETURN q, 'tag' AS kind, [['Tag', t.name]] AS path, 0 AS distance
  UNION ALL
  WITH p
  MATCH (p)-[:LINKS_TO]->(pg:Page)<-[:LINKS_TO]-(q:Post)
  RETURN q, 'page' AS kind, [['Page', pg.url]] AS path, 0 AS distance
  UNION ALL
  WITH p
  MATCH (p)-[:LINKS_TO]->(a:Page)-[:ON]->(d:Domain)<-[:ON]-(b:Page)<-[:LINKS_TO]-(q:Post)
  WITH p, q, d, min(a.url) AS ma, min(b.url) AS mb
  WHERE NOT EXISTS { MATCH (p)-[:LINKS_TO]->(s:Page)<-[:LINKS_TO]-(q) WHERE (s)-[:ON]->(d) }
  RETURN q, 'domain' AS kind, [['Page', ma], ['Domain', d.name], ['Page', mb]] AS path, 0 AS distance
  UNION ALL
  WITH p
  MATCH (p)-[:HAS_IMAGE]->(i:Image)<-[:HAS_IMAGE]-(q:Post)
  RETURN q, 'image' AS kind, [['Image', i.sha256]] AS path, 0 AS distance
  UNION ALL
  WITH p
  MATCH (p)-[:HAS_IMAGE]->(i:Image)-[n:NEAR_DUPLICATE]-(j:Image)<-[:HAS_IMAGE]-(q:Post)
  WHERE i <> j
  WITH q, i, j, min(n.distance) AS distance
  RETURN q, 'near_duplicate' AS kind, [['Image', i.sha256], ['Image', j.sha256]] AS path, distance
}
WITH p, q, kind, path, distance
WHERE q <> p AND q.deleted_at IS NULL
WITH q, collect([kind, path, distance]) AS links, sum($weights[kind]) AS score
ORDER BY score DESC, coalesce(q.posted_at, datetime('1970-01-01T00:00:00Z')) DESC, q.key
LIMIT $limit
OPTIONAL MATCH (c:Channel)-[:PUBLISHED]->(q)
OPTIONAL MATCH (q)-[:TAGGED]->(tg:Tag)
WITH q, links, score, c, collect(tg.name) AS tags
RETURN q.key, q.channel_id, q.message_id, q.posted_at, q.text, c.username, c.title, tags, score, links
ORDER BY score DESC, coalesce(q.posted_at, datetime('1970-01-01T00:00:00Z')) DESC, q.key`

// Related lists the posts connected to the post channelID/messageID through shared tags,
// shared pages, pages on a shared domain, the same picture or near-duplicate pictures (see
// the Conn* kinds), each with every connection's path and a score (the sum of Weights),
// best first: higher score, then the newer post, then the key. Deleted posts are never
// listed. limit 0 means DefaultRelatedLimit; it is capped at MaxRelatedLimit.
//
// db is the Neo4j database ("" for the server's default), as in Options.Database. The
// read runs in one read transaction of a session of its own; the driver stays the
// caller's. Errors: ErrBadRelatedArgs, ErrPostNotFound, ErrPostDeleted, and the server's
// unavailability wrapped with projections.ErrBackend.
func Related(ctx context.Context, driver nd.DriverWithContext, db string, channelID events.ChannelID, messageID int64, limit int) ([]RelatedPost, error) {
	if !channelID.Valid() || messageID <= 0 || limit < 0 {
		return nil, fmt.Errorf("%w: channel %d, message %d, limit %d", ErrBadRelatedArgs, channelID, messageID, limit)
	}
	if limit == 0 {
		limit = DefaultRelatedLimit
	}
	limit = min(limit, MaxRelatedLimit)
	key := events.PostKey(channelID, messageID)
	weights := make(map[string]any, len(Weights))
	for k, w := range Weights {
		weights[k] = int64(w)
	}
	r := &Projection{driver: driver, opts: Options{Database: db}}
	var out []RelatedPost
	err := r.read(ctx, "related", func(tx nd.ExplicitTransaction) error {
		found, stub, deleted := false, false, false
		err := query(ctx, tx, cyRelatedPost, map[string]any{"key": key}, func(rec *nd.Record) error {
			found = true
			stub, _ = rec.Values[0].(bool)
			deleted, _ = rec.Values[1].(bool)
			return nil
		})
		switch {
		case err != nil:
			return err
		case !found || stub:
			return fmt.Errorf("%w: %s", ErrPostNotFound, key)
		case deleted:
			return fmt.Errorf("%w: %s", ErrPostDeleted, key)
		}
		return query(ctx, tx, cyRelated, map[string]any{"key": key, "limit": int64(limit), "weights": weights, "fanout": int64(RelatedFanOut)}, func(rec *nd.Record) error {
			rp, err := relatedOf(rec)
			if err != nil {
				return err
			}
			out = append(out, rp)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// relatedOf decodes one row of cyRelated.
func relatedOf(rec *nd.Record) (RelatedPost, error) {
	v := rec.Values
	var rp RelatedPost
	rp.Key, _ = v[0].(string)
	ch, _ := v[1].(int64)
	rp.ChannelID = events.ChannelID(ch)
	rp.MessageID, _ = v[2].(int64)
	rp.PostedAt, _ = v[3].(time.Time)
	rp.Text, _ = v[4].(string)
	rp.ChannelUsername, _ = v[5].(string)
	rp.ChannelTitle, _ = v[6].(string)
	tags, _ := v[7].([]any)
	for _, t := range tags {
		if s, ok := t.(string); ok {
			rp.Tags = append(rp.Tags, s)
		}
	}
	slices.Sort(rp.Tags)
	score, _ := v[8].(int64)
	rp.Score = int(score)
	links, _ := v[9].([]any)
	for _, l := range links {
		c, err := connectionOf(l)
		if err != nil {
			return rp, fmt.Errorf("related post %s: %w", rp.Key, err)
		}
		rp.Connections = append(rp.Connections, c)
	}
	slices.SortFunc(rp.Connections, func(a, b Connection) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.String(), b.String()))
	})
	return rp, nil
}

// connectionOf decodes [kind, [[label, name], …], distance].
func connectionOf(l any) (Connection, error) {
	t, ok := l.([]any)
	if !ok || len(t) != 3 {
		return Connection{}, fmt.Errorf("connection %v: want [kind, path, distance]", l)
	}
	kind, _ := t[0].(string)
	w, known := Weights[kind]
	if !known {
		return Connection{}, fmt.Errorf("connection of unknown kind %q", kind)
	}
	c := Connection{Kind: kind, Weight: w}
	dist, _ := t[2].(int64)
	c.Distance = int(dist)
	path, _ := t[1].([]any)
	for _, n := range path {
		pair, _ := n.([]any)
		if len(pair) != 2 {
			return Connection{}, fmt.Errorf("connection %s: bad path node %v", kind, n)
		}
		label, _ := pair[0].(string)
		name, _ := pair[1].(string)
		c.Path = append(c.Path, PathNode{Label: label, Name: name})
	}
	return c, nil
}

// ResolveChannel returns the id of a channel named by its bare id ("1234567") or its
// username ("@name" or "name", case-insensitive), as --related CHANNEL/ID may name it.
// Errors: ErrChannelNotFound, and the server's unavailability wrapped with
// projections.ErrBackend.
func ResolveChannel(ctx context.Context, driver nd.DriverWithContext, db, name string) (events.ChannelID, error) {
	if id, err := events.ParseChannelID(name); err == nil && id.Valid() {
		return id, nil
	}
	user := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "@"))
	if user == "" {
		return 0, fmt.Errorf("%w: empty name", ErrChannelNotFound)
	}
	r := &Projection{driver: driver, opts: Options{Database: db}}
	var id int64
	err := r.read(ctx, "resolve channel", func(tx nd.ExplicitTransaction) error {
		return query(ctx, tx, `MATCH (c:Channel {username_lc: $u}) WHERE c.id IS NOT NULL RETURN c.id`, map[string]any{"u": user},
			func(rec *nd.Record) error {
				id, _ = rec.Values[0].(int64)
				return nil
			})
	})
	if err != nil {
		return 0, err
	}
	if id <= 0 {
		return 0, fmt.Errorf("%w: @%s", ErrChannelNotFound, user)
	}
	return events.ChannelID(id), nil
}
