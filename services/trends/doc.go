// Package trends detects bursts of tags across channels: the trends stage's logic.
//
// # Windows and score
//
// Time is event time — a post's date (PostedAt), never the time a fact is processed —
// cut into 5-minute buckets. The machine's watermark is the newest bucket any post has
// reached. For a tag, the window ending with bucket k is the 12 buckets k-11…k (1 h) and
// its baseline is the 23 h before it (buckets k-287…k-12, so the 24 h window less the
// short one, which would otherwise raise its own baseline):
//
//	baseline  = posts of the tag in those 23 h / 23          (posts per hour)
//	expected  = baseline × 1 h
//	score     = (count − expected) / sqrt(expected + 1)
//
// The score is a Poisson z-score (the variance of a Poisson count is its mean); the +1
// keeps a tag never seen before (expected 0) from scoring infinite: it scores its count.
// A window is a trend when count ≥ MinCount, score ≥ MinScore and its posts come from at
// least MinChannels distinct channels; a tag is reported at most once per Cooldown of event
// time (no two detections of a tag whose window ends are closer than that).
//
// Windows slide in 5-minute steps and are computed from the buckets each time (no counter
// refreshed by arrivals, no TTL). A post is evaluated in the windows that contain its
// bucket, up to the watermark: a live post in the current window, a late one also in the
// later windows it belongs to. A post more than LateLimit behind the watermark is too late
// to count. Only the newest revision of a post counts: the machine keeps each post's tags
// of its newest Rev, and a newer revision replaces them (an older one is ignored).
//
// # Determinism and the cold start
//
// Machine is a pure state machine: the same sequence of posts.tagged facts gives the same
// trends.detected facts, and their ids derive from the tag, the window and its end
// (events.New over TrendDetected.Key), so a fact found again is the same fact. The state
// needs no store: at start the stage replays posts.tagged from the log (Replay, from
// ReplayStart: the 24 h the windows look back, plus LateLimit and a margin) with an
// ordered consumer by start time. Evaluations read buckets no older than the watermark
// less LateLimit and 24 h, and every fact about such a post is stored on the log no earlier
// than the post's date, so the replayed state decides every later window as a long-running
// instance would. The machine is not safe for concurrent use, and the stage must see every
// posts.tagged fact: run it as one consumer instance, in log order.
package trends
