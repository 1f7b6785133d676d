package evidence

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
)

// streamed returns a copy of b whose audit runs hand their targets to the
// encoder through a TargetSource (a fresh copy of each target per call,
// as a journal reader would decode it) instead of Result.Targets.
func streamed(b *Bundle) *Bundle {
	c := *b
	if b.Audits != nil {
		c.Audits = make([]AuditRun, len(b.Audits))
	}
	for i, a := range b.Audits {
		c.Audits[i] = a
		if a.Result == nil || a.Result.Targets == nil {
			continue
		}
		res := *a.Result
		targets := res.Targets
		res.Targets = nil
		c.Audits[i].Result = &res
		c.Audits[i].Targets = func(yield func(*audit.TargetResult) error) error {
			for _, t := range targets {
				if err := yield(&t); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return &c
}

// TestStreamedTargetsMatch: a run whose targets come from a TargetSource
// is written, byte for byte and with the same seal, as the same run with
// Result.Targets filled, and the file verifies with relaylock's verify and
// with the independent Python verifier.
func TestStreamedTargetsMatch(t *testing.T) {
	py, _ := exec.LookPath("python3")
	for name, b := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			want, err := Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			s := streamed(b)
			got, err := Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("streamed differs at byte %d:\n got …%s\nwant …%s", i, got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
			}
			if s.Integrity.Digest != b.Integrity.Digest || s.Integrity.Manifest != b.Integrity.Manifest {
				t.Fatalf("seal differs: %+v vs %+v", s.Integrity, b.Integrity)
			}
			p := filepath.Join(t.TempDir(), "ev.json")
			if err := Save(p, streamed(b)); err != nil {
				t.Fatal(err)
			}
			if saved, _ := os.ReadFile(p); !bytes.Equal(saved, want) {
				t.Fatal("Save of the streamed bundle wrote different bytes")
			}
			if _, r, err := CheckFile(p); err != nil || len(r.Problems) != 0 {
				t.Fatalf("streamed file does not verify: %v %q", err, r.Problems)
			}
			if in, err := Compute(streamed(b)); err != nil || in.Digest != b.Integrity.Digest {
				t.Fatalf("Compute of the streamed bundle: %+v, %v", in, err)
			}
			if py == "" {
				return
			}
			out, err := exec.Command(py, "testdata/verify.py", p).Output()
			if err != nil || !strings.Contains(string(out), "digest "+b.Integrity.Digest) {
				t.Fatalf("verify.py on the streamed file: %v\n%s", err, out)
			}
		})
	}
	if py == "" {
		t.Log("python3 not installed: the streamed files were not checked with testdata/verify.py")
	}
}

// TestStreamedTargetsErrors: a source's error aborts the write and names
// the target it stopped at; a run may not have targets both ways.
func TestStreamedTargetsErrors(t *testing.T) {
	b := bigBundle(3)
	s := streamed(b)
	boom := errors.New("journal read failed")
	inner := s.Audits[0].Targets
	s.Audits[0].Targets = func(yield func(*audit.TargetResult) error) error {
		n := 0
		return inner(func(t *audit.TargetResult) error {
			if n == 2 {
				return boom
			}
			n++
			return yield(t)
		})
	}
	p := filepath.Join(t.TempDir(), "ev.json")
	if err := Save(p, s); !errors.Is(err, boom) {
		t.Fatalf("Save = %v, want %v", err, boom)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("a failed streamed Save left a file")
	}
	both := streamed(b)
	both.Audits[0].Result.Targets = b.Audits[0].Result.Targets
	if _, err := Marshal(both); err == nil {
		t.Fatal("Marshal accepted a run with both Result.Targets and a TargetSource")
	}
}
