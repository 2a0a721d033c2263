package api_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tgflow/tgflow/internal/testenv"
)

// chromiumPath finds Debian's chromium (or TGFLOW_TEST_CHROMIUM): a failure under CI when
// absent, a skip otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TGFLOW_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH (apt-get install -y chromium) and TGFLOW_TEST_CHROMIUM is not set"
	if testenv.InCI() {
		t.Fatal(msg + " (CI is set: this is a failure, not a skip)")
	}
	t.Skip("skipping: " + msg)
	return ""
}

// consoleErrors collects what the page reports as an error: console.error calls, uncaught
// exceptions and error log entries (a failed load of a script, a style sheet, an icon).
type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (c *consoleErrors) add(s string) {
	c.mu.Lock()
	c.msgs = append(c.msgs, s)
	c.mu.Unlock()
}

func (c *consoleErrors) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// TestWebPageInChromium drives the page in headless Chromium over the DevTools protocol:
// a Russian query typed into the search box shows the English post it must find, with the
// channel, date, tags and t.me link on its card; a Russian query shows its words
// highlighted; the post view lists its facts from the log; the channels table renders the
// Cyrillic titles. Screenshots are saved in the test's temp dir (TGFLOW_TEST_SCREENSHOTS
// keeps them elsewhere). No console errors.
func TestWebPageInChromium(t *testing.T) {
	exe := chromiumPath(t)
	env := newRealEnv(t)
	ts := httptest.NewServer(env.h)
	t.Cleanup(ts.Close)
	shots := t.TempDir()
	if dir := os.Getenv("TGFLOW_TEST_SCREENSHOTS"); dir != "" { // keep them to look at
		shots = dir
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000), chromedp.Flag("lang", "ru-RU"))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	// Collect what the page reports as an error from the first page on: console.error,
	// uncaught exceptions, error entries of the browser log (a failed load of a script, a
	// style sheet, an icon).
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var errs consoleErrors
	cctx, stopConsole := context.WithCancel(bctx)
	messages := chromedp.Console(cctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				errs.add(fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
			}
		}
	}()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatalf("%s of %s: %v", name, sel, err)
		}
		return v.Value
	}
	eval := func(js string) []string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	count := func(sel string) int {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return v
	}
	screenshot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
			t.Fatalf("screenshot %s is not a PNG: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d bytes)", path, len(buf))
	}

	// A Russian query typed into the page finds the English post.
	do("search", chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "рекорд в марафоне"),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.CSS("#results li.card")),
	)
	card := "#results li.card"
	key, channel, date, excerpt := attr(card, "data-key"), text(card+" .channel"), text(card+" time"), text(card+" .excerpt")
	link, summary := attr(card+" a.tme", "href"), text("#summary")
	tags := eval(`Array.from(document.querySelector("#results li.card").querySelectorAll("ul.tags a")).map(a => a.textContent)`)
	screenshot("search-cross-language")
	t.Logf("first card: %s | %s | %s | %q | %s | %v; %s", key, channel, date, excerpt, link, tags, summary)
	if key != "1004/2" || !strings.Contains(channel, "Globe Daily") || !strings.Contains(excerpt, "marathon world record") ||
		link != "https://t.me/globe_daily/2" || date != "2026-01-09" || strings.Join(tags, " ") != "#marathon #athletics" {
		t.Errorf("first card %s %q %q %q %q %v, want 1004/2 of Globe Daily with its excerpt, date, tags and t.me link", key, channel, date, excerpt, link, tags)
	}
	if !strings.Contains(summary, "рекорд в марафоне") {
		t.Errorf("summary %q does not echo the Russian query", summary)
	}

	// A Russian query in Russian text: its words are highlighted.
	do("search in Russian", chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "вулкан на Камчатке"),
		chromedp.Submit(chromedp.ID("q")),
		chromedp.WaitVisible(chromedp.CSS("#results li.card")),
	)
	key = attr(card, "data-key")
	marks := eval(`Array.from(document.querySelector("#results li.card").querySelectorAll("mark")).map(m => m.textContent)`)
	value, err := chromedp.Run(bctx, chromedp.Value(chromedp.ID("q")))
	if err != nil {
		t.Fatal(err)
	}
	screenshot("search-russian")
	if key != "1003/4" || len(marks) < 2 || strings.Join(marks[:2], " ") != "Камчатке вулкан" || value != "вулкан на Камчатке" {
		t.Errorf("Russian search: first %s, marks %q, box %q; want 1003/4 with «Камчатке» and «вулкан» marked", key, marks, value)
	}

	// The post view, reached from the card.
	do("post view", chromedp.Click(chromedp.CSS("#results li.card a.post")), chromedp.WaitVisible(chromedp.ID("post")))
	body, history := text("#post .text"), count("#history tbody tr")
	screenshot("post")
	if !strings.HasPrefix(body, "На Камчатке проснулся вулкан Шивелуч") || history != 4 {
		t.Errorf("post view: text %q, %d facts; want the post's text and 4 facts", body, history)
	}

	// Channels and trends.
	do("channels", chromedp.Navigate(ts.URL+"/channels"), chromedp.WaitVisible(chromedp.ID("channels")))
	titles := eval(`Array.from(document.querySelectorAll("#channels tbody tr td:first-child")).map(td => td.textContent.trim())`)
	screenshot("channels")
	if len(titles) != 4 || !strings.Contains(strings.Join(titles, "|"), "Технологии сегодня @tech_ru") {
		t.Errorf("channels table %q", titles)
	}
	do("trends", chromedp.Navigate(ts.URL+"/trends"), chromedp.WaitVisible(chromedp.ID("tags")))
	screenshot("trends")
	if tc := text("#tags"); !strings.Contains(tc, "#безопасность") {
		t.Errorf("tags %q", tc)
	}

	stopConsole()
	<-consoleDone
	if e := errs.all(); len(e) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(e, "\n"))
	}

	// Bad input is said on the page, with status 400 (which the browser logs as a failed
	// load, so it comes after the console check).
	do("bad input", chromedp.Navigate(ts.URL+"/?q=go&limit=500"), chromedp.WaitVisible(chromedp.ID("problems")))
	if p := text("#problems"); !strings.Contains(p, "limit: 500 is out of range 1..50") {
		t.Errorf("problems %q", p)
	}
	screenshot("bad-input")
}
