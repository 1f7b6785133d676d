package main

// What remediate and fix re-test, and where fix sends its WinRM
// credentials, when the operator names neither: the endpoints and the
// address the audit found, never a fresh guess (tryout findings 2 and 10).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/report/evidence"
)

// coverText is the first page of the report rendered from ev, on one line.
func coverText(t *testing.T, lr *labRun, ev string) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext (poppler-utils) not installed")
	}
	pdf := filepath.Join(lr.dir, "cover.pdf")
	if code, out, errOut := lr.run("", "report", "--evidence", ev, "-o", pdf); code != exitOK {
		t.Fatalf("report: exit %d\n%s\n%s", code, out, errOut)
	}
	text, err := exec.Command("pdftotext", "-l", "1", pdf, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(text)), " ")
}

// retestEndpointsIn lists the "address:port" of every endpoint of the
// evidence's audit runs of purpose.
func retestEndpointsIn(t *testing.T, ev string, purpose evidence.Purpose) []string {
	t.Helper()
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range b.Audits {
		if a.Purpose != purpose || a.Result == nil {
			continue
		}
		for _, tg := range a.Result.Targets {
			for _, ep := range tg.Endpoints {
				out = append(out, net.JoinHostPort(ep.Address, fmt.Sprint(ep.Port)))
			}
		}
	}
	return out
}

