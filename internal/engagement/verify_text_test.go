package engagement

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// TestVerifyText: the digest header says it is recomputed and whether it
// equals the sealed one; one problem is "1 problem"; a removed record is
// one line; --format json carries the sealed digest as a new field
// (tryout 10).
func TestVerifyText(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	b := evidence.New(t0)
	for _, id := range []string{"CHG-1", "CHG-2", "CHG-3"} {
		b.Changes = append(b.Changes, remediate.ChangeRecord{ID: id, Host: "mx.example.com", Result: "applied", Start: t0, End: t0})
	}
	p := filepath.Join(t.TempDir(), "e.json")
	if err := evidence.Save(p, b); err != nil {
		t.Fatal(err)
	}
	run := func(format string) (string, error) {
		var out bytes.Buffer
		err := Verify(context.Background(), &Env{Stdout: &out, Stderr: &out}, VerifyOptions{Path: p, Format: format})
		return out.String(), err
	}
	out, err := run("text")
	if err != nil || !strings.Contains(out, "(recomputed; equals the sealed digest)") {
		t.Fatalf("intact file: %v\n%s", err, out)
	}
	sealed := b.Integrity.Digest

	data, _ := os.ReadFile(p)
	var m map[string]json.RawMessage
	json.Unmarshal(data, &m)
	var ch []json.RawMessage
	json.Unmarshal(m["changes"], &ch)
	m["changes"], _ = json.Marshal(ch[1:])
	data, _ = json.Marshal(m)
	os.WriteFile(p, data, 0o600)
	out, err = run("text")
	if err == nil || !strings.Contains(err.Error(), ": 1 problem") || strings.Contains(err.Error(), "1 problems") {
		t.Errorf("err %v", err)
	}
	for _, want := range []string{"(recomputed; the sealed digest is " + sealed + ")", "MISMATCH  changes[0] is missing; the later records moved up"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "MISMATCH") != 1 {
		t.Errorf("want one MISMATCH line:\n%s", out)
	}
	out, _ = run("json")
	var o map[string]any
	if err := json.Unmarshal([]byte(out), &o); err != nil || o["sealed_digest"] != sealed || o["digest"] == sealed || o["verified"] != false {
		t.Errorf("json: %v\n%s", err, out)
	}
}
