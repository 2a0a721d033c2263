package postgres

import (
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// cols builds the row source of a set-based statement: one Postgres array parameter per
// column, turned into rows by unnest, so a whole batch of rows is one statement with a fixed
// number of parameters (and one cached prepared statement) whatever the batch size.
type cols struct {
	names []string
	types []string
	exprs []string
	args  []any
}

// add adds a column whose array parameter has type typ[] and whose values are vals (a slice).
func (c *cols) add(name, typ string, vals any) {
	// pgx encodes slices of its nullable types by reflection; FlatArray takes its fast path.
	switch v := vals.(type) {
	case []pgtype.Text:
		vals = pgtype.FlatArray[pgtype.Text](v)
	case []pgtype.Int8:
		vals = pgtype.FlatArray[pgtype.Int8](v)
	case []pgtype.Int4:
		vals = pgtype.FlatArray[pgtype.Int4](v)
	case []pgtype.Float8:
		vals = pgtype.FlatArray[pgtype.Float8](v)
	case []pgtype.Bool:
		vals = pgtype.FlatArray[pgtype.Bool](v)
	case []pgtype.Timestamptz:
		vals = pgtype.FlatArray[pgtype.Timestamptz](v)
	}
	c.names = append(c.names, name)
	c.types = append(c.types, typ)
	c.exprs = append(c.exprs, "t."+name)
	c.args = append(c.args, vals)
}

// addCast adds a column sent as text and cast per row to typ: used for array and jsonb
// values, which unnest cannot carry as elements of a one-dimensional array parameter.
func (c *cols) addCast(name, typ string, vals []pgtype.Text) {
	c.names = append(c.names, name)
	c.types = append(c.types, "text")
	c.exprs = append(c.exprs, "t."+name+"::"+typ)
	c.args = append(c.args, pgtype.FlatArray[pgtype.Text](vals))
}

// from is "unnest($1::t1[], …) AS t(n1, …)".
func (c *cols) from() string {
	var b strings.Builder
	b.WriteString("unnest(")
	for i, t := range c.types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1) + "::" + t + "[]")
	}
	b.WriteString(") AS t(" + strings.Join(c.names, ", ") + ")")
	return b.String()
}

// list is the column names.
func (c *cols) list() string { return strings.Join(c.names, ", ") }

// selectList is the per-row expressions, in column order.
func (c *cols) selectList() string { return strings.Join(c.exprs, ", ") }

// Value helpers. Empty optional values are NULL, so a zero Go value and an absent JSON field
// are stored alike.

func text(s string) pgtype.Text { return pgtype.Text{String: s, Valid: true} }

func optText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

func optInt8(n int64) pgtype.Int8 { return pgtype.Int8{Int64: n, Valid: n != 0} }

func optInt4(n int) pgtype.Int4 { return pgtype.Int4{Int32: int32(n), Valid: n != 0} }

func optFloat8(f float64) pgtype.Float8 { return pgtype.Float8{Float64: f, Valid: f != 0} }

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }

func optTS(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()} }

// textArray renders a Postgres text[] literal; every element is quoted, so any string
// (commas, braces, quotes, backslashes, "NULL") survives.
func textArray(ss []string) pgtype.Text {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return text(b.String())
}

// int8Array renders a Postgres bigint[] literal.
func int8Array(ns []int64) pgtype.Text {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(n, 10))
	}
	b.WriteByte('}')
	return text(b.String())
}
