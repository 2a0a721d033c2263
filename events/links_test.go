package events_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tgflow/tgflow/events"
)

func TestNormalizeLink(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "empty", in: "  ", want: ""},
		{name: "bare link gets http", in: "example.com/x", want: "http://example.com/x"},
		{name: "mailto untouched", in: "mailto:A@Example.com", want: "mailto:A@Example.com"},
		{name: "tg untouched", in: "tg://resolve?domain=x", want: "tg://resolve?domain=x"},
		{name: "ftp untouched", in: "ftp://Example.com/a#b", want: "ftp://Example.com/a#b"},
		{name: "unparsable kept", in: "http://exa mple.com/", want: "http://exa mple.com/"},
		{name: "scheme and host case", in: "HTTPS://Example.COM/Path", want: "https://example.com/Path"},
		{name: "idna", in: "http://Пример.РФ/статья", want: "http://xn--e1afmkfd.xn--p1ai/статья"},
		{name: "idna already ascii", in: "http://xn--e1afmkfd.xn--p1ai/", want: "http://xn--e1afmkfd.xn--p1ai"},
		{name: "trailing dot", in: "https://example.com./a", want: "https://example.com/a"},
		{name: "underscore host", in: "https://my_host.example.com/", want: "https://my_host.example.com"},
		{name: "default http port", in: "http://example.com:80/a", want: "http://example.com/a"},
		{name: "default https port", in: "https://example.com:443/a", want: "https://example.com/a"},
		{name: "other port kept", in: "https://example.com:8443/a", want: "https://example.com:8443/a"},
		{name: "http on 443 kept", in: "http://example.com:443/", want: "http://example.com:443"},
		{name: "port leading zeros", in: "http://example.com:0080/", want: "http://example.com"},
		{name: "empty port", in: "http://example.com:/a", want: "http://example.com/a"},
		{name: "ipv6 literal", in: "http://[2001:DB8:0:0::1]:80/x", want: "http://[2001:db8::1]/x"},
		{name: "ipv4 literal", in: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080"},
		{name: "userinfo dropped", in: "https://user:secret@example.com/a", want: "https://example.com/a"},
		{name: "fragment dropped", in: "https://example.com/a#section-2", want: "https://example.com/a"},
		{name: "root slash dropped", in: "https://example.com/", want: "https://example.com"},
		{name: "root slash dropped before query", in: "https://example.com/?q=1", want: "https://example.com?q=1"},
		{name: "other trailing slash kept", in: "https://example.com/a/", want: "https://example.com/a/"},
		{name: "dot segments", in: "https://example.com/a/./b/../c", want: "https://example.com/a/c"},
		{name: "dot segments above root", in: "https://example.com/../a", want: "https://example.com/a"},
		{name: "unicode path escaped", in: "https://example.com/%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F", want: "https://example.com/статья"},
		{name: "unicode path literal", in: "http://example.com/статья", want: "http://example.com/статья"},
		{name: "unreserved escape decoded", in: "https://example.com/%7Euser/%61", want: "https://example.com/~user/a"},
		{name: "reserved escape kept upper", in: "https://example.com/a%2fb%3f", want: "https://example.com/a%2Fb%3F"},
		{name: "space escaped", in: "https://example.com/a b", want: "https://example.com/a%20b"},
		{name: "stray percent", in: "https://example.com/100%", want: "https://example.com/100%25"},
		{name: "invalid utf8 escape kept", in: "https://example.com/%FF", want: "https://example.com/%FF"},
		{name: "nbsp escape kept", in: "https://example.com/a%C2%A0b", want: "https://example.com/a%C2%A0b"},
		{name: "utm removed", in: "https://example.com/a?utm_source=tg&utm_MEDIUM=x&id=5", want: "https://example.com/a?id=5"},
		{name: "click ids removed", in: "https://example.com/?fbclid=1&gclid=2&yclid=3&ysclid=4&msclkid=5", want: "https://example.com"},
		{name: "mail trackers removed", in: "https://example.com/p?mc_cid=1&mc_eid=2&_hsenc=3&_hsmi=4&igshid=5&b=2", want: "https://example.com/p?b=2"},
		{name: "query sorted", in: "https://example.com/s?z=1&a=2&m=3", want: "https://example.com/s?a=2&m=3&z=1"},
		{name: "repeated name keeps value order", in: "https://example.com/s?b=1&a=2&b=0", want: "https://example.com/s?a=2&b=1&b=0"},
		{name: "empty pairs dropped", in: "https://example.com/s?&&a=1&", want: "https://example.com/s?a=1"},
		{name: "empty query dropped", in: "https://example.com/s?", want: "https://example.com/s"},
		{name: "plus kept", in: "https://example.com/s?q=a+b&p=%2B", want: "https://example.com/s?p=%2B&q=a+b"},
		{name: "escaped tracker name", in: "https://example.com/s?utm%5Fsource=x&k=v", want: "https://example.com/s?k=v"},
		{name: "unicode query", in: "https://example.com/s?q=%D0%B3%D0%BE", want: "https://example.com/s?q=го"},
		{name: "whitespace trimmed", in: "  https://example.com/a \n", want: "https://example.com/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := events.NormalizeLink(tt.in)
			if got != tt.want {
				t.Fatalf("NormalizeLink(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := events.NormalizeLink(got); again != got {
				t.Fatalf("not idempotent: %q → %q", got, again)
			}
		})
	}
}

