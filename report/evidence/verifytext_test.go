package evidence

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

// shiftFixture saves a bundle with three change records and returns its
// path and bytes.
func shiftFixture(t *testing.T) (string, []byte) {
	t.Helper()
	b := sample()
	b.Changes = []remediate.ChangeRecord{
		{ID: "CHG-1", Host: "mx.example.com", Result: "applied", Start: t0, End: t0},
		{ID: "CHG-2", Host: "mx.example.com", Result: "rolled-back", Start: t0, End: t0},
		{ID: "CHG-3", Host: "mx.example.com", Result: "applied", Start: t0, End: t0},
	}
	p := filepath.Join(t.TempDir(), "e.json")
	if err := Save(p, b); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	return p, data
}

// editChanges rewrites the changes array of an evidence file.
func editChanges(t *testing.T, p string, data []byte, edit func([]json.RawMessage) []json.RawMessage) {
	t.Helper()
	var m map[string]json.RawMessage
	json.Unmarshal(data, &m)
	var ch []json.RawMessage
	json.Unmarshal(m["changes"], &ch)
	m["changes"], _ = json.Marshal(edit(ch))
	out, _ := json.Marshal(m)
	os.WriteFile(p, out, 0o600)
}

// TestCheckNamesShiftedRecords: a record deleted from (or inserted into)
// a list is named once, with the later records said to have moved,
// instead of one "content changed" line per later record (tryout 10);
// Mismatched still lists every section whose hash no longer matches by
// name, as an independent verifier sees it.
func TestCheckNamesShiftedRecords(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func([]json.RawMessage) []json.RawMessage
		problem    string
		mismatched []string
	}{
		{"first deleted", func(c []json.RawMessage) []json.RawMessage { return c[1:] },
			"changes[0] is missing; the later records moved up",
			[]string{"changes[0]", "changes[1]", "changes[2]"}},
		{"middle deleted", func(c []json.RawMessage) []json.RawMessage { return []json.RawMessage{c[0], c[2]} },
			"changes[1] is missing; the later records moved up",
			[]string{"changes[1]", "changes[2]"}},
		{"inserted first", func(c []json.RawMessage) []json.RawMessage { return append([]json.RawMessage{c[1]}, c...) },
			"changes[0] (change CHG-2 on mx.example.com) is not in the seal (inserted); the later records moved down",
			[]string{"changes[0]", "changes[1]", "changes[2]", "changes[3]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, data := shiftFixture(t)
			editChanges(t, p, data, tc.edit)
			_, r, err := CheckFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], tc.problem) {
				t.Fatalf("problems %q, want one: %q", r.Problems, tc.problem)
			}
			got := slices.Clone(r.Mismatched)
			slices.Sort(got)
			if !slices.Equal(got, tc.mismatched) {
				t.Errorf("Mismatched %q, want %q", got, tc.mismatched)
			}
			if got := (&ModifiedError{Path: p, Result: r}).Error(); !strings.Contains(got, "(1 problem,") {
				t.Errorf("ModifiedError: %s", got)
			}
		})
	}
}

// TestCheckReportAdvice: "render the report again" is advice only for
// evidence that verifies and was added to after the report; evidence that
// was tampered with gets no such advice. The result carries the sealed
// digest beside the recomputed one.
func TestCheckReportAdvice(t *testing.T) {
	p, _ := shiftFixture(t)
	b, _ := Load(p)
	b.Artifacts = []Artifact{{Name: "r.pdf", Path: "r.pdf", Kind: "report", EvidenceDigest: strings.Repeat("0", 64)}}
	if err := Save(p, b); err != nil {
		t.Fatal(err)
	}
	_, r, err := CheckFile(p)
	if err != nil || len(r.Problems) != 0 {
		t.Fatal(err, r.Problems)
	}
	if n := strings.Join(r.Notes, "\n"); !strings.Contains(n, "render the report again") {
		t.Errorf("grown evidence: notes %q", r.Notes)
	}
	if r.SealedDigest != r.Digest {
		t.Errorf("sealed digest %s, recomputed %s", r.SealedDigest, r.Digest)
	}
	data, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(data), `"CHG-2"`, `"CHG-9"`, 1)), 0o600)
	_, r, err = CheckFile(p)
	if err != nil || len(r.Problems) == 0 {
		t.Fatal(err, r.Problems)
	}
	if n := strings.Join(r.Notes, "\n"); strings.Contains(n, "render the report again") || !strings.Contains(n, "does not match its seal") {
		t.Errorf("tampered evidence: notes %q", r.Notes)
	}
	if r.SealedDigest == r.Digest || r.SealedDigest == "" {
		t.Errorf("tampered: sealed digest %s, recomputed %s", r.SealedDigest, r.Digest)
	}
	for _, l := range append(r.OK, r.Problems...) {
		if strings.Contains(l, "]") && strings.Contains(l, " sha256 ") {
			t.Errorf("section line not labelled as a section hash: %q", l)
		}
	}
}

// TestSignatureOfAnotherFile: a signature copied from another evidence
// file is named as such, with both digests.
func TestSignatureOfAnotherFile(t *testing.T) {
	pa, _ := shiftFixture(t)
	pb, _ := shiftFixture(t)
	b, _ := Load(pb)
	b.Engagement.Client = "Other Client"
	if err := Save(pb, b); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "k")
	if _, err := GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(pb, "", key); err != nil {
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(SignaturePath(pb))
	os.WriteFile(SignaturePath(pa), sig, 0o600)
	_, ra, _ := CheckFile(pa)
	_, rb, _ := CheckFile(pb)
	c, err := VerifySignatureDigest(pa, ra.Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.Problems, "\n")
	if !strings.Contains(all, "another evidence file") || !strings.Contains(all, ra.Digest) || !strings.Contains(all, rb.Digest) {
		t.Errorf("problems %q", c.Problems)
	}
}
