package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// checkSameAsMarshal fails unless Append(v) is exactly json.Marshal(v).
func checkSameAsMarshal(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, err := Append(nil, v)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Append(%#v) error %v, json.Marshal error %v", v, err, wantErr)
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("Append(%#v)\n got %s\nwant %s", v, got, want)
	}
}

func TestAppendJSONMatchesMarshal(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"null", nil},
		{"true", true},
		{"false", false},
		{"plain string", "bjensen@example.com"},
		{"quotes and backslash", `a"b\c`},
		{"control characters", "\x00\x01\b\f\n\r\t\x1f\x7f"},
		{"html characters", "<script>&amp;</script>"},
		{"line and paragraph separators", "a\u2028b\u2029c"},
		{"invalid utf-8", "a\xffb\xc3"},
		{"non-ascii", "Ærøskøbing 東京 🎉"},
		{"empty map", map[string]any{}},
		{"nil map", map[string]any(nil)},
		{"nil slice", []any(nil)},
		{"nil string slice", []string(nil)},
		{"sorted keys", map[string]any{"zeta": 1.0, "Alpha": "a", "alpha": "b", "_": nil, "é": true}},
		{"escaped keys", map[string]any{"<k>": "v", "a\"b": "c"}},
		{"numbers", []any{0.0, math.Copysign(0, -1), 1.5, 1e20, 1e21, 1e-6, 1e-7, 5e-324, -2.5e-300, 0.1, 1e100, int32(-7), uint32(7), 123456789.0, math.MaxFloat64, json.Number("12.50"), 7, int64(-3), uint64(math.MaxUint64), math.MinInt64}},
		{"user", map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"id":       "2819c223-7f76-453a-919d-413861904646",
			"userName": "bjensen@example.com",
			"active":   true,
			"name":     map[string]any{"givenName": "Barbara", "familyName": "Jensen"},
			"emails":   []any{map[string]any{"value": "bjensen@example.com", "type": "work", "primary": true}},
			"meta":     map[string]any{"resourceType": "User", "version": `W/"3"`},
			"groups":   []any{map[string]any{"value": "g1", "$ref": "https://x/Groups/g1", "display": "Admins & Co"}},
		}},
		{"struct falls back", struct {
			A string    `json:"a"`
			T time.Time `json:"t"`
		}{"x", time.Unix(0, 0).UTC()}},
		{"nested map of strings falls back", map[string]any{"m": map[string]string{"b": "2", "a": "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkSameAsMarshal(t, tt.v) })
	}
}

func TestAppendJSONReportsUnencodableValues(t *testing.T) {
	for _, v := range []any{math.NaN(), map[string]any{"x": []any{math.Inf(1)}}, make(chan int)} {
		if _, err := Append(nil, v); err == nil {
			t.Errorf("Append(%#v): no error", v)
		}
	}
}

// FuzzAppendJSON checks appendJSON against json.Marshal on any decoded
// JSON document and on any string.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{
		`{"userName":"a<b>&c","emails":[{"value":"x","primary":true}],"n":1.5e300}`,
		`["\u2028", "\ud800", "\u0000", null, false]`,
		`{"b":{"d":[],"c":{}},"a":"\\\""}`,
		"\"\xff\xfe\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSameAsMarshal(t, s)
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			checkSameAsMarshal(t, v)
		}
		if strings.Contains(s, "{") {
			checkSameAsMarshal(t, map[string]any{s: s})
		}
	})
}
