package evidence

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse: an evidence file may be damaged or crafted. Parse never
// panics, fails only with the package's sentinel errors, and what it
// accepts marshals deterministically and parses again.
func FuzzParse(f *testing.F) {
	good, err := Marshal(New(t0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"schema":"relaylock.evidence/v9"}`))
	f.Add([]byte(`{"schema":"relaylock.evidence/v1.7","audits":[{"purpose":"audit"}],"unknown":1}`))
	f.Add([]byte(`{"schema":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongSchema) && !errors.Is(err, ErrFutureSchema) && !errors.Is(err, ErrNewerFields) {
				t.Fatalf("error %v is none of ErrMalformed, ErrWrongSchema, ErrFutureSchema, ErrNewerFields", err)
			}
			return
		}
		out, err := Marshal(b)
		if err != nil {
			return // e.g. a value the canonical hash refuses; reported, not a crash
		}
		b2, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled evidence does not parse: %v\n%s", err, out)
		}
		out2, err := Marshal(b2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("marshal(parse(marshal(b))) differs (%v)", err)
		}
	})
}