// README step 7: audit a domain into the evidence, then remediate the host
// with that evidence and no --smtp-target. The re-test must probe the
// endpoint the audit found open (its port, its mail domain), not the
// WinRM host on port 25; the report then proves what was tested.
func TestRemediateRetestsAuditedEndpoints(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	ev := filepath.Join(lr.dir, "ev.json")
	_, port, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	if code, out, errOut := lr.run("", "audit", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", port,
		"--timeout", "10s", "--evidence", ev, "-q"); code != exitOpen {
		t.Fatalf("audit: exit %d, want %d\n%s\n%s", code, exitOpen, out, errOut)
	}
	args := append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--evidence", ev, "--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitOK {
		t.Fatalf("remediate: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Verdict: before open, after closed") {
		t.Errorf("remediate did not re-test the audited endpoint:\n%s\n%s", out, errOut)
	}
	if strings.Contains(errOut, "the re-test targets the WinRM host") {
		t.Errorf("fell back to the WinRM host although the audit found its endpoint:\n%s", errOut)
	}
	for _, purpose := range []evidence.Purpose{evidence.PurposeRetest, evidence.PurposeAudit} {
		eps := retestEndpointsIn(t, ev, purpose)
		if len(eps) == 0 {
			t.Errorf("no %s run in the evidence", purpose)
		}
		for _, ep := range eps {
			if ep != lr.lab.SMTPAddr {
				t.Errorf("%s probed %s, not the audited endpoint %s", purpose, ep, lr.lab.SMTPAddr)
			}
		}
	}
	// The printed rollback command re-tests the same endpoint.
	if words := printedRollback(t, out, labTestPassword); !slices.Contains(words, lr.lab.SMTPAddr) {
		t.Errorf("rollback command does not re-test %s: %q", lr.lab.SMTPAddr, words)
	}
	if c := coverText(t, lr, ev); !strings.Contains(c, "1 open relay found · 1 remediated · 0 open on re-test") {
		t.Errorf("report cover: %s", c)
	}
}

// Without an audit of the host (no evidence) remediate re-tests the WinRM
// host on --ports and says so, and why.
func TestRemediateSaysWhenRetestIsTheWinRMHost(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	_, port, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	args := append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--ports", port, "--mail-domain", lr.lab.Domain, "--timeout", "10s", "-q",
		"--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitOK {
		t.Fatalf("remediate: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	want := fmt.Sprintf("the re-test targets the WinRM host %s on port(s) %s: no --evidence file", lr.lab.WinRMHost, port)
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr does not say %q (even with -q):\n%s", want, errOut)
	}
}

// A re-test that cannot test the endpoint proves nothing: exit 5, "NOT
// VERIFIED" on stdout, and a report cover that does not count it as
// remediated nor shows it green.
func TestRemediateInconclusiveRetestIsNotVerified(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := dead.Addr().String()
	dead.Close() // nothing listens there now: the probe cannot connect
	ev := filepath.Join(lr.dir, "ev.json")
	args := append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--smtp-target", target, "--mail-domain", lr.lab.Domain, "--timeout", "5s", "--evidence", ev,
		"--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitInconclusive {
		t.Fatalf("remediate: exit %d, want %d\n%s\n%s", code, exitInconclusive, out, errOut)
	}
	if !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(errOut, "not verified") {
		t.Errorf("an inconclusive re-test is not called not verified:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	c := coverText(t, lr, ev)
	if !strings.Contains(c, "not verified") || strings.Contains(c, "1 remediated") {
		t.Errorf("report cover counts an unverified change as remediated: %s", c)
	}
}

// fix without a --winrm-host mapping reaches WinRM at the address the
// audit probed for the MX host, naming the MX host for TLS: no host name
// ever reaches the dialer, so the system resolver is never asked (the lab
// MX name exists only in the lab's DNS).
func TestFixDialsTheAuditedAddress(t *testing.T) {
	domain := "lab.relaylock.test"
	mx := "mail." + domain
	lr := startLabConfig(t, lab.Config{Host: lab.NewIIS(lab.IISAllExceptEmpty), Password: labTestPassword, Domain: domain, Hostname: mx})
	_, port, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	var mu sync.Mutex
	var dialled []string
	e, out, errb := labEnv(labTestPassword)
	e.WinRMDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialled = append(dialled, addr)
		mu.Unlock()
		h, _, err := net.SplitHostPort(addr)
		if _, perr := netip.ParseAddr(h); err != nil || perr != nil {
			t.Errorf("WinRM dialled %q, a name: it would be resolved by the system resolver", addr)
			return nil, errors.New("test: a WinRM host name reached the dialer")
		}
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, []string{"relaylock", "fix", domain, "--dns-server", lr.lab.DNSAddr, "--ports", port, "--timeout", "10s",
		"--winrm-port", fmt.Sprint(lr.lab.WinRMPort), "--winrm-user", lr.lab.User, "--winrm-ca", lr.ca,
		"--allow", "192.0.2.10", "--no-loopback", "--restart", "never", "--yes",
		"--evidence", filepath.Join(dir, "ev.json"), "-o", filepath.Join(dir, "r.pdf")}, e)
	if code != exitOK {
		t.Fatalf("fix: exit %d, want 0\n%s\n%s", code, out, errb)
	}
	mu.Lock()
	n := len(dialled)
	mu.Unlock()
	if n == 0 {
		t.Fatal("the dial hook was never called: the test proves nothing")
	}
	if want := mx + " at " + lr.lab.WinRMHost + ": before open"; !strings.Contains(out.String(), want) {
		t.Errorf("summary does not say %q:\n%s", want, out)
	}
	words := printedRollback(t, out.String(), labTestPassword)
	cmd := strings.Join(words, " ")
	for _, want := range []string{"--winrm-host " + lr.lab.WinRMHost, "--winrm-server-name " + mx} {
		if !strings.Contains(cmd, want) {
			t.Errorf("printed rollback command lacks %q: %s", want, cmd)
		}
	}
}

// fix whose re-test cannot test one of the host's endpoints (a port
// nothing listens on) has not verified its change: exit 5, the summary
// and the report cover say "not verified", even though the relay itself
// was re-tested closed.
func TestFixInconclusiveRetestIsNotVerified(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, deadPort, _ := net.SplitHostPort(dead.Addr().String())
	dead.Close()
	args := fixArgs(lr, "--yes", "--connect-timeout", "2s")
	i := slices.Index(args, "--ports")
	args[i+1] += "," + deadPort
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitInconclusive {
		t.Fatalf("fix: exit %d, want %d\n%s\n%s", code, exitInconclusive, out, errOut)
	}
	if !strings.Contains(out, "after inconclusive (NOT VERIFIED)") {
		t.Errorf("the summary does not say the change is not verified:\n%s", out)
	}
	c := coverText(t, lr, filepath.Join(lr.dir, "ev.json"))
	if !strings.Contains(c, "1 other endpoint(s) could not be tested: not verified") {
		t.Errorf("report cover: %s", c)
	}
}
