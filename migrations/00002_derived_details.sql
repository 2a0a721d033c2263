-- Everything the derived facts say that the first schema did not keep, and a full-text search
-- document per post. Column meanings: projections/postgres/SCHEMA.md. Like 00001, no schema
-- is named: search_path chooses it.

-- +goose Up

-- posts.vision.analyzed, per image: the local analysis (format, dHash, colours, OCR
-- confidence and why OCR is missing), the provider's answer (objects, scene, meme, NSFW score,
-- why it is missing), why the image was not analysed, and the earlier image it nearly
-- duplicates.
ALTER TABLE post_vision
    ADD COLUMN reason           text,
    ADD COLUMN format           text,
    ADD COLUMN dhash            text,
    ADD COLUMN colors           text[] NOT NULL DEFAULT '{}',
    ADD COLUMN ocr_confidence   double precision,
    ADD COLUMN ocr_error        text,
    ADD COLUMN objects          text[] NOT NULL DEFAULT '{}',
    ADD COLUMN scene            text,
    ADD COLUMN is_meme          boolean NOT NULL DEFAULT false,
    ADD COLUMN nsfw             double precision,
    ADD COLUMN provider_error   text,
    ADD COLUMN dup_channel_id   bigint,
    ADD COLUMN dup_message_id   bigint,
    ADD COLUMN dup_media_sha256 text,
    ADD COLUMN dup_distance     integer;
CREATE INDEX post_vision_dup ON post_vision (dup_channel_id, dup_message_id) WHERE dup_channel_id IS NOT NULL;
CREATE INDEX post_vision_sha256 ON post_vision (media_sha256);

-- posts.enriched: what readability extracted, and the machine-readable reason of a failure.
ALTER TABLE pages
    ADD COLUMN site         text,
    ADD COLUMN byline       text,
    ADD COLUMN excerpt      text,
    ADD COLUMN word_count   integer,
    ADD COLUMN error_reason text;

-- The outcome of the enrichment that linked the page to the post (the pages table keeps the
-- newest fetch of a URL, whichever post it was for).
ALTER TABLE post_pages
    ADD COLUMN reason     text,
    ADD COLUMN final_url  text,
    ADD COLUMN domain     text,
    ADD COLUMN title      text,
    ADD COLUMN site       text,
    ADD COLUMN byline     text,
    ADD COLUMN excerpt    text,
    ADD COLUMN lang       text,
    ADD COLUMN word_count integer,
    ADD COLUMN fetched_at timestamptz;

-- posts.embedded: the rest of the vector space's name.
ALTER TABLE post_embeddings
    ADD COLUMN embedder_version text,
    ADD COLUMN lexical          boolean NOT NULL DEFAULT false;

-- albums.assembled: the summary's details.
ALTER TABLE albums
    ADD COLUMN grouped_ids          bigint[],
    ADD COLUMN summary_version      text,
    ADD COLUMN assembled_item_count integer,
    ADD COLUMN cover_message_id     bigint,
    ADD COLUMN assembled_caption    text,
    ADD COLUMN assembled_posted_at  timestamptz,
    ADD COLUMN descriptions         text[],
    ADD COLUMN ocr_text             text;
CREATE INDEX albums_grouped_ids ON albums USING gin (grouped_ids);

-- trends.detected: the expected count and the score's formula.
ALTER TABLE trends
    ADD COLUMN expected double precision,
    ADD COLUMN method   text;

CREATE INDEX post_topics_topic ON post_topics (topic);

-- search_norm folds text for full-text search the same way on every server, whatever its
-- locale (a database with LC_CTYPE C does not lower-case Cyrillic): ASCII and Cyrillic
-- upper case to lower case, ё to е, and the control characters \x01 and \x02 (the
-- highlight markers of Search) to spaces. It maps one character to one character, so
-- positions in the folded text are positions in the original.
-- +goose StatementBegin
CREATE FUNCTION search_norm(doc text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT translate(doc,
        'ABCDEFGHIJKLMNOPQRSTUVWXYZАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯЄІЇЎҐёѐ' || chr(1) || chr(2),
        'abcdefghijklmnopqrstuvwxyzабвгдеежзийклмнопрстуфхцчшщъыьэюяєіїўґее  ')
$$;
-- +goose StatementEnd

-- search_config chooses the text search configuration of a document by its letters:
-- russian when at least 30 % of its Latin and Cyrillic letters are Cyrillic (the russian
-- configuration stems Latin words with the English stemmer, so mixed posts lose nothing),
-- english when it has Latin letters otherwise, simple (no stemming, no stop words) when it
-- has fewer than 3 letters of either.
-- +goose StatementBegin
CREATE FUNCTION search_config(doc text) RETURNS regconfig
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN c.cyr + c.lat < 3 THEN 'pg_catalog.simple'::regconfig
        WHEN c.cyr * 10 >= (c.cyr + c.lat) * 3 THEN 'pg_catalog.russian'::regconfig
        ELSE 'pg_catalog.english'::regconfig
    END
    FROM (SELECT length(regexp_replace(doc, '[^\u0400-\u04ff]', '', 'g')) AS cyr,
                 length(regexp_replace(doc, '[^A-Za-z]', '', 'g')) AS lat) c
$$;
-- +goose StatementEnd

-- One search document per post: its text (weight A), tags and linked page titles (B), image
-- descriptions, OCR text and page excerpts (C), in the configuration search_config chose.
-- Maintained by the projection whenever one of those parts changes.
CREATE TABLE post_search (
    channel_id bigint NOT NULL,
    message_id bigint NOT NULL,
    config     regconfig NOT NULL,
    extra      text NOT NULL,
    document   tsvector NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX post_search_document ON post_search USING gin (document);

-- +goose Down
DROP TABLE post_search;
DROP FUNCTION search_config(text);
DROP FUNCTION search_norm(text);
DROP INDEX post_topics_topic;
ALTER TABLE trends DROP COLUMN expected, DROP COLUMN method;
DROP INDEX albums_grouped_ids;
ALTER TABLE albums DROP COLUMN grouped_ids, DROP COLUMN summary_version, DROP COLUMN assembled_item_count,
    DROP COLUMN cover_message_id, DROP COLUMN assembled_caption, DROP COLUMN assembled_posted_at,
    DROP COLUMN descriptions, DROP COLUMN ocr_text;
ALTER TABLE post_embeddings DROP COLUMN embedder_version, DROP COLUMN lexical;
ALTER TABLE post_pages DROP COLUMN reason, DROP COLUMN final_url, DROP COLUMN domain, DROP COLUMN title,
    DROP COLUMN site, DROP COLUMN byline, DROP COLUMN excerpt, DROP COLUMN lang, DROP COLUMN word_count,
    DROP COLUMN fetched_at;
ALTER TABLE pages DROP COLUMN site, DROP COLUMN byline, DROP COLUMN excerpt, DROP COLUMN word_count,
    DROP COLUMN error_reason;
DROP INDEX post_vision_sha256;
DROP INDEX post_vision_dup;
ALTER TABLE post_vision DROP COLUMN reason, DROP COLUMN format, DROP COLUMN dhash, DROP COLUMN colors,
    DROP COLUMN ocr_confidence, DROP COLUMN ocr_error, DROP COLUMN objects, DROP COLUMN scene,
    DROP COLUMN is_meme, DROP COLUMN nsfw, DROP COLUMN provider_error, DROP COLUMN dup_channel_id,
    DROP COLUMN dup_message_id, DROP COLUMN dup_media_sha256, DROP COLUMN dup_distance;
