package search_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	nd "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/tgflow/tgflow/internal/testenv"
	"github.com/tgflow/tgflow/projections/neo4j"
	"github.com/tgflow/tgflow/projections/projectiontest"
	"github.com/tgflow/tgflow/services/search"
	"github.com/tgflow/tgflow/services/search/searchtest"
)

// clearGraph empties the one database of Neo4j Community (the test binary holds the lock of
// testenv.Neo4j, so no other test binary uses it meanwhile).
func clearGraph(t testing.TB, d nd.DriverWithContext) {
	t.Helper()
	ctx := context.Background()
	for _, cy := range []string{
		`MATCH ()-[r]->() CALL { WITH r DELETE r } IN TRANSACTIONS OF 10000 ROWS`,
		`MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS`,
	} {
		s := d.NewSession(ctx, nd.SessionConfig{})
		res, err := s.Run(ctx, cy, nil) // CALL … IN TRANSACTIONS needs an auto-commit transaction
		if err == nil {
			_, err = res.Consume(ctx)
		}
		if cerr := s.Close(ctx); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("clear the graph: %v", err)
		}
	}
}

// TestRelatedPostsFromTheGraph: --related lists the posts sharing a tag with the asked one,
// with the path that connects them, completed from Postgres; an unknown post is ErrNotFound.
func TestRelatedPostsFromTheGraph(t *testing.T) {
	uri, user, password := testenv.Neo4j(t)
	auth := nd.NoAuth()
	if user != "" {
		auth = nd.BasicAuth(user, password, "")
	}
	driver, err := nd.NewDriverWithContext(uri, auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = driver.Close(context.Background()) })
	clearGraph(t, driver)
	t.Cleanup(func() { clearGraph(t, driver) })
	c, err := searchtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := c.Events(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	facts := searchtest.Facts(evs)
	p, err := neo4j.New(ctxT(t), driver, neo4j.Options{})
	if err != nil {
		t.Fatal(err)
	}
	projectiontest.ApplyBatches(t, p, facts, 200)

	svc := &search.Service{Graph: search.Neo4j{Driver: driver}}
	tests := []struct {
		name, ref, want, path string
	}{
		{name: "by id", ref: "1001/7", want: "1001/5", path: "tag: Tag безопасность"},
		{name: "by username", ref: "@tech_ru/7", want: "1001/5", path: "tag: Tag безопасность"},
		{name: "across channels", ref: "1002/2", want: "1001/1", path: "tag: Tag go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := svc.Related(ctxT(t), tt.ref, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rel {
				got = append(got, r.Key())
				if r.Key() == tt.want {
					if strings.Join(r.Path, "; ") != tt.path || r.Backend != "neo4j" || r.Link == "" {
						t.Errorf("%s: path %q backend %q link %q, want %q", r.Key(), r.Path, r.Backend, r.Link, tt.path)
					}
				}
			}
			if len(rel) == 0 || rel[0].Key() != tt.want {
				t.Fatalf("related to %s: %v, want %s first", tt.ref, got, tt.want)
			}
		})
	}
	if _, err := svc.Related(ctxT(t), "1001/999", 10); !errors.Is(err, search.ErrNotFound) {
		t.Errorf("unknown post: %v, want ErrNotFound", err)
	}
	if _, err := svc.Related(ctxT(t), "1001", 10); !errors.Is(err, search.ErrInvalid) {
		t.Errorf("bad ref: %v, want ErrInvalid", err)
	}
}
