// Package exporttest generates Telegram Desktop exports of any size, for tests and benchmarks.
package exporttest

import (
	"bytes"
	"fmt"
	"strconv"
)

// Generate writes a one-chat export of n messages in Telegram Desktop's layout, with a mix
// of what real channels hold: entity-rich Cyrillic and emoji text, photos (not included),
// albums of three, edits, replies, forwards, reactions and service messages.
func Generate(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 700)
	b.WriteString("{\n \"name\": \"Нагрузочный канал\",\n \"type\": \"public_channel\",\n \"id\": 1999999999,\n \"messages\": [")
	base := int64(1700000000)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		id := i
		date := base + int64(i)*60
		inAlbum := i%50 >= 1 && i%50 <= 3 // messages 1-3 of every 50 form an album
		if inAlbum {
			date = base + int64(i-i%50+1)*60
		}
		writeMessage(&b, id, date, i, inAlbum)
	}
	b.WriteString("\n ]\n}\n")
	return b.Bytes()
}

func writeMessage(b *bytes.Buffer, id int, date int64, i int, inAlbum bool) {
	fmt.Fprintf(b, "\n  {\n   \"id\": %d,\n", id)
	if i%97 == 0 {
		fmt.Fprintf(b, "   \"type\": \"service\",\n   \"date_unixtime\": \"%d\",\n   \"action\": \"pin_message\",\n   \"message_id\": %d,\n   \"text\": \"\",\n   \"text_entities\": []\n  }", date, id-1)
		return
	}
	fmt.Fprintf(b, "   \"type\": \"message\",\n   \"date\": \"2023-11-14T22:13:20\",\n   \"date_unixtime\": \"%d\",\n", date)
	if i%7 == 0 {
		fmt.Fprintf(b, "   \"edited\": \"2023-11-15T00:00:00\",\n   \"edited_unixtime\": \"%d\",\n", date+3600)
	}
	b.WriteString("   \"from\": \"Нагрузочный канал\",\n   \"from_id\": \"channel1999999999\",\n")
	if i%11 == 0 && !inAlbum {
		b.WriteString("   \"forwarded_from\": \"Другой канал\",\n")
	}
	if i%13 == 0 && i > 1 {
		fmt.Fprintf(b, "   \"reply_to_message_id\": %d,\n", id-1)
	}
	if inAlbum || i%10 == 0 {
		b.WriteString("   \"photo\": \"(File not included. Change data exporting settings to download.)\",\n   \"width\": 1280,\n   \"height\": 720,\n")
	}
	if inAlbum && i%50 != 1 {
		b.WriteString("   \"text\": \"\",\n   \"text_entities\": []\n  }")
		return
	}
	n := strconv.Itoa(i)
	parts := [][2]string{
		{"plain", "Пост номер " + n + " 🚀: "},
		{"bold", "важно"},
		{"plain", ", читайте "},
		{"link", "https://example.com/posts/" + n},
		{"plain", " и "},
		{"text_link", "обзор"},
		{"plain", " "},
		{"hashtag", "#новости"},
		{"plain", " "},
		{"mention", "@example_channel"},
	}
	b.WriteString("   \"text\": [")
	for k, p := range parts {
		if k > 0 {
			b.WriteByte(',')
		}
		if p[0] == "plain" {
			fmt.Fprintf(b, "\n    %q", p[1])
			continue
		}
		fmt.Fprintf(b, "\n    {\n     \"type\": %q,\n     \"text\": %q", p[0], p[1])
		if p[0] == "text_link" {
			b.WriteString(",\n     \"href\": \"https://example.org/review\"")
		}
		b.WriteString("\n    }")
	}
	b.WriteString("\n   ],\n   \"text_entities\": [")
	for k, p := range parts {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "\n    {\n     \"type\": %q,\n     \"text\": %q", p[0], p[1])
		if p[0] == "text_link" {
			b.WriteString(",\n     \"href\": \"https://example.org/review\"")
		}
		b.WriteString("\n    }")
	}
	b.WriteString("\n   ]")
	if i%5 == 0 {
		fmt.Fprintf(b, ",\n   \"reactions\": [\n    {\n     \"type\": \"emoji\",\n     \"count\": %d,\n     \"emoji\": \"👍\"\n    }\n   ]", i%17+1)
	}
	b.WriteString("\n  }")
}
