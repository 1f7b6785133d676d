package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// oldCanonical is the reference definition of the canonical form, the
// implementation relaylock used before the streaming one: decode into
// generic values, prune empty members, json.Marshal.
func oldCanonical(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(oldPrune(v))
}

func oldPrune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if p := oldPrune(e); p == nil {
				delete(x, k)
			} else {
				x[k] = p
			}
		}
		if len(x) == 0 {
			return nil
		}
		return x
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i, e := range x {
			x[i] = oldPrune(e)
		}
		return x
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case json.Number:
		if f, err := x.Float64(); err == nil && f == 0 {
			return nil
		}
	}
	return v
}

// refJCS is a reference RFC 8785 encoder written from the RFC over
// decoded values (not the streaming one): sort by UTF-16 code units,
// minimal string escapes, ECMAScript number form built from the shortest
// digits and exponent.
func refJCS(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err := refJCSValue(&buf, v)
	return buf.Bytes(), err
}

func refJCSValue(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return err
		}
		buf.WriteString(refESNumber(f))
	case string:
		refJCSString(buf, x)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := refJCSValue(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		})
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			refJCSString(buf, k)
			buf.WriteByte(':')
			if err := refJCSValue(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	}
	return nil
}

func refJCSString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			buf.WriteByte('\\')
			buf.WriteRune(r)
		case r == '\b':
			buf.WriteString(`\b`)
		case r == '\t':
			buf.WriteString(`\t`)
		case r == '\n':
			buf.WriteString(`\n`)
		case r == '\f':
			buf.WriteString(`\f`)
		case r == '\r':
			buf.WriteString(`\r`)
		case r < 0x20:
			fmt.Fprintf(buf, `\u%04x`, r)
		default:
			buf.WriteRune(r)
		}
	}
	buf.WriteByte('"')
}