// TestNormalizeLinkSpellingsMeet: the spellings a post may use for one page are one page.
func TestNormalizeLinkSpellingsMeet(t *testing.T) {
	spellings := []string{
		"https://пример.рф/новости/статья?id=7&utm_source=telegram#comments",
		"HTTPS://xn--e1afmkfd.xn--p1ai:443/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8/%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F?fbclid=abc&id=7",
		"https://ПРИМЕР.РФ./новости/./статья?id=7",
	}
	want := events.NormalizeLink(spellings[0])
	for _, s := range spellings[1:] {
		if got := events.NormalizeLink(s); got != want {
			t.Errorf("NormalizeLink(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestIsTelegramLink(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "t.me channel", in: "https://t.me/durov", want: true},
		{name: "t.me bare", in: "t.me/durov/12", want: true},
		{name: "telegram.me", in: "http://TELEGRAM.ME/x", want: true},
		{name: "telegram.dog", in: "https://telegram.dog/x", want: true},
		{name: "username subdomain", in: "https://durov.t.me", want: true},
		{name: "tg scheme", in: "tg://resolve?domain=durov", want: true},
		{name: "telegram.org is a web site", in: "https://telegram.org/blog", want: false},
		{name: "telegraph article is a web page", in: "https://telegra.ph/Article-01-01", want: false},
		{name: "look-alike host", in: "https://nott.me/x", want: false},
		{name: "path mentioning t.me", in: "https://example.com/t.me", want: false},
		{name: "mailto", in: "mailto:x@t.me", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events.IsTelegramLink(tt.in); got != tt.want {
				t.Fatalf("IsTelegramLink(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestExtractLinks(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		entities []events.Entity
		known    []string
		want     []string
	}{
		{
			name: "plain text links with punctuation",
			text: "Читайте: https://example.com/a?utm_source=tg, и (см. http://Example.org/b). Ещё www.example.net/c!",
			want: []string{"https://example.com/a", "http://example.org/b", "http://www.example.net/c"},
		},
		{
			name: "balanced brackets kept",
			text: "See https://en.wikipedia.org/wiki/Go_(programming_language) now",
			want: []string{"https://en.wikipedia.org/wiki/Go_(programming_language)"},
		},
		{
			name: "quotes and angle brackets end a link",
			text: `«https://example.com/ru» and <https://example.com/en> and "https://example.com/q"`,
			want: []string{"https://example.com/ru", "https://example.com/en", "https://example.com/q"},
		},
		{
			name:     "entities first, then known, then text, deduplicated",
			text:     "text https://c.example/x and again https://a.example/#top",
			entities: []events.Entity{{Type: "text_url", URL: "https://a.example/"}, {Type: "bold"}},
			known:    []string{"b.example/y", "https://A.example"},
			want:     []string{"https://a.example", "http://b.example/y", "https://c.example/x"},
		},
		{
			name:     "non-web links left out",
			text:     "mail me: mailto:x@example.com tg://resolve?domain=x",
			entities: []events.Entity{{Type: "email", URL: "mailto:x@example.com"}},
			want:     nil,
		},
		{
			name: "bare domains in text are not links",
			text: "Node.js and file.txt, and example.com",
			want: nil,
		},
		{
			name: "www inside a word is not a link start",
			text: "awww.example.com and e-mail me@www.example.com",
			want: nil,
		},
		{
			name: "scheme alone is not a link",
			text: "the prefix https:// alone",
			want: nil,
		},
		{
			// Their lower case is shorter (Kelvin sign → k, ẞ → ß) or longer (Ⱥ → ⱥ) in bytes:
			// positions in the text must not be read in a lower-cased copy.
			name: "letters whose lower case changes length before a link",
			text: "\u212A\u212A\u212A\u212A\u212A\u212A ẞẞẞ HTTP://Example.com/a ȺȺȺȺ WWW.example.org/b",
			want: []string{"http://example.com/a", "http://www.example.org/b"},
		},
		{
			name: "telegram links are web links (the enricher skips them itself)",
			text: "channel https://t.me/durov",
			want: []string{"https://t.me/durov"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := events.ExtractLinks(tt.text, tt.entities, tt.known...)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ExtractLinks = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsTrackingParam(t *testing.T) {
	for _, name := range []string{"utm_source", "UTM_campaign", "fbclid", "gclid", "yclid", "mc_cid", "mc_eid", "_hsenc", "igshid"} {
		if !events.IsTrackingParam(name) {
			t.Errorf("%s is not a tracker", name)
		}
	}
	for _, name := range []string{"id", "q", "page", "utm", "ref"} {
		if events.IsTrackingParam(name) {
			t.Errorf("%s is a tracker", name)
		}
	}
}

// FuzzNormalizeLink: never panics, idempotent, and a web link it returns parses as a URL
// with no fragment, no user info and a lower-case scheme and host.
func FuzzNormalizeLink(f *testing.F) {
	for _, s := range []string{
		"example.com", "HTTPS://Example.COM:443/a/../b/?utm_source=x&z=1&a=2#f",
		"http://[::1]:80/", "http://Пример.РФ/%D1%81", "https://u:p@h/%zz%", "http://h/a%2Fb/ст?q=%FF&&",
		"mailto:x", "http://", "https://h:99999/", "http://h/%C2%A0%E2%80%8B", "http://h?#",
		"http://%41.com/", "http://x.t.me./", "http://h/./../.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := events.NormalizeLink(s)
		if again := events.NormalizeLink(n); again != n {
			t.Fatalf("not idempotent: %q → %q → %q", s, n, again)
		}
		if !events.IsWebLink(n) {
			return
		}
		in := strings.TrimSpace(s)
		if n == in || n == "http://"+in {
			return // kept as written: not a canonical form
		}
		if utf8.ValidString(s) && !utf8.ValidString(n) {
			t.Fatalf("%q → %q: invalid UTF-8", s, n)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, n, err)
		}
		if strings.Contains(n, "#") || u.User != nil || u.Scheme != strings.ToLower(u.Scheme) || u.Host != strings.ToLower(u.Host) {
			t.Fatalf("%q → %q: fragment, user info or upper case left", s, n)
		}
	})
}

// FuzzExtractLinks: never panics, and every link it returns is a normalised web link found
// in the text.
func FuzzExtractLinks(f *testing.F) {
	for _, s := range []string{
		"see https://example.com/a, and www.example.org!", "\u212A\u212A http://x.com", "ẞẞ https://ex.com/ß",
		"ȺȺ WWW.EXAMPLE.COM/Ⱥ", "«https://e.com/q»", "https://", "www.", "http://\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range events.ExtractLinks(s, nil) {
			if !events.IsWebLink(l) || events.NormalizeLink(l) != l {
				t.Fatalf("%q gave %q: not a normalised web link", s, l)
			}
		}
	})
}
