-- The Postgres read model of tgflow. Every table is built only from facts of the log, so the
-- whole schema can be dropped and rebuilt by replaying it. Table names are unqualified: the
-- schema is chosen by search_path (live: tgflow, rebuild: tgflow_shadow). The meaning of
-- every column and the version rules are documented in projections/postgres/SCHEMA.md.

-- +goose Up

-- The last applied stream sequence of each projector writing this schema; written in the same
-- transaction as the rows.
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    seq        bigint NOT NULL CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per channel. A channel subscribed by username only has id NULL until a fact carrying
-- both its id and its username (channels.synced) merges the two.
CREATE TABLE channels (
    id                   bigint UNIQUE CHECK (id > 0),
    username             text,
    title                text,
    subscribed           boolean NOT NULL DEFAULT false,
    subscribed_at        timestamptz,
    unsubscribed_at      timestamptz,
    backfill_messages    integer,
    backfill_days        integer,
    sync_runs            integer NOT NULL DEFAULT 0,
    last_sync_started_at timestamptz,
    last_synced_at       timestamptz,
    last_sync_backfill   boolean,
    last_cursor          bigint,
    last_fetched         integer,
    last_new             integer,
    last_edited          integer,
    last_deleted         integer,
    last_media_stored    integer,
    last_skipped         jsonb,
    last_error_code      text,
    last_error           text,
    last_error_at        timestamptz,
    last_error_permanent boolean,
    retry_at             timestamptz,
    CONSTRAINT channels_identified CHECK (id IS NOT NULL OR username IS NOT NULL)
);
CREATE UNIQUE INDEX channels_username_key ON channels (lower(username));

-- One row per post. Content columns are NULL only for a post known solely from a deletion or a
-- metrics refresh (version IS NULL).
CREATE TABLE posts (
    channel_id              bigint NOT NULL,
    message_id              bigint NOT NULL,
    version                 bigint,
    posted_at               timestamptz,
    edited_at               timestamptz,
    text                    text,
    entities                jsonb,
    links                   text[],
    hashtags                text[],
    mentions                text[],
    grouped_id              bigint,
    forward_channel_id      bigint,
    forward_message_id      bigint,
    forward_from_name       text,
    forward_date            timestamptz,
    forward_author          text,
    reply_to_message_id     bigint,
    reply_to_top_message_id bigint,
    author_signature        text,
    pinned                  boolean,
    silent                  boolean,
    noforwards              boolean,
    origin                  text,
    views                   bigint,
    forwards                bigint,
    replies                 bigint,
    reactions               jsonb,
    metrics_at              timestamptz,
    deleted_at              timestamptz,
    PRIMARY KEY (channel_id, message_id)
) WITH (fillfactor = 90);
CREATE INDEX posts_posted_at ON posts (posted_at);
CREATE INDEX posts_album ON posts (channel_id, grouped_id) WHERE grouped_id IS NOT NULL;

-- The attachments of the current version of a post, in order.
CREATE TABLE post_media (
    channel_id   bigint NOT NULL,
    message_id   bigint NOT NULL,
    position     integer NOT NULL,
    version      bigint NOT NULL,
    kind         text NOT NULL,
    mime         text,
    size         bigint,
    width        integer,
    height       integer,
    duration_sec double precision,
    file_name    text,
    sha256       text,
    skipped      text,
    PRIMARY KEY (channel_id, message_id, position)
);
CREATE INDEX post_media_sha256 ON post_media (sha256) WHERE sha256 IS NOT NULL;

-- Content-addressed media in the object store, one row per distinct sha256.
CREATE TABLE media_objects (
    sha256       text PRIMARY KEY,
    object_key   text,
    kind         text NOT NULL,
    mime         text,
    size         bigint,
    width        integer,
    height       integer,
    duration_sec double precision
);

CREATE TABLE albums (
    channel_id            bigint NOT NULL,
    grouped_id            bigint NOT NULL,
    caption               text,
    posted_at             timestamptz,
    inferred              boolean,
    item_count            integer,
    outcome               text,
    summary               text,
    labels                text[],
    assembled_message_ids bigint[],
    missing_message_ids   bigint[],
    assembled_at          timestamptz,
    PRIMARY KEY (channel_id, grouped_id)
);

CREATE TABLE album_items (
    channel_id   bigint NOT NULL,
    grouped_id   bigint NOT NULL,
    position     integer NOT NULL,
    message_id   bigint NOT NULL,
    media_kind   text,
    media_sha256 text,
    PRIMARY KEY (channel_id, grouped_id, position)
);

