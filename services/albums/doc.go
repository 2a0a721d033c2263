// Package albums assembles albums: it gathers the vision results of an album's items and
// writes one albums.assembled summary per album version, when every item has its result or
// at a deadline. It is the albums stage's logic as plain functions over typed events; the
// runtime wiring (consumer, ticker) calls them.
//
// # State
//
// Progress lives in a NATS KV bucket (topology.BucketAlbums) and every write is a
// compare-and-set (Create for a new key, Update with the revision read, retried on a
// conflict), so concurrent instances never lose an update. Keys:
//
//   - a.<channel>.<first message id>: the album. Both ingest paths give an album the same
//     items, but not the same grouped id (an export's is synthetic and negative, Telegram's
//     is real), so the album is keyed by its channel and its lowest item message id; every
//     grouped id seen is kept.
//   - p.<channel>.<message id>: the rendezvous of one post. A vision result names only its
//     post, and may arrive before albums.parsed (usual in the live path: ingest publishes an
//     album once it has settled). Both handlers write this key first, by CAS: whichever comes
//     second sees the other (the album it belongs to, or the result waiting for it) and adds
//     the result to the album. Entries older than Config.PendingTTL are swept.
//   - o.<channel>.<first message id>: the index of open albums (not yet summarised and
//     confirmed), so Due reads only those. It is written after every album update that may
//     open the album, and deleted only by Due, with the revision it read, after it saw the
//     album settled: a concurrent reopening either bumps the index (the delete fails) or is
//     written after the delete.
//
// # Exactly one summary per version
//
// An album's version is a digest of its item set. The summary of a version is claimed by
// a CAS that freezes it in the album state (payload, time, event id) before anything is
// published; only the instance whose CAS wins returns it. The event id is derived from the
// frozen payload and the version, so every later publish of the claim is the same fact.
// A claim is confirmed once the log holds it (Confirm after the publish was acknowledged,
// or Due/Tick finding it on the log). A claim still unconfirmed Config.Grace after it was
// made (a crash between the CAS and the publish, between the publish and Confirm, or simply
// a summary the stage's handler returned, which the worker publishes without Confirm) is
// published again while the log's duplicate window (less logSkew) still covers it — the
// log answers duplicate when it holds it, so no second copy — and, older, looked up on the
// log and published again only if it is not there: the window covers a quick retry, not a
// restart hours later. (A lookup is an ordered consumer from the claim's time, which makes
// the server load every block of the log after it: one per album was most of tgflow dev's
// heap after a 100k-post import.)
package albums
