package fetch_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tgflow/tgflow/services/enricher/fetch"
)

// FuzzExtract: whatever the body and content type, Extract returns or fails with
// ErrExtract, never panics, and what it returns is valid UTF-8 with a matching word count.
func FuzzExtract(f *testing.F) {
	for _, a := range articles {
		f.Add(fixture(f, a.file), a.contentType)
	}
	f.Add([]byte("<html><body><nav>menu</nav><p>короткий текст</p></body></html>"), "text/html; charset=koi8-r")
	f.Add([]byte("plain\x00text\xff\xfe"), "text/plain")
	f.Add([]byte("\xef\xbb\xbf<title>bom</title>"), "")
	f.Add([]byte("<svg><script>"), "application/xhtml+xml")
	u, err := url.Parse("https://example.com/a")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		a, err := fetch.Extract(body, contentType, "", u)
		if err != nil {
			if !errors.Is(err, fetch.ErrExtract) {
				t.Fatalf("error %v is not ErrExtract", err)
			}
			return
		}
		for _, s := range []string{a.Title, a.Site, a.Byline, a.Lang, a.Excerpt, a.Text} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in %q", s)
			}
		}
		if a.WordCount != len(strings.Fields(a.Text)) {
			t.Fatalf("word count %d for %d words", a.WordCount, len(strings.Fields(a.Text)))
		}
	})
}
