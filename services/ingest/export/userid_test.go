package export_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/tgflow/tgflow/services/ingest/export"
)

// A mention's user_id given as a string ("user123") is read as that id; a string that is
// not one is a malformed export with its position (it used to become user 0 silently).
func TestMentionUserIDString(t *testing.T) {
	doc := func(userID string) []byte {
		return []byte(`{"name": "News", "type": "public_channel", "id": 1234567890, "messages": [
  {"id": 1, "type": "message", "date_unixtime": "1700000000", "text": [{"type": "mention_name", "text": "Ivan", "user_id": ` + userID + `}]}
]}`)
	}
	tests := []struct {
		name    string
		userID  string
		wantErr string
	}{
		{"number", `123456`, ""},
		{"user string", `"user123456"`, ""},
		{"not an id", `"someone"`, `export: messages[0] (byte %d): text[0].user_id "someone" is not a user id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"result.json": {Data: doc(tt.userID)}}
			x, err := export.OpenFS(fsys, "result.json")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				x.Close()
				return
			}
			if err == nil {
				x.Close()
				t.Fatal("opened an export with a bad user_id")
			}
			want := fmt.Sprintf(tt.wantErr, bytes.Index(doc(tt.userID), []byte(tt.userID)))
			if !errors.Is(err, export.ErrMalformed) || err.Error() != want {
				t.Fatalf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}
