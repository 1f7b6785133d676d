package main

// Printed commands work as printed (issue 15 item 7), and the console
// tells the story the report tells (item 10).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// splitShellWords splits a command line as a POSIX shell does (quotes and
// backslashes; no expansion). A shell-words parser of our own, so the test
// does not trust the quoting code it checks.
func splitShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`*?[#~", ch) >= 0 && !inWord:
			return nil, fmt.Errorf("shell metacharacter %q unquoted", ch)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// printedRollback returns the words of the "rollback command:" line.
func printedRollback(t *testing.T, stdout, password string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^rollback command: (.*)$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no rollback command printed:\n%s", stdout)
	}
	if strings.Contains(m[1], password) {
		t.Fatalf("the printed rollback command contains the password: %s", m[1])
	}
	words, err := splitShellWords(m[1])
	if err != nil || len(words) < 2 || words[0] != "relaylock" || words[1] != "rollback" {
		t.Fatalf("printed command %q does not split into a relaylock rollback: %q, %v", m[1], words, err)
	}
	return words[1:]
}

// TestPrintedRollbackWorks runs fix and remediate against the lab, then
// the rollback command they print, exactly as printed (split as a shell
// would), with nothing added: it must restore the host and re-test the
// endpoint probed before the change (the lab's SMTP port, not 25).
func TestPrintedRollbackWorks(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, tc := range []struct {
		name   string
		sealed bool
		cmd    func(lr *labRun, ev string) []string
	}{
		{"fix", false, func(lr *labRun, ev string) []string {
			_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
			return []string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort,
				"--winrm-host", lr.lab.MXHost + "=" + net.JoinHostPort(lr.lab.WinRMHost, fmt.Sprint(lr.lab.WinRMPort)),
				"--winrm-user", lr.lab.User, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName,
				"--allow", "192.0.2.10", "--no-loopback", "--restart", "never", "--yes", "--evidence", ev,
				"--backup", filepath.Join(lr.dir, "backup dir", "b.json"), "-o", filepath.Join(lr.dir, "r.pdf"), "--timeout", "10s"}
		}},
		{"remediate/sealed-http", true, func(lr *labRun, ev string) []string {
			return append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
				"--evidence", ev, "--backup", filepath.Join(lr.dir, "backup dir", "b.json"), "--ticket", "CHG 42"}, lr.winrmArgs()...), lr.probeArgs()...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := lab.NewIIS(lab.IISAllExceptEmpty)
			lr := startLabConfig(t, lab.Config{Host: h, Password: labTestPassword, SealedHTTP: tc.sealed})
			if err := os.Mkdir(filepath.Join(lr.dir, "backup dir"), 0o700); err != nil {
				t.Fatal(err)
			}
			original := stateOf(t, h)
			ev := filepath.Join(lr.dir, "ev.json")
			code, out, errOut := lr.run(labTestPassword, tc.cmd(lr, ev)...)
			if code != exitOK {
				t.Fatalf("%s: exit %d\n%s\n%s", tc.name, code, out, errOut)
			}
			if stateOf(t, h) == original {
				t.Fatal("nothing changed on the lab host")
			}
			words := printedRollback(t, out, labTestPassword)
			code, out, errOut = lr.run(labTestPassword, words...)
			if code != exitOpen {
				t.Fatalf("printed rollback %q: exit %d, want %d (restored: open again)\nstdout:\n%s\nstderr:\n%s", words, code, exitOpen, out, errOut)
			}
			if stateOf(t, h) != original {
				t.Error("the printed rollback did not restore the original state")
			}
			b, err := evidence.Load(ev)
			if err != nil {
				t.Fatal(err)
			}
			last := b.Audits[len(b.Audits)-1]
			if last.Purpose != "rollback-retest" {
				t.Fatalf("last audit is %q, want the rollback re-test", last.Purpose)
			}
			var eps []string
			for _, tg := range last.Result.Targets {
				for _, ep := range tg.Endpoints {
					eps = append(eps, net.JoinHostPort(ep.Address, fmt.Sprint(ep.Port)))
				}
			}
			if len(eps) == 0 || eps[0] != lr.lab.SMTPAddr {
				t.Errorf("rollback re-tested %q, want the lab's SMTP endpoint %s", eps, lr.lab.SMTPAddr)
			}
			if b.Changes[len(b.Changes)-1].Kind != "rollback" {
				t.Errorf("no rollback change recorded")
			}
		})
	}
}

// TestRollbackRetestsBackupEndpoints: a rollback given only the backup and
// the connection re-tests the endpoints the backup names, and an
// inconclusive re-test says why.
func TestRollbackRetestsBackupEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	lr := startLab(t, h)
	bk := filepath.Join(lr.dir, "b.json")
	rem := append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never", "--backup", bk},
		lr.winrmArgs()...), lr.probeArgs()...)
	if code, out, errOut := lr.run(labTestPassword, rem...); code != exitOK {
		t.Fatalf("remediate: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := lr.run(labTestPassword, append([]string{"rollback", "--backup", bk}, lr.winrmArgs()...)...)
	if code != exitOpen || !strings.Contains(out, "Re-test after the restore: open") || !strings.Contains(out, lr.lab.SMTPAddr) {
		t.Fatalf("rollback: exit %d, want %d, re-testing %s\nstdout:\n%s\nstderr:\n%s", code, exitOpen, lr.lab.SMTPAddr, out, errOut)
	}
	if !strings.Contains(errOut, "from the backup") {
		t.Errorf("rollback does not say where its re-test endpoints came from:\n%s", errOut)
	}
	// Remediate again, then roll back re-testing a port nobody listens
	// on: inconclusive, with the reason.
	if code, out, errOut := lr.run(labTestPassword, append(rem[:len(rem):len(rem)], "--backup", bk+".2")...); code != exitOK {
		t.Fatalf("remediate again: exit %d\n%s\n%s", code, out, errOut)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	_, out, errOut = lr.run(labTestPassword, append([]string{"rollback", "--backup", bk + ".2", "--smtp-target", dead, "--connect-timeout", "2s"}, lr.winrmArgs()...)...)
	if !strings.Contains(out, "Re-test after the restore: inconclusive") ||
		!regexp.MustCompile(regexp.QuoteMeta(dead)+`/none: inconclusive: \S+`).MatchString(out) {
		t.Errorf("an inconclusive re-test does not say why:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	// A backup written before backups named their endpoints: the
	// evidence's last probe of the host names them.
	ev, bk3 := filepath.Join(lr.dir, "ev.json"), bk+".3"
	if code, out, errOut := lr.run(labTestPassword, append(rem[:len(rem):len(rem)], "--backup", bk3, "--evidence", ev)...); code != exitOK {
		t.Fatalf("remediate with evidence: exit %d\n%s\n%s", code, out, errOut)
	}
	// Rollback restores only a backup whose SHA-256 the evidence
	// recorded: record the old-format copy made below, as an older
	// relaylock would have.
	bkOld := bk + ".old"
	oldEvidence(t, ev, bk3, bkOld)
	code, out, errOut = lr.run(labTestPassword, append([]string{"rollback", "--backup", bkOld, "--evidence", ev}, lr.winrmArgs()...)...)
	if code != exitOpen || !strings.Contains(out, lr.lab.SMTPAddr) || !strings.Contains(errOut, "last probe of") {
		t.Errorf("rollback of an old backup: exit %d, want %d, re-testing %s from the evidence\nstdout:\n%s\nstderr:\n%s", code, exitOpen, lr.lab.SMTPAddr, out, errOut)
	}
}

// TestInterruptDuringReadBackSummary: Ctrl-C while the change is read back
// rolls it back; stderr says so, and the stdout summary must agree rather
// than report the changes as applied.
func TestInterruptDuringReadBackSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := lab.NewIIS(lab.IISAllExceptEmpty)
	var once sync.Once
	lr := startLabConfig(t, lab.Config{Host: h, Password: labTestPassword, WinRM: lab.WSManConfig{OnRun: func(r lab.Run) {
		if strings.HasSuffix(r.Script, "-write") {
			once.Do(cancel) // SIGINT right after the write, as the read-back starts
		}
	}}})
	original := stateOf(t, h)
	_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	e, stdout, stderr := labEnv(labTestPassword)
	code := run(ctx, []string{"relaylock", "fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort,
		"--winrm-host", lr.lab.MXHost + "=" + net.JoinHostPort(lr.lab.WinRMHost, fmt.Sprint(lr.lab.WinRMPort)),
		"--winrm-user", lr.lab.User, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName,
		"--allow", "192.0.2.10", "--no-loopback", "--yes", "--evidence", filepath.Join(lr.dir, "ev.json"),
		"-o", filepath.Join(lr.dir, "r.pdf")}, e)
	if ctx.Err() == nil {
		t.Fatalf("the write script never ran; exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if code != exitCancelled {
		t.Errorf("exit %d, want %d", code, exitCancelled)
	}
	if stateOf(t, h) != original {
		t.Fatal("the interrupted change was not rolled back on the host")
	}
	if !strings.Contains(stderr.String(), "rolled back") {
		t.Fatalf("stderr does not say rolled back:\n%s", stderr.String())
	}
	sum := stdout.String()[strings.Index(stdout.String(), "Summary for"):]
	if !strings.Contains(sum, "rolled back") || regexp.MustCompile(`change\(s\) applied, backup`).MatchString(sum) {
		t.Errorf("stdout summary disagrees with stderr (rolled back):\n%s", sum)
	}
}

// TestRetestShowsAcceptedAsLocal: the console's re-test says how many
// forms at the server's own names were accepted as local recipients, as
// the PDF does.
func TestRetestShowsAcceptedAsLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	needTool(t, "pdftotext")
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "", "demo", "--platform", "iis", "--out", dir)
	if code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	re := regexp.MustCompile(`(\d+) form\(s\) at the server's own names accepted\s+as\s+local`)
	cli := re.FindAllStringSubmatch(out, -1)
	pdf := re.FindAllStringSubmatch(strings.Join(strings.Fields(pdfText(t, filepath.Join(dir, "demo-report.pdf"))), " "), -1)
	if len(pdf) == 0 {
		t.Fatal("the PDF does not mention own-domain forms accepted as local: nothing to compare")
	}
	if len(cli) == 0 {
		t.Fatalf("the console hides the accepted-as-local count the PDF shows (%s):\n%s", pdf[len(pdf)-1][0], out)
	}
	if c, p := cli[len(cli)-1][1], pdf[len(pdf)-1][1]; c != p {
		t.Errorf("console says %s accepted as local after the change, the PDF %s", c, p)
	}
}