-- Tags of the newest tagged revision of each post.
CREATE TABLE post_tags (
    channel_id bigint NOT NULL,
    message_id bigint NOT NULL,
    tag        text NOT NULL,
    position   integer NOT NULL,
    score      double precision NOT NULL,
    trigger    text NOT NULL,
    version    bigint NOT NULL,
    revision   integer NOT NULL,
    provider   text NOT NULL,
    model      text,
    PRIMARY KEY (channel_id, message_id, tag)
);
CREATE INDEX post_tags_tag ON post_tags (tag);

-- Topics of the newest tagged revision of each post.
CREATE TABLE post_topics (
    channel_id bigint NOT NULL,
    message_id bigint NOT NULL,
    topic      text NOT NULL,
    version    bigint NOT NULL,
    revision   integer NOT NULL,
    PRIMARY KEY (channel_id, message_id, topic)
);

-- Image analyses of the newest vision revision of each post.
CREATE TABLE post_vision (
    channel_id   bigint NOT NULL,
    message_id   bigint NOT NULL,
    position     integer NOT NULL,
    media_sha256 text NOT NULL,
    description  text,
    ocr_text     text,
    labels       text[] NOT NULL,
    phash        text,
    width        integer,
    height       integer,
    error        text,
    provider     text NOT NULL,
    model        text,
    analyzed_at  timestamptz,
    version      bigint NOT NULL,
    revision     integer NOT NULL,
    PRIMARY KEY (channel_id, message_id, position)
);

-- Every linked page ever fetched, by the URL the post links to.
CREATE TABLE pages (
    url            text PRIMARY KEY,
    domain         text NOT NULL,
    final_url      text,
    status         integer,
    title          text,
    text           text,
    lang           text,
    content_sha256 text,
    fetched_at     timestamptz,
    error          text,
    error_at       timestamptz
);
CREATE INDEX pages_domain ON pages (domain);

-- The pages of the newest enriched revision of each post, with the outcome of that fetch.
CREATE TABLE post_pages (
    channel_id bigint NOT NULL,
    message_id bigint NOT NULL,
    position   integer NOT NULL,
    url        text NOT NULL,
    status     integer,
    error      text,
    version    bigint NOT NULL,
    revision   integer NOT NULL,
    PRIMARY KEY (channel_id, message_id, position)
);
CREATE INDEX post_pages_url ON post_pages (url);

-- The newest embedding of each post (the vector itself lives in Qdrant).
CREATE TABLE post_embeddings (
    channel_id   bigint NOT NULL,
    message_id   bigint NOT NULL,
    version      bigint NOT NULL,
    revision     integer NOT NULL,
    provider     text NOT NULL,
    model        text,
    dim          integer NOT NULL,
    input_sha256 text,
    PRIMARY KEY (channel_id, message_id)
);

CREATE TABLE trends (
    tag          text NOT NULL,
    window_size  text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    count        integer NOT NULL,
    channels     bigint[] NOT NULL,
    baseline     double precision NOT NULL,
    score        double precision NOT NULL,
    posts        text[] NOT NULL,
    detected_at  timestamptz NOT NULL,
    PRIMARY KEY (tag, window_size, window_end)
);
CREATE INDEX trends_window_end ON trends (window_end);

-- Per post: the revision each stage reached and the event time of the fact that brought it.
-- It is also the ledger that decides whether a derived fact is newer than what is stored.
CREATE TABLE pipeline_progress (
    channel_id        bigint NOT NULL,
    message_id        bigint NOT NULL,
    parsed_at         timestamptz,
    version           bigint,
    version_at        timestamptz,
    vision_version    bigint,
    vision_revision   integer,
    vision_at         timestamptz,
    tagged_version    bigint,
    tagged_revision   integer,
    tagged_at         timestamptz,
    enriched_version  bigint,
    enriched_revision integer,
    enriched_at       timestamptz,
    embedded_version  bigint,
    embedded_revision integer,
    embedded_at       timestamptz,
    PRIMARY KEY (channel_id, message_id)
) WITH (fillfactor = 70);

-- +goose Down
DROP TABLE pipeline_progress;
DROP TABLE trends;
DROP TABLE post_embeddings;
DROP TABLE post_pages;
DROP TABLE pages;
DROP TABLE post_vision;
DROP TABLE post_topics;
DROP TABLE post_tags;
DROP TABLE album_items;
DROP TABLE albums;
DROP TABLE media_objects;
DROP TABLE post_media;
DROP TABLE posts;
DROP TABLE channels;
DROP TABLE projection_checkpoints;
