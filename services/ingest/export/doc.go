// Package export imports Telegram Desktop JSON exports ("Export chat history" of one channel,
// or "Export Telegram data" of a whole account) as tgflow facts.
//
// Open (or OpenFS, for an fs.FS such as the embedded sample data) reads the whole file once
// and validates it: a malformed file is rejected with a *ParseError that names the chat, the
// message and the byte offset of the problem, before anything is emitted. Facts then reads
// the file again and yields, for every channel in file order, a posts.parsed event per post
// in message order, and an albums.parsed event after the last item of each album it infers
// (exports carry no grouped id; see README.md for the rule). Media files found in the export
// folder are stored through a MediaSink (content-addressed, see package media).
//
// The file is streamed with a json.Decoder both times and never held in memory whole. Post
// events use the id recipe of every ingest path (PostEvent), so a post seen by the live
// Telegram path and in an export is one fact in the log.
package export