// TestRollbackCommandLine: every connection flag given is carried, the
// password never (it is not a flag), "the default port" is not printed as
// port 0, and the endpoints replace --ports.
func TestRollbackCommandLine(t *testing.T) {
	var line string
	flags := append(winrmFlags(winrmHostFlag()), remediateFlags()...)
	flags = append(flags, evidenceFlags(changeTicketFlag())...)
	flags = append(flags, retestFlags()...)
	cmd := &cli.Command{Name: "x", Flags: flags, Action: func(c *cli.Context) error {
		line = rollbackCommandLine(c, engagement.RollbackLine{Host: "mail.corp.example", Backup: "/srv/backups/b 1.json",
			Endpoints: []string{"192.0.2.25:2525", "[2001:db8::25]:25"}, Evidence: c.String("evidence")})
		return nil
	}}
	app := &cli.App{Name: "t", Commands: []*cli.Command{cmd}}
	if err := app.Run([]string{"t", "x", "--winrm-user", `CORP\admin`, "--winrm-auth", "kerberos", "--krb5-realm", "CORP.EXAMPLE",
		"--winrm-password-file", "/root/pw file", "--winrm-legacy-tls", "--ports", "25,2525", "--timeout", "10s",
		"--evidence", "ev.json", "--allow", "192.0.2.10", "--yes", "--dc", "DC02.corp.example"}); err != nil {
		t.Fatal(err)
	}
	words, err := splitShellWords(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := []string{"relaylock", "rollback", "--winrm-host", "mail.corp.example", "--backup", "/srv/backups/b 1.json",
		"--winrm-user", `CORP\admin`, "--winrm-auth", "kerberos", "--winrm-legacy-tls=true", "--winrm-password-file", "/root/pw file",
		"--krb5-realm", "CORP.EXAMPLE", "--evidence", "ev.json", "--dc", "DC02.corp.example", "--smtp-target", "192.0.2.25:2525", "--smtp-target", "[2001:db8::25]:25",
		"--timeout", "10s"}
	if strings.Join(words, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("rollback command\n got %q\nwant %q", words, want)
	}
}

// oldEvidence writes to the backup file from (a backup recorded in the
// evidence ev) as relaylock wrote backups before they named their
// endpoints, and records it in ev (re-sealed) as such a relaylock would
// have.
func oldEvidence(t *testing.T, ev, from, to string) {
	t.Helper()
	var old map[string]any
	data, err := os.ReadFile(from)
	if err != nil || json.Unmarshal(data, &old) != nil {
		t.Fatalf("backup %s: %v", from, err)
	}
	delete(old, "endpoints")
	delete(old, "mail_domain")
	data, _ = json.Marshal(old)
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	bb, sum, err := remediate.LoadBackup(to)
	if err != nil {
		t.Fatal(err)
	}
	b.Backups = append(b.Backups, evidence.BackupRef{File: to, SHA256: sum, Backup: bb})
	if err := evidence.Save(ev, b); err != nil {
		t.Fatal(err)
	}
}
