package main

// Issue 9 at the command line: the WinRM password never leaves the
// process (in any encoding), files holding host data are 0600, and
// operator input reaches PowerShell only as encoded data.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"

	//lint:ignore SA1019 the NT hash (MS-NLMP 3.3.1) is MD4: a leaked hash is as good as the password
	"golang.org/x/crypto/md4"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// secretForms returns what a leak of secret could look like: the text,
// its UTF-16LE form (what NTLM and PowerShell -EncodedCommand use), base64
// of both at each of the three alignments inside a longer base64 string,
// and the hex NT hash (pass-the-hash).
func secretForms(secret string) map[string][]byte {
	u := utf16.Encode([]rune(secret))
	le := make([]byte, 2*len(u))
	for i, c := range u {
		le[2*i], le[2*i+1] = byte(c), byte(c>>8)
	}
	forms := map[string][]byte{"plain": []byte(secret), "utf-16le": le}
	for name, raw := range map[string][]byte{"base64": []byte(secret), "base64(utf-16le)": le} {
		for k := 0; k < 3; k++ {
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), raw...))
			start := 0
			if k > 0 {
				start = 4 // the first group mixes in the k leading bytes
			}
			end := len(enc)
			if (k+len(raw))%3 != 0 {
				end -= 4 // the last group mixes in what follows
			}
			forms[fmt.Sprintf("%s@%d", name, k)] = []byte(enc[start:end])
		}
	}
	h := md4.New()
	h.Write(le)
	sum := h.Sum(nil)
	forms["nt-hash"] = []byte(hex.EncodeToString(sum))
	forms["NT-HASH"] = []byte(strings.ToUpper(hex.EncodeToString(sum)))
	return forms
}

// h9AssertNoSecret fails for every form of secret found in data.
func h9AssertNoSecret(t *testing.T, where string, data []byte, forms map[string][]byte) {
	t.Helper()
	for name, f := range forms {
		if bytes.Contains(data, f) {
			t.Errorf("%s contains the password (%s form)", where, name)
		}
	}
}

