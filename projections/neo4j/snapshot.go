package neo4j

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/projections"
)

// Snapshot sections are the node labels (Labels) and relationship types (Types).
//
// A node line is "<ref>\t<properties as JSON>", a relationship line
// "<start ref>\t<end ref>\t<properties as JSON>". A ref is "<Label>:<key>": the key property
// of the node (Post.key, Channel.id, or "@<username>" for a channel known only by username,
// Tag.name, Topic.name, Page.url, Domain.name, Image.sha256, Label.name, Album.key, Trend.key,
// Checkpoint.projection). JSON keys are
// sorted and datetimes are RFC 3339 in UTC. Every property comes from a fact, except the
// rebuild bookkeeping of the checkpoint node (random ids and a wall-clock start), which is
// left out.

// nodeKey is the Cypher expression of a node's key, matching ref.
const nodeKey = `coalesce(%[1]s.key, toString(%[1]s.id), %[1]s.name, %[1]s.url, %[1]s.sha256, '@' + %[1]s.username, %[1]s.projection)`

var snapshotSkip = map[string]bool{"rebuild_id": true, "rebuild_started_at": true, "swapped_id": true}

// Snapshot renders the whole graph canonically.
func (p *Projection) Snapshot(ctx context.Context) (projections.Snapshot, error) {
	snap := projections.Snapshot{}
	err := p.read(ctx, "snapshot", func(tx nd.ExplicitTransaction) error {
		for _, label := range Labels {
			lines := []string{}
			err := query(ctx, tx, `MATCH (n:`+label+`) RETURN properties(n)`, nil, func(r *nd.Record) error {
				props, _ := r.Values[0].(map[string]any)
				for k := range snapshotSkip {
					delete(props, k)
				}
				b, err := canonical(props)
				if err != nil {
					return err
				}
				lines = append(lines, nodeRef(label, props)+"\t"+b)
				return nil
			})
			if err != nil {
				return err
			}
			snap[label] = lines
		}
		labels := strAny(Labels)
		for _, typ := range Types {
			lines := []string{}
			cy := `MATCH (a)-[r:` + typ + `]->(b)
RETURN [l IN labels(a) WHERE l IN $labels][0], ` + fmt.Sprintf(nodeKey, "a") +
				`, [l IN labels(b) WHERE l IN $labels][0], ` + fmt.Sprintf(nodeKey, "b") + `, properties(r)`
			err := query(ctx, tx, cy, map[string]any{"labels": labels}, func(r *nd.Record) error {
				la, _ := r.Values[0].(string)
				ka, _ := r.Values[1].(string)
				lb, _ := r.Values[2].(string)
				kb, _ := r.Values[3].(string)
				props, _ := r.Values[4].(map[string]any)
				b, err := canonical(props)
				if err != nil {
					return err
				}
				lines = append(lines, la+":"+ka+"\t"+lb+":"+kb+"\t"+b)
				return nil
			})
			if err != nil {
				return err
			}
			snap[typ] = lines
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap.Sort(), nil
}

// nodeRef is "<label>:<key>" of a node given its properties (see nodeKey).
func nodeRef(label string, props map[string]any) string {
	for _, k := range []string{"key", "id", "name", "url", "sha256", "username", "projection"} {
		switch v := props[k].(type) {
		case string:
			if k == "username" {
				return label + ":@" + v
			}
			return label + ":" + v
		case int64:
			return label + ":" + strconv.FormatInt(v, 10)
		}
	}
	return label + ":?"
}

// canonical renders properties as JSON with sorted keys and UTC RFC 3339 datetimes.
func canonical(props map[string]any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(plain(props)); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func plain(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}
