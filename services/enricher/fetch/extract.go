package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"unicode/utf8"

	readability "codeberg.org/readeck/go-readability/v2"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/language"
)

// Article is the readable part of a page.
type Article struct {
	Title     string
	Site      string
	Byline    string
	Lang      string // primary language subtag, lower case ("ru", "en"); empty when undeclared
	Excerpt   string
	Text      string
	WordCount int
}

// ErrExtract is returned when a body gives no readable text.
var ErrExtract = errors.New("no readable text")

// Extract finds the readable text of a body: for HTML and XHTML the article as
// go-readability (a port of Mozilla's Readability) finds it, without navigation, footers and
// scripts; plain text as it is. The body is decoded from the charset its Content-Type,
// byte-order mark or <meta> declares, UTF-8 when it declares none and is valid UTF-8.
// contentLang is the Content-Language header, used when the page declares no language.
// Extract never panics: a failure of the parser is returned as ErrExtract.
func Extract(body []byte, contentType, contentLang string, pageURL *url.URL) (a Article, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = Article{}, fmt.Errorf("%w: parser panic: %v", ErrExtract, r)
		}
	}()
	mt, _, _ := mime.ParseMediaType(contentType)
	text, err := decode(body, contentType)
	if err != nil {
		return Article{}, fmt.Errorf("%w: %w", ErrExtract, err)
	}
	if mt == "text/plain" {
		a.Text = cleanText(text)
	} else {
		doc, err := html.Parse(strings.NewReader(text))
		if err != nil {
			return Article{}, fmt.Errorf("%w: %w", ErrExtract, err)
		}
		p := readability.NewParser()
		art, err := p.ParseAndMutate(doc, pageURL)
		if err != nil {
			return Article{}, fmt.Errorf("%w: %w", ErrExtract, err)
		}
		a.Title = oneLine(art.Title())
		a.Site = oneLine(art.SiteName())
		a.Byline = oneLine(art.Byline())
		a.Excerpt = oneLine(art.Excerpt())
		a.Lang = primaryLang(art.Language())
		if art.Node != nil {
			var b strings.Builder
			if err := art.RenderText(&b); err != nil {
				return Article{}, fmt.Errorf("%w: %w", ErrExtract, err)
			}
			a.Text = cleanText(b.String())
		}
	}
	if a.Lang == "" {
		a.Lang = primaryLang(contentLang)
	}
	a.WordCount = len(strings.Fields(a.Text))
	if a.Text == "" && a.Title == "" {
		return a, ErrExtract
	}
	return a, nil
}

// decode converts body to UTF-8. A declared charset wins; an undeclared body that is valid
// UTF-8 is UTF-8; otherwise the HTML5 sniffing guess (windows-1252 by default).
func decode(body []byte, contentType string) (string, error) {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	if !certain && utf8.Valid(body) && !declaresCharset(body) {
		return string(body), nil
	}
	if name == "utf-8" {
		return strings.ToValidUTF8(string(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))), "\uFFFD"), nil
	}
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return "", fmt.Errorf("decode %s: %w", name, err)
	}
	return strings.ToValidUTF8(string(out), "\uFFFD"), nil
}

// declaresCharset reports whether the head of an HTML body names a charset (<meta charset>
// or http-equiv), which DetermineEncoding reports as not certain.
func declaresCharset(body []byte) bool {
	head := body[:min(len(body), 1024)]
	return bytes.Contains(bytes.ToLower(head), []byte("charset="))
}

// primaryLang is the primary subtag of a BCP 47 tag ("ru-RU" → "ru"), "" when it is not one.
func primaryLang(tag string) string {
	tag = strings.TrimSpace(strings.Split(tag, ",")[0])
	if tag == "" {
		return ""
	}
	t, err := language.Parse(tag)
	if err != nil {
		return ""
	}
	base, conf := t.Base()
	if conf == language.No {
		return ""
	}
	return base.String()
}

// cleanText trims each line, drops runs of blank lines and keeps paragraphs apart.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	blank := false
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" {
			blank = b.Len() > 0
			continue
		}
		if b.Len() > 0 {
			if blank {
				b.WriteString("\n\n")
			} else {
				b.WriteByte('\n')
			}
		}
		blank = false
		b.WriteString(line)
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}

// truncateUTF8 cuts s to at most n bytes at a character boundary.
func truncateUTF8(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
