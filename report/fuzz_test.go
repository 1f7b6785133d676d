package report

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/report/evidence"
)

// setStrings puts s into every string the bundle holds: struct fields,
// slice elements and map values (and one extra map key), so that the fuzz
// input reaches every text the report may print.
func setStrings(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			setStrings(v.Elem(), s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				setStrings(v.Field(i), s)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // json.RawMessage: never printed
		}
		for i := range v.Len() {
			setStrings(v.Index(i), s)
		}
	case reflect.Map:
		if v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String && !v.IsNil() {
			for _, k := range v.MapKeys() {
				v.SetMapIndex(k, reflect.ValueOf(s))
			}
			v.SetMapIndex(reflect.ValueOf(s), reflect.ValueOf(s))
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(s)
		}
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{"", "😀", "\x00\xff\xfe", "\u202Eevil", "{nb}", "\x01NB\x01", "{pages}", `(\)`, "%%EOF\n", "a\r\nb", "open", "retest", strings.Repeat("A", 1000), strings.Repeat("word ", 200),
		demoRelayIPList, "U210cFN2Yy8x", "R vs name=U210cFN2Yy8x relayiplist=~ x= =y", "AUTH LOGIN", "354 go", "."} {
		// (10 kB lines are in the fixture's transcript; 10 kB in every field
		// at once renders thousands of pages, too slow for a seed under -race.)
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := fixtureBundle()
		setStrings(reflect.ValueOf(b), s)
		var buf bytes.Buffer
		if _, err := render(&buf, b, Options{Client: s}); err != nil {
			t.Fatalf("render with %q: %v", s, err)
		}
		if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
			t.Fatal("no PDF")
		}
		// Also an evidence file made of such strings survives a round trip.
		if _, err := evidence.Parse(mustMarshal(t, b)); err != nil && !strings.Contains(err.Error(), "schema") {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func mustMarshal(t *testing.T, b *evidence.Bundle) []byte {
	t.Helper()
	data, err := evidence.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkRender renders engagements of 1, 50 and 500 open hosts, each
// with three SMTP connections, an inspection, a change and a re-test.
// Target (issue #6): 500 hosts in under 2 s and 300 MB.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1, 50, 500} {
		bundle := scaleBundle(n)
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				var buf bytes.Buffer
				if _, err := render(&buf, bundle, Options{}); err != nil {
					b.Fatal(err)
				}
				size = buf.Len()
			}
			b.ReportMetric(float64(size)/1e6, "MB-pdf")
		})
	}
}
