package export

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decode fills f from raw as the walker's json.Decoder would, without reflection, for the
// messages the fast walker reads. raw must be a valid JSON object in the plain form
// (keyScanner.plainJSON: lowercase keys without escapes, none twice, no null). It returns
// false when a value has a type the typed decode would reject (the message is then read
// by parseMessage, as after a failed typed decode).
func (f *fastMessage) decode(raw []byte) bool {
	f.reset()
	d := fastDecoder{b: raw}
	return d.object(func(k string) bool {
		switch k {
		case "id":
			return d.int(&f.ID)
		case "type":
			return d.str(&f.Type)
		case "date":
			return d.str(&f.Date)
		case "date_unixtime":
			return d.strPtr(&f.DateUnix)
		case "edited":
			return d.str(&f.Edited)
		case "edited_unixtime":
			return d.strPtr(&f.EditedUnix)
		case "author":
			return d.str(&f.Author)
		case "forwarded_from":
			return d.raw(&f.ForwardedFrom)
		case "forwarded_from_id":
			return d.strPtr(&f.ForwardedFromID)
		case "reply_to_message_id":
			return d.int(&f.ReplyTo)
		case "reply_to_peer_id":
			return d.raw(&f.ReplyToPeer)
		case "photo":
			return d.strPtr(&f.Photo)
		case "photo_file_size":
			return d.int(&f.PhotoFileSize)
		case "file":
			return d.strPtr(&f.File)
		case "file_name":
			return d.str(&f.FileName)
		case "file_size":
			return d.int(&f.FileSize)
		case "media_type":
			return d.str(&f.MediaType)
		case "mime_type":
			return d.str(&f.MimeType)
		case "duration_seconds":
			return d.int(&f.Duration)
		case "width":
			return d.int(&f.Width)
		case "height":
			return d.int(&f.Height)
		case "text":
			return d.raw(&f.Text)
		case "text_entities":
			return d.array(func() bool {
				f.TextEntities = append(f.TextEntities, fastPart{})
				p := &f.TextEntities[len(f.TextEntities)-1]
				return d.object(func(k string) bool {
					switch k {
					case "type":
						return d.str(&p.Type)
					case "text":
						return d.str(&p.Text)
					case "href":
						return d.str(&p.Href)
					case "user_id":
						return d.int(&p.UserID)
					}
					return d.skip()
				})
			})
		case "reactions":
			return d.array(func() bool {
				f.Reactions = append(f.Reactions, fastReaction{})
				r := &f.Reactions[len(f.Reactions)-1]
				return d.object(func(k string) bool {
					switch k {
					case "type":
						return d.str(&r.Type)
					case "count":
						return d.int(&r.Count)
					case "emoji":
						return d.str(&r.Emoji)
					case "document_id":
						return d.str(&r.DocumentID)
					}
					return d.skip()
				})
			})
		}
		return d.skip()
	})
}

// fastDecoder reads valid JSON.
type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) ws() {
	for d.i < len(d.b) && isSpace(d.b[d.i]) {
		d.i++
	}
}

// object reads an object, calling field for each key with the decoder at its value.
func (d *fastDecoder) object(field func(k string) bool) bool {
	d.ws()
	if d.b[d.i] != '{' {
		return false
	}
	d.i++
	d.ws()
	if d.b[d.i] == '}' {
		d.i++
		return true
	}
	for {
		d.ws()
		j := d.i + 1
		for d.b[j] != '"' { // plain keys have no escapes
			j++
		}
		k := d.b[d.i+1 : j]
		d.i = j + 1
		d.ws()
		d.i++ // ':'
		if !field(string(k)) {
			return false
		}
		d.ws()
		if d.b[d.i] == '}' {
			d.i++
			return true
		}
		d.i++ // ','
	}
}

// array reads an array, calling elem with the decoder at each element.
func (d *fastDecoder) array(elem func() bool) bool {
	d.ws()
	if d.b[d.i] != '[' {
		return false
	}
	d.i++
	d.ws()
	if d.b[d.i] == ']' {
		d.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		d.ws()
		if d.b[d.i] == ']' {
			d.i++
			return true
		}
		d.i++ // ','
	}
}

func (d *fastDecoder) skip() bool {
	end, ok := validValue(d.b, d.i, 0)
	d.i = end
	return ok
}

func (d *fastDecoder) raw(dst *json.RawMessage) bool {
	d.ws()
	start := d.i
	if !d.skip() {
		return false
	}
	*dst = json.RawMessage(d.b[start:d.i])
	return true
}

func (d *fastDecoder) int(dst *int64) bool {
	d.ws()
	start := d.i
	if c := d.b[start]; c != '-' && (c < '0' || c > '9') {
		return false // what the typed decode rejects: a string, an object, …
	}
	if !d.skip() {
		return false
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return false // a fraction, an exponent, out of range
	}
	*dst = n
	return true
}

func (d *fastDecoder) str(dst *string) bool {
	d.ws()
	if d.b[d.i] != '"' {
		return false
	}
	start := d.i
	esc, ascii := false, true
	j := start + 1
	for ; d.b[j] != '"'; j++ {
		switch c := d.b[j]; {
		case c == '\\':
			esc = true
			j++
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	d.i = j + 1
	lit := d.b[start:d.i]
	if !esc && (ascii || utf8.Valid(lit)) {
		*dst = string(lit[1 : len(lit)-1])
		return true
	}
	// Escapes and invalid UTF-8 (replaced by U+FFFD) as encoding/json reads them.
	return json.Unmarshal(lit, dst) == nil
}

func (d *fastDecoder) strPtr(dst **string) bool {
	var s string
	if !d.str(&s) {
		return false
	}
	*dst = &s
	return true
}
