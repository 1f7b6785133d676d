package evidence

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// insideViewBundle is jcsFixture with a re-test that records its inside
// view (AuditRun.InsideView).
func insideViewBundle() *Bundle {
	b := jcsFixture()
	re := *b.Audits[0].Result
	b.Audits = append(b.Audits, AuditRun{Purpose: PurposeRetest, Host: "mx.example.com", Change: "CHG-1",
		InsideView: []InsideView{{Prober: "127.0.0.1", Allowed: "127.0.0.1", Loopback: true, Endpoints: []string{"192.0.2.1:25"}}},
		Result:     &re})
	return b
}

// The inside view is sealed like the rest of the run: it survives a save
// and strict reading, an edit to it is a mismatch of that run, and the
// independent verifier (testdata/verify.py) agrees on both.
func TestInsideViewSealed(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := Save(good, insideViewBundle()); err != nil {
		t.Fatal(err)
	}
	b, r, err := LoadVerified(good)
	if err != nil || len(r.Problems) != 0 {
		t.Fatalf("LoadVerified: %v %q", err, r.Problems)
	}
	if got, want := b.Audits[1].InsideView, insideViewBundle().Audits[1].InsideView; !reflect.DeepEqual(got, want) {
		t.Fatalf("inside view read back as %+v, want %+v", got, want)
	}
	data, _ := os.ReadFile(good)
	if !bytes.Contains(data, []byte(`"inside_view"`)) {
		t.Fatal("no inside_view member written")
	}
	edited := filepath.Join(dir, "edited.json")
	os.WriteFile(edited, bytes.Replace(data, []byte(`"allowed": "127.0.0.1"`), []byte(`"allowed": "10.0.0.0/8"`), 1), 0o600)
	if _, r, err := CheckFile(edited); err != nil || !slices.Contains(r.Modified(), "audits[1]") {
		t.Fatalf("an edited inside view: %v, modified %q", err, r.Modified())
	}
	// A case variant of the member is refused by strict reading.
	variant := filepath.Join(dir, "variant.json")
	os.WriteFile(variant, bytes.Replace(data, []byte(`"inside_view"`), []byte(`"Inside_View"`), 1), 0o600)
	if _, _, err := CheckFile(variant); err == nil {
		t.Fatal("a case variant of inside_view was accepted")
	}

	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is required in CI")
		}
		t.Skip("python3 not installed: testdata/verify.py was not run")
	}
	for _, tc := range []struct {
		file string
		ok   bool
	}{{good, true}, {edited, false}, {variant, false}} {
		out, err := exec.Command(py, "testdata/verify.py", tc.file).Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("verify.py: %v", err)
		}
		if (err == nil) != tc.ok {
			t.Errorf("verify.py %s: ok=%v, want %v\n%s", filepath.Base(tc.file), err == nil, tc.ok, out)
		}
		goV := goVerdict(t, tc.file)
		if tc.ok && !strings.Contains(string(out), "digest "+goV.digest) {
			t.Errorf("verify.py digest differs from relaylock's %s:\n%s", goV.digest, out)
		}
		if tc.file == edited && !strings.Contains(string(out), "MISMATCH audits[1]") {
			t.Errorf("verify.py does not name audits[1]:\n%s", out)
		}
	}
}
