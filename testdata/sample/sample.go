// Package sample embeds tgflow's demo data: a small Telegram Desktop whole-account JSON
// export (three public channels, one left private channel and a private chat, in Russian
// and English, with albums, forwards, replies, edits and tiny images), so that `tgflow dev`
// can load it without the source tree. See README.md.
package sample

import "embed"

//go:generate go run generate.go

// FS holds the export folder.
//
//go:embed DataExport
var FS embed.FS

// Root is the export's result.json inside FS; media paths in it are relative to its folder.
const Root = "DataExport/result.json"
