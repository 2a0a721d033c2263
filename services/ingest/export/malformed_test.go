package export_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/tgflow/tgflow/services/ingest/export"
)

// A malformed file is rejected by Open, before anything can be emitted, with the position
// of the problem: the chat and message, and the byte offset in the file. Expected offsets
// are found in the fixture by a marker, so they stay exact if a fixture is edited.
func TestMalformed(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		marker string // the offending bytes; "" for offset 0, "EOF" for the file's length
		chat   int
		msg    int
		want   string // %d is the offset
	}{
		{"syntax error inside a message", "bad_json.json", `"oops"`, -1, 1,
			`export: messages[1] (byte %d): invalid JSON: invalid character '"' after object key:value pair`},
		{"date that is not a number", "bad_date.json", `"abc"`, 1, 2,
			`export: chats.list[1].messages[2] (byte %d): date_unixtime "abc" is not a number`},
		{"offsets count file bytes, before BOM and \\x fixes", "after_escape.json", `"abc"`, -1, 1,
			`export: messages[1] (byte %d): date_unixtime "abc" is not a number`},
		{"chat without messages", "no_messages.json", `{"name": "News"`, 0, -1,
			`export: chats.list[0] (byte %d): chat has no messages array`},
		{"messages not an array", "messages_object.json", `{"id": 1}`, -1, -1,
			`export: messages (byte %d): messages is an object, want an array`},
		{"truncated file", "truncated.json", "EOF", -1, 1,
			`export: messages[1] (byte %d): invalid JSON: unexpected end of file`},
		{"channel id", "bad_channel_id.json", `"not-a-number"`, -1, -1,
			`export: (byte %d): id "not-a-number" is not a channel id`},
		{"text of the wrong type", "text_number.json", `42`, -1, 0,
			`export: messages[0] (byte %d): text 42 is a number, want a string or an array`},
		{"entity text of the wrong type", "bad_entity.json", `5}`, -1, 0,
			`export: messages[0] (byte %d): text_entities[1].text 5 is a number, want a string`},
		{"media path out of the folder", "escape_path.json", `"../secret.jpg"`, -1, 0,
			`export: messages[0] (byte %d): photo "../secret.jpg" is not a path inside the export folder`},
		{"array at the top", "top_array.json", "", -1, -1,
			`export: (byte %d): the file holds an array, want a JSON object`},
		{"not an export", "not_export.json", "", -1, -1,
			`export: (byte %d): no messages array and no chats list: not a Telegram Desktop JSON export`},
		{"empty file", "empty.json", "", -1, -1,
			`export: (byte %d): the file is empty`},
		{"data after the object", "trailing.json", `{"second"`, -1, -1,
			`export: (byte %d): data after the top-level object`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := fixture(t, "malformed/"+tc.file)
			data := readFile(t, path)
			var off int
			switch tc.marker {
			case "":
			case "EOF":
				off = len(data)
			default:
				off = bytes.Index(data, []byte(tc.marker))
				if off < 0 || bytes.Count(data, []byte(tc.marker)) != 1 {
					t.Fatalf("marker %q is not in the fixture exactly once", tc.marker)
				}
			}
			e, err := export.Open(path)
			if err == nil {
				_ = e.Close()
				t.Fatal("opened a malformed file")
			}
			if want := fmt.Sprintf(tc.want, off); err.Error() != want {
				t.Fatalf("error:\n got %s\nwant %s", err, want)
			}
			if !errors.Is(err, export.ErrMalformed) {
				t.Error("error does not wrap ErrMalformed")
			}
			var pe *export.ParseError
			if !errors.As(err, &pe) {
				t.Fatal("not a *ParseError")
			}
			if pe.Offset != int64(off) || pe.Chat != tc.chat || pe.Message != tc.msg {
				t.Errorf("offset %d chat %d message %d, want %d %d %d", pe.Offset, pe.Chat, pe.Message, off, tc.chat, tc.msg)
			}
		})
	}
}
