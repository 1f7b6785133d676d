package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
