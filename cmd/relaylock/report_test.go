package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/report"
	"github.com/relaylock/relaylock/report/evidence"
)

// copyFixture copies the report package's fixture evidence (an IIS and an
// Exchange host remediated and re-tested) into dir.
func copyFixture(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile("../../report/testdata/fixture.evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "evidence.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeygenReportVerify(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	key := filepath.Join(dir, "signing.key")
	pdf := filepath.Join(dir, "report.pdf")

	code, out, stderr := runCLI(t, "", "keygen", "-o", key)
	if code != 0 || !strings.Contains(out, "fingerprint: SHA256:") {
		t.Fatalf("keygen: %d %q %q", code, out, stderr)
	}
	if code, _, _ := runCLI(t, "", "keygen", "-o", key); code != exitError {
		t.Errorf("keygen over an existing key: exit %d", code)
	}
	pub, err := evidence.LoadPublicKey(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fp := evidence.Fingerprint(pub)

	code, out, stderr = runCLI(t, "", "report", "--evidence", ev, "-o", pdf, "--sign-key", key, "--client", "Example Industries GmbH")
	if code != 0 {
		t.Fatalf("report: %d %q %q", code, out, stderr)
	}
	if !strings.Contains(out, fp) {
		t.Errorf("report did not print the key fingerprint:\n%s", out)
	}
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Artifacts) != 1 || b.Artifacts[0].Kind != "report" || b.Artifacts[0].Name != "report.pdf" {
		t.Fatalf("artifacts %+v", b.Artifacts)
	}
	// The recorded report can be re-rendered from the final evidence,
	// byte for byte.
	var again bytes.Buffer
	if err := report.Render(&again, b, report.Options{Client: "Example Industries GmbH", SigningKey: fp}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(pdf); !bytes.Equal(got, again.Bytes()) {
		t.Error("re-rendering the final evidence gave different bytes")
	}

	code, out, stderr = runCLI(t, "", "verify", "--pubkey", key+".pub", ev)
	if code != 0 || !strings.Contains(out, "verified") || !strings.Contains(out, "key:      "+fp) {
		t.Fatalf("verify: %d\n%s%s", code, out, stderr)
	}

	// Tamper with one field: verify names the section and the signature.
	data, _ := os.ReadFile(ev)
	os.WriteFile(ev, bytes.Replace(data, []byte(`"operator": "alice"`), []byte(`"operator": "mallory"`), 1), 0o600)
	code, out, _ = runCLI(t, "", "verify", ev)
	if code != exitError {
		t.Errorf("verify of a tampered file: exit %d", code)
	}
	for _, want := range []string{"MISMATCH  header", "MISMATCH  signature: evidence file changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	// A changed report is named too.
	os.WriteFile(ev, data, 0o600)
	os.WriteFile(pdf, append(again.Bytes(), '\n'), 0o600)
	code, out, _ = runCLI(t, "", "verify", ev)
	if code != exitError || !strings.Contains(out, "MISMATCH  artifact") {
		t.Errorf("changed report: exit %d\n%s", code, out)
	}
}

func TestReportUsage(t *testing.T) {
	dir := t.TempDir()
	ev := copyFixture(t, dir)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"stdout", []string{"report", "--evidence", ev, "-o", "-"}, exitUsage},
		{"no output", []string{"report", "--evidence", ev}, exitUsage},
		{"no evidence", []string{"report", "-o", filepath.Join(dir, "r.pdf")}, exitUsage},
		{"over evidence", []string{"report", "--evidence", ev, "-o", ev}, exitUsage},
		{"missing evidence", []string{"report", "--evidence", filepath.Join(dir, "nope.json"), "-o", filepath.Join(dir, "r.pdf")}, exitError},
		{"verify no file", []string{"verify"}, exitUsage},
		{"verify malformed", []string{"verify", filepath.Join(dir, "bad.json")}, exitError},
		{"keygen no output", []string{"keygen"}, exitUsage},
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o600)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, stderr)
			}
		})
	}
}
