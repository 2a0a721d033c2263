package qdranttest

import (
	"strings"
	"time"

	qd "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// validateFilter rejects conditions this server does not evaluate (Unimplemented) and
// malformed ones (InvalidArgument) before anything is evaluated or changed, so a filter is
// never silently half-understood.
func validateFilter(f *qd.Filter) error {
	if f == nil {
		return nil
	}
	all := [][]*qd.Condition{f.GetMust(), f.GetShould(), f.GetMustNot(), f.GetMinShould().GetConditions()}
	for _, conds := range all {
		for _, c := range conds {
			if err := validateCondition(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateCondition(c *qd.Condition) error {
	switch v := c.GetConditionOneOf().(type) {
	case *qd.Condition_Field:
		return validateField(v.Field)
	case *qd.Condition_IsEmpty, *qd.Condition_IsNull, *qd.Condition_HasId:
		return nil
	case *qd.Condition_Filter:
		return validateFilter(v.Filter)
	case *qd.Condition_Nested:
		return unimplemented("nested conditions")
	case *qd.Condition_HasVector:
		return unimplemented("has_vector conditions")
	}
	return status.Error(codes.InvalidArgument, "Wrong input: empty condition")
}

func validateField(fc *qd.FieldCondition) error {
	if fc.GetKey() == "" {
		return status.Error(codes.InvalidArgument, "Wrong input: field condition without a key")
	}
	if fc.GetGeoBoundingBox() != nil || fc.GetGeoRadius() != nil || fc.GetGeoPolygon() != nil {
		return unimplemented("geo conditions")
	}
	set := 0
	if m := fc.GetMatch(); m != nil {
		set++
		switch m.GetMatchValue().(type) {
		case *qd.Match_Keyword, *qd.Match_Integer, *qd.Match_Boolean, *qd.Match_Keywords, *qd.Match_Integers:
		case *qd.Match_Text, *qd.Match_Phrase, *qd.Match_TextAny:
			return unimplemented("full-text match")
		case *qd.Match_ExceptKeywords, *qd.Match_ExceptIntegers:
			return unimplemented("match except")
		default:
			return status.Error(codes.InvalidArgument, "Wrong input: empty match")
		}
	}
	for _, present := range []bool{fc.GetRange() != nil, fc.GetDatetimeRange() != nil, fc.GetValuesCount() != nil, fc.IsEmpty != nil, fc.IsNull != nil} {
		if present {
			set++
		}
	}
	if set == 0 {
		return status.Errorf(codes.InvalidArgument, "Wrong input: field condition on %q has no test", fc.GetKey())
	}
	return nil
}

// matchFilter evaluates a validated filter: every must holds, no must_not holds, at least
// one should holds (when there are any), at least min_count of min_should hold.
func matchFilter(f *qd.Filter, p *point) bool {
	if f == nil {
		return true
	}
	for _, c := range f.GetMust() {
		if !matchCondition(c, p) {
			return false
		}
	}
	for _, c := range f.GetMustNot() {
		if matchCondition(c, p) {
			return false
		}
	}
	if should := f.GetShould(); len(should) > 0 {
		found := false
		for _, c := range should {
			if matchCondition(c, p) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if ms := f.GetMinShould(); ms != nil {
		n := uint64(0)
		for _, c := range ms.GetConditions() {
			if matchCondition(c, p) {
				n++
			}
		}
		if n < ms.GetMinCount() {
			return false
		}
	}
	return true
}

func matchCondition(c *qd.Condition, p *point) bool {
	switch v := c.GetConditionOneOf().(type) {
	case *qd.Condition_Field:
		return matchField(v.Field, p)
	case *qd.Condition_IsEmpty:
		return isEmpty(p, v.IsEmpty.GetKey())
	case *qd.Condition_IsNull:
		return isNull(p, v.IsNull.GetKey())
	case *qd.Condition_HasId:
		for _, id := range v.HasId.GetHasId() {
			if k, err := pointKey(id); err == nil && p.key == k {
				return true
			}
		}
		return false
	case *qd.Condition_Filter:
		return matchFilter(v.Filter, p)
	}
	return false
}

// matchField is true when every test the condition carries holds; a test on a multi-valued
// field holds when any of its values passes (Qdrant's array semantics).
func matchField(fc *qd.FieldCondition, p *point) bool {
	key := fc.GetKey()
	values := lookup(p.payload, key)
	if m := fc.GetMatch(); m != nil && !anyValue(values, func(v *qd.Value) bool { return matchValue(m, v) }) {
		return false
	}
	if r := fc.GetRange(); r != nil && !anyValue(values, func(v *qd.Value) bool { return inRange(r, v) }) {
		return false
	}
	if r := fc.GetDatetimeRange(); r != nil && !anyValue(values, func(v *qd.Value) bool { return inDatetimeRange(r, v) }) {
		return false
	}
	if vc := fc.GetValuesCount(); vc != nil && !countOK(vc, uint64(len(values))) {
		return false
	}
	if fc.IsEmpty != nil && isEmpty(p, key) != fc.GetIsEmpty() {
		return false
	}
	if fc.IsNull != nil && isNull(p, key) != fc.GetIsNull() {
		return false
	}
	return true
}

func anyValue(values []*qd.Value, f func(*qd.Value) bool) bool {
	for _, v := range values {
		if f(v) {
			return true
		}
	}
	return false
}

func matchValue(m *qd.Match, v *qd.Value) bool {
	switch mv := m.GetMatchValue().(type) {
	case *qd.Match_Keyword:
		s, ok := v.GetKind().(*qd.Value_StringValue)
		return ok && s.StringValue == mv.Keyword
	case *qd.Match_Integer:
		n, ok := v.GetKind().(*qd.Value_IntegerValue)
		return ok && n.IntegerValue == mv.Integer
	case *qd.Match_Boolean:
		b, ok := v.GetKind().(*qd.Value_BoolValue)
		return ok && b.BoolValue == mv.Boolean
	case *qd.Match_Keywords:
		s, ok := v.GetKind().(*qd.Value_StringValue)
		if !ok {
			return false
		}
		for _, kw := range mv.Keywords.GetStrings() {
			if kw == s.StringValue {
				return true
			}
		}
	case *qd.Match_Integers:
		n, ok := v.GetKind().(*qd.Value_IntegerValue)
		if !ok {
			return false
		}
		for _, x := range mv.Integers.GetIntegers() {
			if x == n.IntegerValue {
				return true
			}
		}
	}
	return false
}

func inRange(r *qd.Range, v *qd.Value) bool {
	var x float64
	switch n := v.GetKind().(type) {
	case *qd.Value_IntegerValue:
		x = float64(n.IntegerValue)
	case *qd.Value_DoubleValue:
		x = n.DoubleValue
	default:
		return false
	}
	return (r.Lt == nil || x < r.GetLt()) && (r.Lte == nil || x <= r.GetLte()) &&
		(r.Gt == nil || x > r.GetGt()) && (r.Gte == nil || x >= r.GetGte())
}

// datetimeLayouts are the payload datetime forms this server parses (Qdrant accepts more).
var datetimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"}

func inDatetimeRange(r *qd.DatetimeRange, v *qd.Value) bool {
	s, ok := v.GetKind().(*qd.Value_StringValue)
	if !ok {
		return false
	}
	var t time.Time
	var err error
	for _, layout := range datetimeLayouts {
		if t, err = time.Parse(layout, s.StringValue); err == nil {
			break
		}
	}
	if err != nil {
		return false
	}
	return (r.Lt == nil || t.Before(r.GetLt().AsTime())) && (r.Lte == nil || !t.After(r.GetLte().AsTime())) &&
		(r.Gt == nil || t.After(r.GetGt().AsTime())) && (r.Gte == nil || !t.Before(r.GetGte().AsTime()))
}

func countOK(vc *qd.ValuesCount, n uint64) bool {
	return (vc.Lt == nil || n < vc.GetLt()) && (vc.Lte == nil || n <= vc.GetLte()) &&
		(vc.Gt == nil || n > vc.GetGt()) && (vc.Gte == nil || n >= vc.GetGte())
}

// isEmpty: the field is missing, null, or an empty array.
func isEmpty(p *point, key string) bool {
	for _, v := range lookup(p.payload, key) {
		if _, null := v.GetKind().(*qd.Value_NullValue); !null {
			return false
		}
	}
	return true
}

// isNull: the field exists and is null.
func isNull(p *point, key string) bool {
	for _, v := range lookupRaw(p.payload, key) {
		if _, null := v.GetKind().(*qd.Value_NullValue); null {
			return true
		}
	}
	return false
}

// lookup returns the values at a payload path ("a.b", "a[].b"), arrays at the leaf
// flattened into their elements.
func lookup(payload map[string]*qd.Value, key string) []*qd.Value {
	var out []*qd.Value
	for _, v := range lookupRaw(payload, key) {
		if l, ok := v.GetKind().(*qd.Value_ListValue); ok {
			out = append(out, l.ListValue.GetValues()...)
			continue
		}
		out = append(out, v)
	}
	return out
}

func lookupRaw(payload map[string]*qd.Value, key string) []*qd.Value {
	cur := []*qd.Value{{Kind: &qd.Value_StructValue{StructValue: &qd.Struct{Fields: payload}}}}
	for _, part := range strings.Split(key, ".") {
		name, flatten := strings.CutSuffix(part, "[]")
		var next []*qd.Value
		for _, v := range cur {
			child, ok := v.GetStructValue().GetFields()[name]
			if !ok {
				continue
			}
			if l, isList := child.GetKind().(*qd.Value_ListValue); flatten && isList {
				next = append(next, l.ListValue.GetValues()...)
				continue
			}
			next = append(next, child)
		}
		cur = next
	}
	return cur
}

func unimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "qdranttest: %s are not supported", what)
}
