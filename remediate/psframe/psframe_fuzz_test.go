package psframe

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var fuzzName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzDecodeOutput feeds arbitrary stdout to DecodeOutput: it must never
// panic, must fail only with ErrFrame, and a decoded frame re-encodes to
// one that decodes to the same records.
func FuzzDecodeOutput(f *testing.F) {
	rec := NewRecord("setting").Set("name", "RelayIpList").SetNull("old").SetList("items", []string{"a", "b c", ""})
	f.Add("n0nce", EncodeOutput("n0nce", []Record{*rec}, 0))
	f.Add("n0nce", []byte("banner\r\nBEGIN n0nce\r\nR error message=Ym9vbQ==\r\nEND n0nce 3\r\n"))
	f.Add("n0nce", []byte("BEGIN n0nce\nR x a=~ b= c=!!\nEND n0nce 0"))
	f.Add("n0nce", []byte("BEGIN n0nce\r\nR x\r\n"))
	f.Add("n0nce", []byte("BEGIN other\r\nEND other 0\r\n"))
	f.Fuzz(func(t *testing.T, nonce string, stdout []byte) {
		out, err := DecodeOutput(nonce, stdout)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v is not ErrFrame", err)
			}
			return
		}
		if strings.ContainsAny(nonce, " \t\r\n") || nonce == "" {
			return // a nonce the runner never makes; nothing to re-encode
		}
		for _, r := range out.Records {
			if !fuzzName.MatchString(r.Type) {
				return
			}
			for _, fl := range r.Fields {
				if !fuzzName.MatchString(fl.Name) {
					return
				}
			}
		}
		back, err := DecodeOutput(nonce, EncodeOutput(nonce, out.Records, out.ExitCode))
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if back.ExitCode != out.ExitCode || len(back.Records) != len(out.Records) {
			t.Fatalf("round trip changed the frame: %+v vs %+v", back, out)
		}
		for i := range out.Records {
			a, b := out.Records[i], back.Records[i]
			if a.Type != b.Type || len(a.Fields) != len(b.Fields) {
				t.Fatalf("record %d changed: %+v vs %+v", i, a, b)
			}
			for j := range a.Fields {
				if a.Fields[j] != b.Fields[j] {
					t.Fatalf("record %d field %d changed: %+v vs %+v", i, j, a.Fields[j], b.Fields[j])
				}
			}
		}
	})
}

// FuzzDecodePayload feeds arbitrary stdin payloads to DecodePayload (the
// lab's side of the contract) and checks that what the runner encodes
// always decodes to exactly the script and parameters it was given: an
// operator's value travels as data, whatever its bytes.
func FuzzDecodePayload(f *testing.F) {
	f.Add(EncodePayload("Write-Output 1", map[string]string{"Allow": "192.0.2.1", "_nonce": "ab"}), "Allow", "'; Remove-Item C:\\ -Recurse; '")
	f.Add([]byte("RLP1\r\nP a\r\nS \r\n"), "x", "$(whoami)`n\r\n\"")
	f.Add([]byte("RLP1\nS !!\n"), "Name", "")
	f.Add([]byte(""), "a", "b")
	f.Fuzz(func(t *testing.T, payload []byte, name, value string) {
		if _, _, err := DecodePayload(payload); err != nil && !errors.Is(err, ErrPayload) {
			t.Fatalf("error %v is not ErrPayload", err)
		}
		if !fuzzName.MatchString(name) {
			return
		}
		script := string(payload)
		p := map[string]string{name: value, NonceParam: "n"}
		gotScript, gotParams, err := DecodePayload(EncodePayload(script, p))
		if err != nil {
			t.Fatalf("encoded payload does not decode: %v", err)
		}
		if gotScript != script {
			t.Fatalf("script changed in transit")
		}
		if len(gotParams) != len(p) || gotParams[name] != value || gotParams[NonceParam] != "n" {
			t.Fatalf("params changed in transit: %q", gotParams)
		}
	})
}

// TestPayloadEmptyScriptRoundTrip is the regression test for the first
// crasher FuzzDecodePayload found: EncodePayload writes "S " for an empty
// script, and DecodePayload refused the trimmed line "S".
func TestPayloadEmptyScriptRoundTrip(t *testing.T) {
	src, params, err := DecodePayload(EncodePayload("", map[string]string{"a": ""}))
	if err != nil || src != "" || len(params) != 1 || params["a"] != "" {
		t.Fatalf("DecodePayload(EncodePayload(\"\")) = %q, %q, %v", src, params, err)
	}
}
