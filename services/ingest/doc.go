// Package ingest is the Telegram half of tgflow's ingest stage.
//
// A Service runs two things. A worker stage on the durable consumer `ingest` applies
// channels.subscribed and channels.unsubscribed facts to the channel registry (the
// `channels` KV bucket). A scheduler, connected to Telegram, reads every subscribed
// channel every TGFLOW_INGEST_INTERVAL; several ingest processes may run, and a lease in
// the `leases` bucket lets exactly one of them schedule.
//
// Per channel a run: resolves the username once (cached in the registry; resolutions have
// their own rate and per-run budget), reads the history above the cursor with min_id and
// offset_id paging (a new channel is backfilled at once, TGFLOW_BACKFILL_MESSAGES and/or
// TGFLOW_BACKFILL_DAYS deep), stores media in the content-addressed media store, publishes
// posts.parsed oldest first with Nats-Msg-Id = event id, and moves the cursor (in
// `ingest-cursors`: the highest contiguous message id published) only after the log has
// acknowledged a batch. Albums are assembled from progress kept in KV and published once
// as albums.parsed. When due, the latest TGFLOW_RECHECK_MESSAGES posts are refetched for
// posts.edited, posts.deleted and posts.metrics. A run ends with channels.synced; a
// failure with channels.failed and a per-channel retry time, so one bad channel never
// blocks the others. An unusable session (revoked, deactivated, not logged in) stops the
// service with ErrTelegramAuth instead.
//
// The log drops a repeated Nats-Msg-Id for its duplicate window only (2 h), and a stopped
// run may be restarted much later. So whatever ingest publishes before recording it — a
// batch before its cursor update, an album before its progress is removed, recheck facts
// before the snapshot — is looked for on the log (package logscan) by the next run, from
// the time of the record on, and not published again. tgflow_ingest_duplicates_total
// counts facts the log dropped anyway; tests require it to stay 0.
package ingest
