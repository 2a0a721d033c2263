// Package trends detects bursts of tags across channels: the trends stage's logic.
//
// # Windows and score
//
// Time is event time — a post's date (PostedAt), never the time a fact is processed —
// cut into 5-minute buckets. The watermark is the newest bucket any post has reached. For
// a tag, the window ending with bucket k is the 12 buckets k-11…k (1 h); its baseline comes
// from the 24 h window less the short one (buckets k-287…k-12, 23 h), so that a burst does
// not raise its own baseline:
//
//	hours     = 23, or the part of those 23 h the machine holds posts for (a young log)
//	baseline  = posts of the tag in those hours / hours           (posts per hour)
//	expected  = baseline × 1 h
//	score     = (count − expected) / sqrt(expected + 1)
//
// The score is a Poisson z-score (the variance of a Poisson count is its mean); the +1
// keeps a tag never seen before (expected 0) from scoring infinite: it scores its count.
// With less than MinHistory of history before a window there is no baseline and no trend.
// A window is a trend when count ≥ MinCount, score ≥ MinScore and its posts come from at
// least MinChannels distinct channels; no two trends of one tag have window ends closer
// than Cooldown (event time).
//
// Windows slide in 5-minute steps and are recomputed from the buckets each time (no
// counter refreshed by arrivals, no TTL). A post is evaluated in the windows that hold it,
// latest first, from its own up to the current window (a live post: the current window
// only), among the windows ending at most LateLimit behind the watermark. Every post that a
// window still evaluated can read counts, whatever order the posts arrive in; older ones
// are dropped. Only the newest revision of a post counts: the machine keeps each post's
// tags of its newest Rev; a newer revision replaces them, an older one is ignored.
//
// # Determinism and the cold start
//
// Machine is a deterministic state machine: the same sequence of posts.tagged facts gives
// the same trends.detected facts, whose ids derive from the tag, the window and its end
// (Event: events.New over TrendDetected.Key), so a trend found again is the same fact.
//
// It needs no store. At start the stage rebuilds it from the log: Replay reads
// posts.tagged (Restore: the state, no evaluation) and the trends.detected facts already
// published (Fired: the cooldowns) with an ordered consumer by start time, from
// ReplayStart — Lookback (24 h, LateLimit, a bucket and a margin) before the newest post
// date on the log — the posts up to the trends consumer's ack floor, the trends up to the
// end of the log (a trend is stored after the post that revealed it, so the last ones lie
// past the floor); the consumer then delivers the rest, observed live. Every fact about a
// post is stored no earlier than the post's date, so the replay restores every post a
// window still evaluated can read, the same watermark and the same cooldowns: from there
// the machine decides every window as a long-running instance would
// (TestColdStartMatchesLongRunning, TestReplayFromColdStartMatchesLiveRun,
// TestRebuildFromColdStartMatchesLiveRun).
//
// The machine is safe for concurrent use, but its answers depend on the order of the
// facts and it must see all of them: run the stage as one consumer instance, in log order.
package trends
