package neo4j

import (
	"context"
)

// Node labels and relationship types of the graph, in the order Snapshot renders them.
var (
	Labels = []string{"Channel", "Post", "Tag", "Topic", "Page", "Domain", "Image", "Label", "Album", "Trend", "Checkpoint"}
	Types  = []string{"PUBLISHED", "TAGGED", "ABOUT", "LINKS_TO", "ON", "HAS_IMAGE", "LABELED", "NEAR_DUPLICATE",
		"IN_ALBUM", "SAME_AS", "FORWARDED_FROM", "REPLIES_TO", "OF", "SAMPLE"}
)

// schema is every constraint and index, named so that operators recognise them. Uniqueness
// constraints come with their own range index, which every MERGE of the projection uses.
var schema = []string{
	`CREATE CONSTRAINT tgflow_channel_id IF NOT EXISTS FOR (c:Channel) REQUIRE c.id IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_channel_username IF NOT EXISTS FOR (c:Channel) REQUIRE c.username_lc IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_post_key IF NOT EXISTS FOR (p:Post) REQUIRE p.key IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_tag_name IF NOT EXISTS FOR (t:Tag) REQUIRE t.name IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_topic_name IF NOT EXISTS FOR (t:Topic) REQUIRE t.name IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_image_sha256 IF NOT EXISTS FOR (i:Image) REQUIRE i.sha256 IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_label_name IF NOT EXISTS FOR (l:Label) REQUIRE l.name IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_page_url IF NOT EXISTS FOR (p:Page) REQUIRE p.url IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_domain_name IF NOT EXISTS FOR (d:Domain) REQUIRE d.name IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_album_key IF NOT EXISTS FOR (a:Album) REQUIRE a.key IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_trend_key IF NOT EXISTS FOR (t:Trend) REQUIRE t.key IS UNIQUE`,
	`CREATE CONSTRAINT tgflow_checkpoint_projection IF NOT EXISTS FOR (c:Checkpoint) REQUIRE c.projection IS UNIQUE`,
	// Query indexes: a channel's posts by time, posts by time, trends by window.
	`CREATE INDEX tgflow_post_channel_posted IF NOT EXISTS FOR (p:Post) ON (p.channel_id, p.posted_at)`,
	`CREATE INDEX tgflow_post_posted_at IF NOT EXISTS FOR (p:Post) ON (p.posted_at)`,
	`CREATE INDEX tgflow_trend_window_end IF NOT EXISTS FOR (t:Trend) ON (t.window_end)`,
}

// ensureSchema creates what is missing (each statement in its own transaction: Neo4j does
// not mix schema and data writes) and waits until every index is online, so the first Apply
// already merges through them.
func (p *Projection) ensureSchema(ctx context.Context) error {
	for _, stmt := range schema {
		if err := p.autoCommit(ctx, "create schema", stmt, nil); err != nil {
			return err
		}
	}
	return p.autoCommit(ctx, "await indexes", `CALL db.awaitIndexes(300)`, nil)
}
