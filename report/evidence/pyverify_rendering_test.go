package evidence

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderingFieldsSealed: an artifact's client and template_sha256
// (what a report used that the evidence does not hold) are read by the
// strict decoder, covered by the artifact's section hash, and the
// independent verifier (testdata/verify.py) agrees on both the file as
// written and one with the client edited.
func TestRenderingFieldsSealed(t *testing.T) {
	b := jcsFixture()
	b.Artifacts[0].Client = "Beta Corp"
	b.Artifacts[0].TemplateSHA256 = strings.Repeat("5a", 32)
	dir := t.TempDir()
	p := filepath.Join(dir, "ev.json")
	if err := Save(p, b); err != nil {
		t.Fatal(err)
	}
	got, _, err := LoadVerified(p)
	if err != nil {
		t.Fatalf("written with rendering fields, it does not verify: %v", err)
	}
	if a := got.Artifacts[0]; a.Client != "Beta Corp" || a.TemplateSHA256 != strings.Repeat("5a", 32) {
		t.Errorf("read back %+v", a)
	}
	data, _ := os.ReadFile(p)
	edited := bytes.Replace(data, []byte(`"Beta Corp"`), []byte(`"Gamma Corp"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("the edit changed nothing")
	}
	q := filepath.Join(dir, "edited.json")
	if err := os.WriteFile(q, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if v := goVerdict(t, q); v.malformed || len(v.bad) != 1 || v.bad[0] != "artifacts[0]" {
		t.Errorf("edited client: relaylock verify says %+v, want artifacts[0] changed", v)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is required in CI")
		}
		t.Skip("python3 not installed: testdata/verify.py was not run")
	}
	for file, wantOK := range map[string]bool{p: true, q: false} {
		out, err := exec.Command(py, "testdata/verify.py", file).Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("verify.py: %v", err)
		}
		if ok := err == nil; ok != wantOK {
			t.Errorf("verify.py %s: ok=%v, want %v\n%s", filepath.Base(file), ok, wantOK, out)
		}
		if !wantOK && !strings.Contains(string(out), "MISMATCH artifacts[0]") {
			t.Errorf("verify.py %s does not name artifacts[0]:\n%s", filepath.Base(file), out)
		}
	}
}