// refESNumber is ECMAScript's Number::toString (ECMA-262 7.1.12.1) for a
// finite double: k digits s, exponent n with value 0.s × 10^n.
func refESNumber(f float64) string {
	if f == 0 {
		return "0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±x, shortest
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	n, k := x+1, len(digits)
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	es := "+"
	if n-1 < 0 {
		es = "-"
	}
	m := digits[:1]
	if k > 1 {
		m += "." + digits[1:]
	}
	return sign + m + "e" + es + strconv.Itoa(max(n-1, 1-n))
}

// TestJCSMatchesReference: the streaming RFC 8785 form equals the
// reference on valid strict JSON, and on the RFC's own examples.
func TestJCSMatchesReference(t *testing.T) {
	rfc := []struct{ in, want string }{
		// RFC 8785 section 3.2.2.3 and appendix B (numbers).
		{`[1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, 1e21, 1e20, 333333333.33333329, 1e-7, 0.000001, 9007199254740992]`,
			`[1e+30,4.5,0.002,1e-27,0,1e+21,100000000000000000000,333333333.3333333,1e-7,0.000001,9007199254740992]`},
		// Section 3.2.3: sorting by UTF-16 code units.
		{`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{`{"s":"<a & b>\u2028\/\u001f\u007f","e":[],"o":{},"f":false,"n":null,"z":0}`,
			"{\"e\":[],\"f\":false,\"n\":null,\"o\":{},\"s\":\"<a & b>\u2028/\\u001f\u007f\",\"z\":0}"},
	}
	for _, tc := range rfc {
		var buf bytes.Buffer
		if err := writeJCS(&buf, []byte(tc.in)); err != nil || buf.String() != tc.want {
			t.Errorf("JCS of %s:\n got %s (%v)\nwant %s", tc.in, buf.String(), err, tc.want)
		}
		if ref, _ := refJCS([]byte(tc.in)); string(ref) != tc.want {
			t.Errorf("reference JCS of %s:\n got %s\nwant %s", tc.in, ref, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	n := 0
	for range 20000 {
		var sb strings.Builder
		randJSON(r, &sb, 0)
		data := []byte(sb.String())
		if !json.Valid(data) || checkStrict(data, nil, false) != nil {
			continue
		}
		n++
		var got bytes.Buffer
		err := writeJCS(&got, data)
		want, werr := refJCS(data)
		if werr != nil {
			continue
		}
		if err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("JCS of %q:\n got %s (%v)\nwant %s", data, got.Bytes(), err, want)
		}
	}
	if n < 1000 {
		t.Fatalf("only %d strict cases", n)
	}
}

func newCanonical(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	err := writeCanonical(&buf, data)
	return buf.Bytes(), err
}

// sameCanonical fails t unless both implementations agree on valid JSON;
// on invalid JSON the new one must refuse it.
func sameCanonical(t *testing.T, data []byte) {
	t.Helper()
	got, err := newCanonical(data)
	if !json.Valid(data) {
		if err == nil {
			t.Fatalf("invalid JSON %q accepted: %s", data, got)
		}
		return
	}
	want, werr := oldCanonical(data)
	if werr != nil {
		// The reference refuses what json.Marshal refuses; none exists
		// for decoded values, so this is a test bug.
		t.Fatalf("reference failed on %q: %v", data, werr)
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("canonical form of %q:\n got %s (%v)\nwant %s", data, got, err, want)
	}
}

var hostileStrings = []string{
	``, `a`, `\u0061`, `<>&`, `\u003c`, `\"`, `\\`, `\/`, `\b\f\n\r\t`, `\u0000\u001f`, "\x7f",
	`\ud800`, `\udc00x`, `\ud83d\ude00`, `\ud83d`, "\xff", "\xc3\x28", "\xe2\x80\xa8", "\xe2\x80\xa9",
	`\u2028`, "é", `\u00e9`, "\xef\xbf\xbd", `\ufffd`, ` `, `0`, `false`, `null`,
}

var hostileNumbers = []string{
	`0`, `-0`, `0.0`, `0e5`, `0E-5`, `-0.000e+10`, `1`, `-1`, `1.5`, `1e-400`, `1e400`, `-1e400`,
	`123456789012345678901234567890`, `0.` + strings.Repeat("0", 400) + `1`, `1E+2`, `2.5e-3`, `10`, `100e-2`,
}

// randJSON writes a random JSON value with hostile strings, numbers,
// white space, duplicate and escaped keys.
func randJSON(r *rand.Rand, sb *strings.Builder, depth int) {
	ws := func() {
		if r.IntN(4) == 0 {
			sb.WriteString([]string{" ", "\n", "\t", "\r\n  "}[r.IntN(4)])
		}
	}
	ws()
	k := r.IntN(10)
	if depth > 4 {
		k = 4 + r.IntN(6)
	}
	switch k {
	case 0, 1, 2:
		sb.WriteByte('{')
		n := r.IntN(5)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			ws()
			keys := []string{`a`, `\u0061`, `b`, `B`, `ab`, ``, `<k>`, `z`, "\xff", `\ufffd`, `é`}
			fmt.Fprintf(sb, `"%s"`, keys[r.IntN(len(keys))])
			ws()
			sb.WriteByte(':')
			randJSON(r, sb, depth+1)
		}
		ws()
		sb.WriteByte('}')
	case 3:
		sb.WriteByte('[')
		n := r.IntN(4)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			randJSON(r, sb, depth+1)
		}
		ws()
		sb.WriteByte(']')
	case 4, 5:
		sb.WriteByte('"')
		for range r.IntN(3) {
			sb.WriteString(hostileStrings[r.IntN(len(hostileStrings))])
		}
		sb.WriteByte('"')
	case 6, 7:
		sb.WriteString(hostileNumbers[r.IntN(len(hostileNumbers))])
	default:
		sb.WriteString([]string{`true`, `false`, `null`}[r.IntN(3)])
	}
	ws()
}

func TestCanonicalMatchesReference(t *testing.T) {
	for _, s := range []string{
		`null`, `{}`, `[]`, `""`, `0`, `false`, `true`, ` {"a":{}} `, `[{}]`, `[[],{},null,"",0,false]`,
		`{"a":1,"a":0}`, `{"a":0,"a":1}`, `{"a":1,"\u0061":0}`, `{"b":{"x":null},"a":[0]}`,
		`{"<":1,"&":"<>"}`, `{"\ud800":1,"\udc00":2}`, "{\"\xff\":1,\"\\ufffd\":2}",
		`{"z":{"y":{"x":{}}},"y":{"x":[{}]}}`, `-0.0e-0`, `{"a":1e-400,"b":1e400}`,
	} {
		t.Run(s, func(t *testing.T) { sameCanonical(t, []byte(s)) })
	}
	for _, s := range hostileStrings {
		sameCanonical(t, []byte(`"`+s+`"`))
		sameCanonical(t, []byte(`{"`+s+`":"`+s+`"}`))
	}
	for _, n := range hostileNumbers {
		sameCanonical(t, []byte(n))
		sameCanonical(t, []byte(`[`+n+`]`))
		sameCanonical(t, []byte(`{"n":`+n+`}`))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var sb strings.Builder
		randJSON(r, &sb, 0)
		sameCanonical(t, []byte(sb.String()))
	}
}

func TestCanonicalRefusesInvalid(t *testing.T) {
	for _, s := range []string{``, ` `, `{`, `{"a":}`, `[1,]`, `"\x"`, `01`, `1 2`, `{"a":1}x`, `nul`, `"abc`, "\"\x01\""} {
		if _, err := newCanonical([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
		if _, err := canonicalHash([]byte(s)); err == nil {
			t.Errorf("canonicalHash(%q) accepted", s)
		}
	}
}

// TestCanonicalFixtures: every committed evidence file, whole and section
// by section, has the same canonical form as before.
func TestCanonicalFixtures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/*.json")
	more, _ := filepath.Glob("testdata/*.json")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no fixture evidence files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data)
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, raw := range top {
			sameCanonical(t, raw)
			var elems []json.RawMessage
			if json.Unmarshal(raw, &elems) == nil {
				for _, e := range elems {
					sameCanonical(t, e)
					n++
				}
			}
		}
		if b, r, err := CheckFile(f); err != nil || len(r.Problems) != 0 || b.Integrity == nil {
			t.Errorf("%s does not verify: %v %q", f, err, r.Problems)
		}
		t.Logf("%s: %d sections compared", f, n)
	}
}

// FuzzCanonical: the streaming canonical form equals the reference on
// every valid JSON value and refuses every invalid one.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":"","a":1,"c":null,"d":[],"e":{}}`, `[1,{},2]`, `{"a":1,"\u0061":0}`,
		"{\"s\":\"\xff<\\u2028>\"}", `{"n":-0.0e5,"m":1e-400}`, `[{"x":[{}]}]`, `"\ud83d\ude00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameCanonical(t, data) })
}

// FuzzJCS: on any input the strict reader accepts, the streaming RFC 8785
// form equals the reference; the strict reader never panics.
func FuzzJCS(f *testing.F) {
	for _, s := range []string{`{"b":"","a":1,"c":null,"d":[],"e":{}}`, `[1E30,4.50,2e-3,-0,1e-7]`, `{"\ud83d\ude00":1,"\uff01":2}`,
		"{\"s\":\"<\\u2028>\\u001f\"}", `{"a":1,"A":2}`, `[9007199254740993]`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) || checkStrict(data, nil, false) != nil {
			return
		}
		var got bytes.Buffer
		err := writeJCS(&got, data)
		want, werr := refJCS(data)
		if werr != nil {
			t.Fatalf("reference refused strict JSON %q: %v", data, werr)
		}
		if err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("JCS of %q:\n got %s (%v)\nwant %s", data, got.Bytes(), err, want)
		}
	})
}
