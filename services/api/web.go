package api

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tgflow/tgflow/services/search"
)

//go:embed web/templates/*.html web/static/*
var webFS embed.FS

func asTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil {
			return time.Time{}, false
		}
		return *t, !t.IsZero()
	}
	return time.Time{}, false
}

var funcs = template.FuncMap{
	"segments": search.Segments,
	"join":     strings.Join,
	"rfc3339": func(v any) string {
		if t, ok := asTime(v); ok {
			return t.UTC().Format(time.RFC3339)
		}
		return ""
	},
	"day": func(v any) string {
		if t, ok := asTime(v); ok {
			return t.UTC().Format("2006-01-02")
		}
		return ""
	},
	"datetime": func(v any) string {
		if t, ok := asTime(v); ok {
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
}

// page names the template of each page.
var pageNames = []string{"search", "post", "trends", "channels"}

func parsePages() (*template.Template, error) {
	t, err := template.New("").Funcs(funcs).ParseFS(webFS, "web/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("api: templates: %w", err)
	}
	for _, n := range pageNames {
		if t.Lookup(n+".html") == nil {
			return nil, fmt.Errorf("api: templates: no %s.html", n)
		}
	}
	return t, nil
}

// pageData is what every page template sees.
type pageData struct {
	Title, Nav string
	Problems   []string
	MaxLimit   int
	Form       searchForm
	Result     *SearchResponse
	Post       *Post
	Trends     []Trend
	Tags       []TagCount
	Channels   ChannelsResponse
}

// searchForm echoes what the user typed, valid or not.
type searchForm struct {
	Q, Channel, Tag, Topic, Since, Until, Limit string
}

// render writes a page; the whole page is rendered before anything is sent, so a template
// error is a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	d.MaxLimit = search.MaxLimit
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name+".html", d); err != nil {
		s.log.Error("api: render page", "page", name, "err", err)
		writeError(w, r, http.StatusInternalServerError, "internal error", nil)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if _, err := buf.WriteTo(w); err != nil {
		return // the client went away
	}
}

// pageFail renders an error on the page it belongs to: problems of the input with the
// form, the rest as the JSON API would say them.
func (s *Server) pageFail(w http.ResponseWriter, r *http.Request, name string, d pageData, err error) {
	if errors.Is(err, search.ErrInvalid) {
		d.Problems = problems(err)
		s.render(w, r, http.StatusBadRequest, name, d)
		return
	}
	if errors.Is(err, ErrNotFound) {
		d.Problems = []string{err.Error()}
		s.render(w, r, http.StatusNotFound, name, d)
		return
	}
	s.fail(w, r, err)
}

func (s *Server) pageSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	d := pageData{Title: "Search", Nav: "search", Form: searchForm{
		Q: v.Get("q"), Channel: v.Get("channel"), Tag: v.Get("tag"), Topic: v.Get("topic"),
		Since: v.Get("since"), Until: v.Get("until"), Limit: v.Get("limit"),
	}}
	if d.Form.Limit == "" {
		d.Form.Limit = strconv.Itoa(search.DefaultLimit)
	}
	// An empty form (the first visit, or a submit with every field blank) shows the form.
	if strings.TrimSpace(d.Form.Q) == "" && len(strings.Join([]string{d.Form.Channel, d.Form.Tag, d.Form.Topic, d.Form.Since, d.Form.Until}, "")) == 0 {
		s.render(w, r, http.StatusOK, "search", d)
		return
	}
	// The browser sends every field, empty or not: drop the empty ones before validating.
	q := r.URL.Query()
	for k, vs := range q {
		if len(vs) == 1 && vs[0] == "" {
			q.Del(k)
		}
	}
	u := *r.URL
	u.RawQuery = q.Encode()
	r2 := r.Clone(r.Context())
	r2.URL = &u
	res, err := s.doSearch(r.Context(), r2)
	if err != nil {
		s.pageFail(w, r, "search", d, err)
		return
	}
	d.Title = res.Query.Q
	d.Result = &res
	s.render(w, r, http.StatusOK, "search", d)
}

func (s *Server) pagePost(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Post", Nav: "search"}
	p, err := s.post(r.Context(), r)
	if err != nil {
		s.pageFail(w, r, "post", d, err)
		return
	}
	d.Post = &p
	d.Title = p.ChannelTitle + " · " + strconv.FormatInt(p.MessageID, 10)
	s.render(w, r, http.StatusOK, "post", d)
}

func (s *Server) pageTrends(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Trends", Nav: "trends"}
	ts, err := s.trends(r.Context(), r)
	if err != nil {
		s.pageFail(w, r, "trends", d, err)
		return
	}
	tags, err := s.deps.Store.Tags(r.Context(), TagQuery{Limit: DefaultTags})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Trends, d.Tags = ts, tags
	s.render(w, r, http.StatusOK, "trends", d)
}

func (s *Server) pageChannels(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Channels", Nav: "channels"}
	if err := readParams(r.URL).err(); err != nil {
		s.pageFail(w, r, "channels", d, err)
		return
	}
	res, err := s.channels(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Channels = res
	s.render(w, r, http.StatusOK, "channels", d)
}
