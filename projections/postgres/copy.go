package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// writes is what one Apply writes after its reads: the statements of one pipelined batch
// (deletes, updates, upserts, the checkpoint) and the new rows of each table, loaded with
// COPY once the batch has run. New rows never conflict with stored ones (the stored state
// was read under the checkpoint lock) and every delete that makes room for them is in the
// batch, so the order is safe; COPY costs the server a fraction of an INSERT … SELECT from
// unnest of the same rows.
type writes struct {
	pgx.Batch
	copies  []copyLoad
	copyBuf []byte // the COPY data of every load, back to back
	// searchKeys are the posts whose search documents are recomputed after the COPYs, from
	// the rows the batch and the COPYs wrote (searchdoc.go); nil: none.
	searchKeys *cols
	searchKeep map[key]bool // of searchKeys, those whose text is the stored document's
}

// copyLoad is one COPY … FROM STDIN (text format) of copyBuf[start:end].
type copyLoad struct {
	sql        string
	start, end int
}

// run sends the batch, then the COPYs, then recomputes the search documents. Without
// COPYs the search parts are read by the batch's last statement, in its round trip.
func (w *writes) run(ctx context.Context, tx pgx.Tx) error {
	var docs *searchDocs
	if w.searchKeys != nil {
		docs = &searchDocs{keep: w.searchKeep}
	}
	partsRead := false
	if docs != nil && len(w.copies) == 0 {
		w.Queue(searchPartsSQL, w.searchKeys.args...).Query(docs.scan)
		partsRead = true
	}
	if w.Len() > 0 {
		if err := tx.SendBatch(ctx, &w.Batch).Close(); err != nil {
			return err
		}
	}
	pg := tx.Conn().PgConn()
	for _, c := range w.copies {
		if _, err := pg.CopyFrom(ctx, bytes.NewReader(w.copyBuf[c.start:c.end]), c.sql); err != nil {
			return fmt.Errorf("%s: %w", c.sql, err)
		}
	}
	if docs == nil {
		return nil
	}
	if !partsRead {
		rows, err := tx.Query(ctx, searchPartsSQL, w.searchKeys.args...)
		if err != nil {
			return fmt.Errorf("read search parts: %w", err)
		}
		if err := docs.scan(rows); err != nil {
			return err
		}
	}
	return docs.write(ctx, tx)
}

// copyText appends the rows of c to buf in COPY's text format (tab-separated columns, \\N
// for NULL, backslash escapes) and reports whether every value could be rendered; the text is
// parsed by the column types' input functions, as the casts of the statement path are.
// Timestamps outside the years 1–9999 (which Go formats differently from Postgres) and
// values of other types make it report false.
func (c *cols) copyText(buf []byte) ([]byte, bool) {
	n := c.rows()
	for i := range n {
		for j, a := range c.args {
			if j > 0 {
				buf = append(buf, '\t')
			}
			var ok bool
			if buf, ok = appendCopyValue(buf, a, i); !ok {
				return buf, false
			}
		}
		buf = append(buf, '\n')
	}
	return buf, true
}

const copyNull = `\N`

func appendCopyValue(buf []byte, col any, i int) ([]byte, bool) {
	switch v := col.(type) {
	case []int64:
		return strconv.AppendInt(buf, v[i], 10), true
	case []int32:
		return strconv.AppendInt(buf, int64(v[i]), 10), true
	case []float64:
		return appendFloat(buf, v[i]), true
	case []bool:
		return strconv.AppendBool(buf, v[i]), true
	case []string:
		return appendCopyText(buf, v[i]), true
	case pgtype.FlatArray[pgtype.Text]:
		if !v[i].Valid {
			return append(buf, copyNull...), true
		}
		return appendCopyText(buf, v[i].String), true
	case pgtype.FlatArray[pgtype.Int8]:
		if !v[i].Valid {
			return append(buf, copyNull...), true
		}
		return strconv.AppendInt(buf, v[i].Int64, 10), true
	case pgtype.FlatArray[pgtype.Int4]:
		if !v[i].Valid {
			return append(buf, copyNull...), true
		}
		return strconv.AppendInt(buf, int64(v[i].Int32), 10), true
	case pgtype.FlatArray[pgtype.Float8]:
		if !v[i].Valid {
			return append(buf, copyNull...), true
		}
		return appendFloat(buf, v[i].Float64), true
	case pgtype.FlatArray[pgtype.Bool]:
		if !v[i].Valid {
			return append(buf, copyNull...), true
		}
		return strconv.AppendBool(buf, v[i].Bool), true
	case pgtype.FlatArray[pgtype.Timestamptz]:
		t := v[i]
		if !t.Valid {
			return append(buf, copyNull...), true
		}
		if t.InfinityModifier != pgtype.Finite {
			return buf, false
		}
		return appendTimestamptz(buf, t.Time)
	}
	return buf, false
}

// appendTimestamptz renders t in UTC at microsecond precision, truncated as pgx's binary
// encoding truncates it.
func appendTimestamptz(buf []byte, t time.Time) ([]byte, bool) {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return buf, false
	}
	buf = t.AppendFormat(buf, "2006-01-02 15:04:05.999999")
	return append(buf, "+00"...), true
}

// appendFloat renders f exactly (shortest representation that parses back to f).
func appendFloat(buf []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, 64)
}

// appendCopyText escapes s for COPY's text format: backslash, and the newline, carriage
// return and tab that would end a row or a column.
func appendCopyText(buf []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch s[i] {
		case '\\':
			esc = '\\'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\t':
			esc = 't'
		default:
			continue
		}
		buf = append(buf, s[start:i]...)
		buf = append(buf, '\\', esc)
		start = i + 1
	}
	return append(buf, s[start:]...)
}
