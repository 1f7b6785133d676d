package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
)

var updateFixtures = flag.Bool("update-fixtures", false, "rewrite testdata/jcs.evidence.json")

// jcsFixture is the committed RFC 8785 fixture's content: hostile strings
// (<, >, &, U+2028, control characters, characters above U+FFFF in
// names, where UTF-16 order differs from code point order) and numbers
// written in every way JSON allows, inside raw sub-documents, which keep
// the literal text.
func jcsFixture() *Bundle {
	b := New(t0)
	b.ID = "RL-20260506-0badc0de"
	b.Updated = t0.Add(time.Hour)
	b.Engagement = Engagement{Client: "Müller & Söhne <GmbH>", Authorization: "AUTH-1", Operator: "alice", Scope: []string{"example.com"}, Ticket: "CHG-1"}
	b.Tool = Tool{Name: "relaylock", Version: "1.0.0", Commit: "abc123", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"}
	res := &audit.Result{Start: t0, End: t0.Add(time.Second), Verdict: audit.VerdictOpen,
		Options: audit.OptionsSummary{From: "probe@example.net", To: "x@example.net", Depth: "data", Ports: []int{25, 587}},
		Targets: []audit.TargetResult{{Target: "example.com", Kind: "domain", Verdict: audit.VerdictOpen,
			Endpoints: []audit.EndpointResult{{MXHost: "mx.example.com", Address: "192.0.2.1", Port: 25, TLS: "none", Verdict: audit.VerdictOpen,
				Banner: "220 mx <ESMTP> & \u2028 \u2029 ready\t\x01\x7f 😀 \ufb33",
				Transcripts: []audit.Transcript{{Conn: 0, Local: "127.0.0.1:40000", Remote: "192.0.2.1:25", Start: t0, End: t0,
					Lines: []audit.TranscriptLine{{T: t0, Dir: "C", Text: "MAIL FROM:<probe@example.net>"}, {T: t0, Dir: "S", Text: "250 2.1.0 <ok> \"quoted\" back\\slash"}}}}}}}}}
	b.Audits = []AuditRun{{Purpose: "audit", Result: res}}
	state := json.RawMessage(`{"ratio": 1.50, "big": 1E21, "bigger": 1.5e300, "small": 0.0000001, "tiny": 0.000001, "neg": -0.0, "int": 100e-2, "zero": 0, "max": 9007199254740992, "list": [1, 2.0, -3e0], "empty": {}, "none": [], "f": false, "n": null, "s": ""}`)
	b.Inspections = []remediate.Inspection{{Host: "mx.example.com", Time: t0, Platform: remediate.PlatformIIS,
		Settings: []remediate.Setting{{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "all except: (none)"}},
		State:    state,
		Runs: []remediate.ScriptRun{{Script: "iis-read", SHA256: strings.Repeat("ab", 32), Start: t0, End: t0,
			Params: map[string]string{"\U0001F600k": "emoji name", "\uff01k": "fullwidth name", "a": "<&>", "b": ""}, Stdout: "line 1\r\nline 2\n"}}}}
	b.Plans = []remediate.Plan{{Host: "mx.example.com", Platform: remediate.PlatformIIS, Desired: json.RawMessage(`{"relayiplist":"only: 10.0.0.1","relayforauth":-1,"w":1e-7}`),
		Changes: []remediate.Change{{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (none)", New: "only: 10.0.0.1", Why: "close the relay"}}}}
	b.Changes = []remediate.ChangeRecord{{ID: "CHG-1", Kind: "remediate", Host: "mx.example.com", Platform: remediate.PlatformIIS, Result: "applied", Start: t0, End: t0,
		Scripts: []string{strings.Repeat("cd", 32)}, Runs: []remediate.ScriptRun{{Script: "iis-write", SHA256: strings.Repeat("cd", 32), Start: t0, End: t0, Params: map[string]string{"relayiplist": "only: 10.0.0.1"}}}}}
	b.Artifacts = []Artifact{{Name: "report.pdf", Path: "report.pdf", SHA256: strings.Repeat("ef", 32), Size: 1234, Created: t0, Kind: "report"}}
	b.Log = []LogEntry{{Time: t0, Step: "audit", Message: "probed example.com: open"}}
	return b
}

// TestJCSFixture: the committed RFC 8785 fixture is what this build
// writes for jcsFixture, and it verifies.
func TestJCSFixture(t *testing.T) {
	const p = "testdata/jcs.evidence.json"
	want, err := Marshal(jcsFixture())
	if err != nil {
		t.Fatal(err)
	}
	if *updateFixtures {
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what this build writes (%v); rerun with -update-fixtures if the change is intended", p, err)
	}
	for _, f := range []string{p, "testdata/legacy.evidence.json", "../testdata/fixture.evidence.json"} {
		if _, r, err := CheckFile(f); err != nil || len(r.Problems) != 0 {
			t.Errorf("%s: %v %q", f, err, r.Problems)
		}
	}
	// The digest the report computes from the decoded bundle is the one
	// verify computes from the bytes, for both algorithms.
	for _, f := range []string{p, "testdata/legacy.evidence.json"} {
		b, r, err := LoadVerified(f)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := b.Digest(); err != nil || d != r.Digest || d != b.Integrity.Digest {
			t.Errorf("%s: decoded digest %s, file digest %s, sealed %s (%v)", f, d, r.Digest, b.Integrity.Digest, err)
		}
	}
	// The file written before RFC 8785 keeps its seal, and its digest, when added to.
	b, _ := Load("testdata/legacy.evidence.json")
	if b.Integrity.Algorithm != AlgLegacy {
		t.Fatalf("legacy fixture sealed with %s", b.Integrity.Algorithm)
	}
	data, _ := os.ReadFile("testdata/legacy.evidence.json")
	cp := filepath.Join(t.TempDir(), "legacy.json")
	os.WriteFile(cp, data, 0o600)
	if err := Update(context.Background(), cp, func(b *Bundle) error {
		b.Log = append(b.Log, LogEntry{Time: t0, Step: "report", Message: "added"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after, r, err := LoadVerified(cp)
	if err != nil || after.Integrity.Algorithm != AlgLegacy || r.Digest != b.Integrity.Digest {
		t.Errorf("legacy file after an update: %v, algorithm %s, digest %s (was %s)", err, after.Integrity.Algorithm, r.Digest, b.Integrity.Digest)
	}
}

// pyVerdict is what verify.py said about a file.
type pyVerdict struct {
	malformed bool
	digest    string
	bad       []string
}

// TestPythonVerifierAgrees: the independent verifier in
// testdata/verify.py, written from the README alone, agrees with
// relaylock's verify on every fixture, good and tampered (issue 15 item
// 2b).
func TestPythonVerifierAgrees(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is required in CI")
		}
		t.Skip("python3 not installed: the independent verifier (testdata/verify.py) was not run")
	}
	dir := t.TempDir()
	type variant struct {
		name string
		edit func(data []byte) []byte
	}
	replace := func(old, new string) func([]byte) []byte {
		return func(d []byte) []byte { return bytes.Replace(d, []byte(old), []byte(new), 1) }
	}
	variants := []variant{
		{"as written", func(d []byte) []byte { return d }},
		{"compact", func(d []byte) []byte { var b bytes.Buffer; json.Compact(&b, d); return b.Bytes() }},
		{"re-indented", func(d []byte) []byte { var b bytes.Buffer; json.Indent(&b, d, "", "\t"); return b.Bytes() }},
		{"escaped differently", replace(`"purpose": "audit"`, `"purpose": "\u0061udit"`)},
		{"operator changed", replace(`"operator": "alice"`, `"operator": "mallory"`)},
		{"case-variant duplicate", replace(`"purpose": "audit",`, `"purpose": "audit", "Result": null,`)},
		{"zero-valued member added", replace(`"purpose": "audit",`, `"purpose": "audit", "new_flag": false, "new_list": [],`)},
		{"case-variant key alone", replace(`"purpose": "audit",`, `"Purpose": "audit",`)},
		{"digest edited", func(d []byte) []byte {
			i := bytes.Index(d, []byte(`"digest": "`)) + len(`"digest": "`)
			out := bytes.Clone(d)
			out[i] ^= 1
			return out
		}},
		{"inexact integer", replace(`"port": 25`, `"port": 9007199254740993`)},
		{"lone surrogate", replace(`"operator": "alice"`, `"operator": "al\udc00ice"`)},
		{"no seal", func(d []byte) []byte {
			var m map[string]json.RawMessage
			json.Unmarshal(d, &m)
			delete(m, "integrity")
			out, _ := json.Marshal(m)
			return out
		}},
		{"top-level member added", replace(`"schema": "relaylock.evidence/v1",`, `"schema": "relaylock.evidence/v1", "approved_by": "CISO",`)},
		{"integrity member added", replace(`"integrity": {`, `"integrity": {"comment": "approved",`)},
		{"sealed section entry member added", replace(`"name": "header",`, `"name": "header", "note": "fine",`)},
		{"case-variant top-level member", replace(`"id": "RL-`, `"ID": "RL-`)},
		{"first audit removed (the later ones move up)", func(d []byte) []byte {
			var m map[string]json.RawMessage
			json.Unmarshal(d, &m)
			var a []json.RawMessage
			json.Unmarshal(m["audits"], &a)
			m["audits"], _ = json.Marshal(a[1:])
			out, _ := json.Marshal(m)
			return out
		}},
		{"last change removed", func(d []byte) []byte {
			var m map[string]json.RawMessage
			json.Unmarshal(d, &m)
			var ch []json.RawMessage
			json.Unmarshal(m["changes"], &ch)
			m["changes"], _ = json.Marshal(ch[:len(ch)-1])
			out, _ := json.Marshal(m)
			return out
		}},
	}
	// Edits that add members no hash covers: both must refuse them.
	uncovered := map[string]bool{"top-level member added": true, "integrity member added": true,
		"sealed section entry member added": true, "case-variant top-level member": true}
	fixtures := map[string][]string{
		"testdata/jcs.evidence.json":    {"number literal", "1.50", "1.5"},
		"testdata/legacy.evidence.json": nil,
		// Members no hash covers: neither verifier may call it verified.
		"testdata/tampered/uncovered-members.json": nil,
	}
	for fixture, numberEdit := range fixtures {
		data, err := os.ReadFile(fixture)
		if err != nil {
			t.Fatal(err)
		}
		vs := variants
		if numberEdit != nil {
			vs = append(vs, variant{numberEdit[0], replace(numberEdit[1], numberEdit[2])},
				variant{"number value", replace(`"max": 9007199254740992`, `"max": 9007199254740991`)})
		}
		for _, v := range vs {
			t.Run(filepath.Base(fixture)+"/"+v.name, func(t *testing.T) {
				edited := v.edit(data)
				if v.name != "as written" && v.name != "compact" && v.name != "re-indented" && bytes.Equal(edited, data) {
					t.Fatal("the edit changed nothing")
				}
				p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".json")
				os.WriteFile(p, edited, 0o600)
				goV := goVerdict(t, p)
				out, err := exec.Command(py, "testdata/verify.py", p).Output()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("verify.py: %v", err)
				}
				pyV := pyVerdict{}
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					switch k, val, _ := strings.Cut(l, " "); k {
					case "MALFORMED":
						pyV.malformed = true
					case "digest":
						pyV.digest = val
					case "MISMATCH":
						pyV.bad = append(pyV.bad, val)
					}
				}
				pyOK := err == nil
				goOK := !goV.malformed && len(goV.bad) == 0
				if (uncovered[v.name] || fixture == "testdata/tampered/uncovered-members.json") && (pyOK || goOK) {
					t.Fatalf("a member no hash covers passed: verify.py ok=%v, relaylock ok=%v\npython: %s\nrelaylock: %+v", pyOK, goOK, out, goV)
				}
				if pyOK != goOK {
					t.Fatalf("verify.py ok=%v, relaylock ok=%v\npython: %s\nrelaylock: %+v", pyOK, goOK, out, goV)
				}
				if goV.malformed || pyV.malformed {
					return // both refuse it (one as malformed, the other may see changed hashes)
				}
				slices.Sort(goV.bad)
				slices.Sort(pyV.bad)
				if (goV.digest != pyV.digest && goV.digest != "") || !slices.Equal(goV.bad, pyV.bad) {
					t.Fatalf("disagree:\npython:    digest %s mismatches %q\nrelaylock: digest %s mismatches %q", pyV.digest, pyV.bad, goV.digest, goV.bad)
				}
			})
		}
	}
}

// goVerdict is relaylock verify's view of p.
func goVerdict(t *testing.T, p string) pyVerdict {
	t.Helper()
	_, r, err := CheckFile(p)
	if err != nil {
		return pyVerdict{malformed: true}
	}
	v := pyVerdict{digest: r.Digest, bad: slices.Clone(r.Mismatched)}
	if slices.Contains(v.bad, "integrity") {
		v.digest = ""
	}
	return v
}