// h9ScanDir checks every file under dir for the secret (and PDFs through
// pdftotext), and on unix that every file is private (0600).
func h9ScanDir(t *testing.T, dir string, forms map[string][]byte, extra *regexp.Regexp) (files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h9AssertNoSecret(t, rel, b, forms)
		if extra != nil && extra.Match(b) {
			t.Errorf("%s contains a lab password", rel)
		}
		if strings.HasSuffix(p, ".pdf") {
			txt := pdfText(t, p)
			h9AssertNoSecret(t, rel+" (pdftotext)", []byte(txt), forms)
			if extra != nil && extra.MatchString(txt) {
				t.Errorf("%s (pdftotext) contains a lab password", rel)
			}
		}
		if runtime.GOOS != "windows" {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if perm := info.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s has mode %v: files holding host data must be 0600", rel, perm)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestNoSecretLeaksAnywhere runs every command that touches a host with a
// known password and looks for it, in every encoding, in all output, the
// lab's logs, the evidence, the backups and the PDF reports (bytes and
// text), over NTLM and over Kerberos (a real MIT KDC).
func TestNoSecretLeaksAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	needTool(t, "pdftotext")
	for _, auth := range []string{"ntlm", "kerberos"} {
		t.Run(auth, func(t *testing.T) { noSecretLeaksAnywhere(t, auth) })
	}
}

func noSecretLeaksAnywhere(t *testing.T, auth string) {
	const password = "Leak-Canary-Pw-7c2e91d4"
	// A second-hop password of another account (--hop-user): the lab's
	// directory refuses it, so the error path is covered too.
	const hopPassword = "Hop-Canary-Pw-51f0aa3e"
	forms := secretForms(password)
	for k, v := range secretForms(hopPassword) {
		forms["hop "+k] = v
	}
	host := lab.Exchange2016OpenCustomConnector()
	var h *labRun
	if auth == "kerberos" {
		h = startKerberosLabCLI(t, host, password)
		defer assertKerberosOnly(t, h)
	} else {
		h = startLabWith(t, host, password)
	}
	work := filepath.Join(h.dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	ev, bk, pdf := filepath.Join(work, "evidence.json"), filepath.Join(work, "backup.json"), filepath.Join(work, "report.pdf")
	ev2, pdf2 := filepath.Join(work, "fix-evidence.json"), filepath.Join(work, "fix-report.pdf")
	pwFile := filepath.Join(h.dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hopFile := filepath.Join(h.dir, "hop-pw")
	if err := os.WriteFile(hopFile, []byte(hopPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, smtpPort, _ := net.SplitHostPort(h.lab.SMTPAddr)
	winrm := h.winrmArgs()
	fixWinRM := h.fixWinRMArgs()
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	steps := []struct {
		name     string
		envPass  string
		args     []string
		wantCode int
	}{
		{"audit", password, []string{"audit", h.lab.SMTPAddr, "--mail-domain", h.lab.Domain, "--timeout", "10s", "--evidence", ev}, exitOpen},
		{"inspect", password, cat([]string{"inspect", "--evidence", ev}, winrm), exitOpen},
		{"remediate", password, cat([]string{"remediate", "--allow", "192.0.2.25", "--yes", "--restart", "never",
			"--ticket", "CHG-1", "--evidence", ev, "--backup", bk}, winrm, h.probeArgs()), exitOK},
		{"rollback", password, cat([]string{"rollback", "--backup", bk, "--evidence", ev}, winrm, h.probeArgs()), exitOpen},
		{"report", "", []string{"report", "--evidence", ev, "-o", pdf}, exitOK},
		{"verify", "", []string{"verify", ev}, exitOK},
		// fix, with the password from a file this time.
		{"fix", "", cat([]string{"fix", h.lab.Domain, "--dns-server", h.lab.DNSAddr, "--ports", smtpPort, "--timeout", "10s",
			"--allow", "192.0.2.25", "--restart", "never", "--yes", "--winrm-password-file", pwFile,
			"--evidence", ev2, "-o", pdf2}, fixWinRM), exitOK},
		// The second hop with another account, refused by AD: the
		// password went to the host as data only, and nothing is read.
		{"inspect with a refused --hop-user", password, cat([]string{"inspect", "--hop-user", `CORP\other`, "--hop-password-file", hopFile}, winrm), exitError},
		// An error path: the WinRM host fails every command.
		{"inspect against a failing host", password, cat([]string{"inspect"}, winrm), exitError},
	}
	for _, st := range steps {
		if st.name == "inspect against a failing host" {
			h.lab.Faults.Add(lab.FaultRule{Kind: lab.FaultInternalError, Action: "Command"})
		}
		code, out, errOut := runCLI(t, st.envPass, st.args...)
		if code != st.wantCode {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", st.name, code, st.wantCode, out, errOut)
		}
		h9AssertNoSecret(t, st.name+" stdout", []byte(out), forms)
		h9AssertNoSecret(t, st.name+" stderr", []byte(errOut), forms)
	}
	h.lab.Faults.Reset()
	// The second-hop credential travelled with the Exchange scripts (the
	// path under test) and the lab recorded no secret parameter.
	explicit := 0
	for _, r := range h.lab.WinRM.Runs() {
		if r.ExplicitHop {
			explicit++
		}
		for k, v := range r.Params {
			h9AssertNoSecret(t, "lab run "+r.Script+" parameter "+k, []byte(k+"="+v), forms)
		}
	}
	if explicit == 0 {
		t.Error("no script carried an explicit second-hop credential: the new path was not exercised")
	}
	logs := h.logText()
	if !strings.Contains(logs, "detect") {
		t.Errorf("the lab logged no command run; the log check proves nothing:\n%s", logs)
	}
	h9AssertNoSecret(t, "lab log", []byte(logs), forms)

	// Every file relaylock wrote (evidence, backups, reports, locks).
	if n := h9ScanDir(t, work, forms, nil); n < 5 {
		entries, _ := os.ReadDir(work)
		t.Errorf("only %d files written (%v): evidence, backups and reports expected", n, entries)
	}
	for _, f := range []string{ev, bk, pdf, ev2, pdf2} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("expected file: %v", err)
		}
	}
	// The base64 forms are found at every alignment: the check is live.
	le := forms["utf-16le"]
	for k := 0; k < 3; k++ {
		blob := base64.StdEncoding.EncodeToString(append(append(make([]byte, k), []byte(password)...), "tail"...))
		if !bytes.Contains([]byte(blob), forms[fmt.Sprintf("base64@%d", k)]) {
			t.Fatalf("base64 at alignment %d not detected", k)
		}
		blob = base64.StdEncoding.EncodeToString(append(append(make([]byte, k), le...), "tail"...))
		if !bytes.Contains([]byte(blob), forms[fmt.Sprintf("base64(utf-16le)@%d", k)]) {
			t.Fatalf("base64(utf-16le) at alignment %d not detected", k)
		}
	}
}

// TestDemoLeaksNoSecret runs the demo (which makes its own random lab
// password, "Lab-" and 24 hex digits) and checks its output and every file
// it writes, the CA file included, for the password and for mode 0600.
func TestDemoLeaksNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	needTool(t, "pdftotext")
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, "", "demo", "--platform", "exchange2016", "--out", out)
	if code != exitOK {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	re := regexp.MustCompile(`Lab-[0-9a-f]{24}`)
	if re.MatchString(stdout + stderr) {
		t.Error("the demo printed its lab password")
	}
	if n := h9ScanDir(t, out, nil, re); n < 3 {
		t.Errorf("demo wrote %d files", n)
	}
}

// TestOperatorInputReachesPowerShellOnlyAsData feeds hostile strings
// through every operator input that can reach a host (allow list,
// connector name, ticket, client name) and proves from the lab's WinRM
// log that no such input ever ran as code: every command is
// psframe.CommandLine() running one of relaylock's embedded scripts,
// byte for byte (the lab identifies scripts by their exact text), and a
// hostile string is either a decoded parameter value or was refused
// before anything changed.
func TestOperatorInputReachesPowerShellOnlyAsData(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const pw = "Inject-Test-Pw-1"
	hostile := []string{
		`x'; Remove-Item C:/ -Recurse -Force; '`,
		`x"; Stop-Service MSExchangeTransport; "`,
		"$(Set-Content C:/pwned.txt owned)",
		"`$(whoami)` and `n backtick",
		"a; b & c | d",
	}
	checkRuns := func(t *testing.T, h *labRun) []lab.Run {
		t.Helper()
		runs := h.lab.WinRM.Runs()
		for _, r := range runs {
			if r.CommandLine != psframe.CommandLine() {
				t.Errorf("command line %q is not the fixed bootstrap", r.CommandLine)
			}
			if r.Script == "" {
				t.Errorf("a command ran a script that is not one of relaylock's embedded scripts (params %q)", r.Params)
			}
		}
		return runs
	}

	t.Run("allow list", func(t *testing.T) {
		h := startLabWith(t, lab.NewIIS(lab.IISAllExceptEmpty), pw)
		before := stateOf(t, h.lab.Host)
		for _, s := range append(hostile, "192.0.2.1\nGet-Process", "192.0.2.1;whoami", "192.0.2.1/24'") {
			code, _, errOut := runCLI(t, pw, append(append([]string{"remediate", "--allow", s, "--yes", "--restart", "never",
				"--evidence", filepath.Join(h.dir, "ev.json")}, h.winrmArgs()...), h.probeArgs()...)...)
			if code != exitUsage || !strings.Contains(errOut, "--allow") {
				t.Errorf("--allow %q: exit %d, want %d naming --allow; stderr:\n%s", s, code, exitUsage, errOut)
			}
		}
		if runs := checkRuns(t, h); len(runs) != 0 {
			t.Errorf("%d commands ran although every allow list was refused", len(runs))
		}
		if stateOf(t, h.lab.Host) != before {
			t.Error("the host changed")
		}
	})

	t.Run("connector name, ticket and client", func(t *testing.T) {
		for i, s := range hostile {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				host := lab.Exchange2016OpenCustomConnector()
				h := startLabWith(t, host, pw)
				ev := filepath.Join(h.dir, "ev.json")
				code, out, errOut := runCLI(t, pw, append(append([]string{"remediate", "--allow", "192.0.2.25", "--yes", "--restart", "never",
					"--connector-name", s, "--ticket", s, "--client", s, "--evidence", ev,
					"--backup", filepath.Join(h.dir, "bk.json")}, h.winrmArgs()...), h.probeArgs()...)...)
				if code != exitOK {
					t.Fatalf("remediate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
				}
				runs := checkRuns(t, h)
				asParam := false
				for _, r := range runs {
					for _, v := range r.Params {
						asParam = asParam || strings.Contains(v, s)
					}
				}
				if !asParam {
					t.Errorf("the connector name never reached the host as a parameter (%d runs)", len(runs))
				}
				// The host holds a connector with exactly that name: the
				// string was stored as data, not evaluated.
				found := false
				for _, c := range host.State().Connectors {
					found = found || c.Name == s
				}
				if !found {
					t.Errorf("no receive connector named %q on the host", s)
				}
			})
		}
	})

	t.Run("connector names Exchange cannot store are refused before any change", func(t *testing.T) {
		for _, s := range []string{"Relay\r\nRemove-Item x", "Relay\nGet-Process", `x'; Remove-Item C:\ -Recurse; '`, "Relay\x00"} {
			host := lab.Exchange2016OpenCustomConnector()
			h := startLabWith(t, host, pw)
			before := stateOf(t, host)
			code, _, errOut := runCLI(t, pw, append(append([]string{"remediate", "--allow", "192.0.2.25", "--yes", "--restart", "never",
				"--connector-name", s, "--evidence", filepath.Join(h.dir, "ev.json")}, h.winrmArgs()...), h.probeArgs()...)...)
			if code != exitUsage || !strings.Contains(errOut, "connector name") {
				t.Errorf("--connector-name %q: exit %d, want %d; stderr:\n%s", s, code, exitUsage, errOut)
			}
			// Refused statically: not even the read ran.
			if runs := checkRuns(t, h); len(runs) != 0 {
				t.Errorf("--connector-name %q: %d commands ran before the refusal", s, len(runs))
			}
			if stateOf(t, host) != before {
				t.Errorf("--connector-name %q: the host changed", s)
			}
		}
	})
}
