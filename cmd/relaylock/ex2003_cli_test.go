package main

// Exchange 2000/2003 through the CLI and the real WinRM client against the
// lab (issue 14 §3): the domain controller DS2MB reads, --dc, a DS2MB that
// has not caught up ("pending", never a racing rollback), and a schema
// without the relay-list attribute.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// netipStranger is an address outside every allow list.
var netipStranger = netip.MustParseAddr("198.51.100.7")

// lastChange returns the last change record in the evidence file.
func lastChange(t *testing.T, ev string) remediate.ChangeRecord {
	t.Helper()
	b, err := evidence.Load(ev)
	if err != nil {
		t.Fatalf("evidence: %v", err)
	}
	if len(b.Changes) == 0 {
		t.Fatal("no change record in the evidence")
	}
	return b.Changes[len(b.Changes)-1]
}

// TestEx2003PendingDS2MB: DS2MB runs later than the wait. remediate
// reports "pending (DS2MB)" with exit 1, records the change as pending,
// does not roll back and does not re-test; inspect shows the DS2MB row
// pending (exit 3, still open) until DS2MB has run, then in sync (exit 0).
func TestEx2003PendingDS2MB(t *testing.T) {
	h := lab.NewExchange2003(lab.Ex2003Open)
	h.SetSyncDelay(time.Hour) // beyond the wait: DS2MB's 15-minute run stands in
	lr := startLab(t, h)
	ev, bk := filepath.Join(lr.dir, "ev.json"), filepath.Join(lr.dir, "backup.json")
	args := append(append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes", "--restart", "never",
		"--ds2mb-timeout", "1s", "--evidence", ev, "--backup", bk}, lr.winrmArgs()...), lr.probeArgs()...)
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitError {
		t.Fatalf("remediate exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	for _, w := range []string{"pending (DS2MB)", "nothing was rolled back", "relaylock inspect --winrm-host", "relaylock rollback --winrm-host"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if strings.Contains(errOut, "re-testing") || strings.Contains(out, "Verdict: before") {
		t.Errorf("a pending change was re-tested:\n%s\n%s", out, errOut)
	}
	if rec := lastChange(t, ev); rec.Result != "pending" || len(rec.Applied) == 0 {
		t.Errorf("change record: result %q, %d applied; want pending with the AD changes", rec.Result, len(rec.Applied))
	}
	ad := h.ADState()[0].RelayIpList
	if l, err := ad.Decode(); err != nil || l.Null || l.GrantByDefault || len(l.Grant) != 1 {
		t.Fatalf("AD on the DS2MB DC has %s: the change was rolled back or never written", remediate.DescribeBlob(ad))
	}
	if !h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("the metabase changed although DS2MB has not run")
	}

	inspect := append([]string{"inspect", "--prober", "198.51.100.7"}, lr.winrmArgs()...)
	code, out, errOut = lr.run(labTestPassword, inspect...)
	if code != exitOpen || !strings.Contains(out, "pending: the metabase of SmtpSvc/1 differs") || !strings.Contains(out, lab.Ex2003ConfigDC) {
		t.Fatalf("inspect while pending: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	h.SyncNow() // DS2MB's periodic run
	code, out, errOut = lr.run(labTestPassword, inspect...)
	if code != exitOK || !strings.Contains(out, remediate.DS2MBInSync) {
		t.Fatalf("inspect after DS2MB ran: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("still open after DS2MB ran")
	}

	// A rollback waits for DS2MB the same way (the plan's 1 s): pending,
	// recorded as such; with DS2MB prompt again it completes.
	rollback := append([]string{"rollback", "--backup", bk, "--no-retest", "--evidence", ev}, lr.winrmArgs()...)
	code, out, errOut = lr.run(labTestPassword, rollback...)
	if code != exitError || !strings.Contains(errOut, "pending (DS2MB)") || !strings.Contains(errOut, "the saved values were written") {
		t.Fatalf("rollback while DS2MB is slow: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if rec := lastChange(t, ev); rec.Kind != "rollback" || rec.Result != "pending" {
		t.Errorf("rollback change record: kind %q result %q", rec.Kind, rec.Result)
	}
	h.SetSyncDelay(50 * time.Millisecond)
	code, out, errOut = lr.run(labTestPassword, rollback...)
	if code != exitOK {
		t.Fatalf("rollback: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !h.RelayAllowed(netipStranger, false, "elsewhere.example") {
		t.Fatal("rollback did not bring the old (open) state back")
	}
}

// TestEx2003DomainController: without --dc every write goes to the DC
// DS2MB reads, although a serverless bind would reach another one (the
// default lab's DC02, five minutes of replication away); with --dc DC02
// the write lands there and stays pending until replication.
func TestEx2003DomainController(t *testing.T) {
	t.Run("default: DS2MB's DC", func(t *testing.T) {
		h := lab.NewExchange2003(lab.Ex2003Open)
		h.SetSyncDelay(50 * time.Millisecond)
		lr := startLab(t, h)
		code, out, errOut := lr.run(labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes",
			"--no-retest", "--ds2mb-timeout", "10s", "--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)...)
		if code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		for _, c := range h.Calls() {
			if c.Script == remediate.ScriptEx2003WriteAD && c.Params["dc"] != lab.Ex2003ConfigDC {
				t.Errorf("write to %q, want the DS2MB DC %s", c.Params["dc"], lab.Ex2003ConfigDC)
			}
		}
		if !h.ADStateOn(lab.Ex2003OtherDC)[0].RelayIpList.Equal(remediate.RelayListBlob{Bytes: []byte{}}) {
			t.Error("DC02 changed before replication")
		}
	})
	t.Run("--dc another DC", func(t *testing.T) {
		h := lab.NewExchange2003(lab.Ex2003Open)
		h.SetSyncDelay(50 * time.Millisecond)
		lr := startLab(t, h)
		ev := filepath.Join(lr.dir, "ev.json")
		code, out, errOut := lr.run(labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes",
			"--no-retest", "--ds2mb-timeout", "1s", "--dc", "DC02", "--evidence", ev, "--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)...)
		if code != exitError || !strings.Contains(errOut, "pending (DS2MB)") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if !strings.Contains(out, "DS2MB reads "+lab.Ex2003ConfigDC) {
			t.Errorf("the plan does not say the DC is not DS2MB's:\n%s", out)
		}
		if h.ADStateOn(lab.Ex2003OtherDC)[0].RelayIpList.Equal(remediate.RelayListBlob{Bytes: []byte{}}) {
			t.Fatal("the write did not land on DC02")
		}
		if !h.ADState()[0].RelayIpList.Equal(remediate.RelayListBlob{Bytes: []byte{}}) {
			t.Fatal("DC01 changed before replication")
		}
		h.ReplicateNow()
		time.Sleep(100 * time.Millisecond) // DS2MB's notification delay
		code, out, errOut = lr.run(labTestPassword, append([]string{"inspect", "--dc", "dc02"}, lr.winrmArgs()...)...)
		if code != exitOK || !strings.Contains(out, "in sync") || !strings.Contains(out, "named by the operator; DS2MB reads "+lab.Ex2003ConfigDC) {
			t.Fatalf("inspect after replication: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})
	t.Run("--dc that does not exist", func(t *testing.T) {
		// The second-hop check binds to the named DC, over WinRM: it
		// fails with the Windows error before any read or change.
		h := lab.NewExchange2003(lab.Ex2003Open)
		lr := startLab(t, h)
		before := h.ADState()
		code, out, errOut := lr.run(labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--yes", "--dc", "DC09.corp.example"}, lr.winrmArgs()...)...)
		for _, want := range []string{"second hop", "on domain controller DC09.corp.example", "0x8007203A", "does not exist or does not answer LDAP", "nothing was read or changed"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q", want)
			}
		}
		if code != exitError || fmt.Sprint(h.ADState()) != fmt.Sprint(before) {
			t.Fatalf("exit %d, host changed %v\nstdout:\n%s\nstderr:\n%s", code, fmt.Sprint(h.ADState()) != fmt.Sprint(before), out, errOut)
		}
	})
	t.Run("--dc on IIS", func(t *testing.T) {
		lr := startLab(t, lab.NewIIS(lab.IISClosed))
		code, _, errOut := lr.run(labTestPassword, append([]string{"inspect", "--dc", "dc01"}, lr.winrmArgs()...)...)
		if code != exitError || !strings.Contains(errOut, "does not keep its relay settings in Active Directory") {
			t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
		}
	})
	t.Run("--dc not a host name", func(t *testing.T) {
		lr := startLab(t, lab.NewIIS(lab.IISClosed))
		code, _, errOut := lr.run(labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--dc", "dc01/CN=x"}, lr.winrmArgs()...)...)
		if code != exitUsage || !strings.Contains(errOut, "--dc") {
			t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
		}
	})
}

// TestEx2003SchemaWithoutAttribute: the relay-list attribute's name is
// UNVERIFIED; a schema without it stops inspect and remediate with a clear
// message instead of reading no value (which looks closed).
func TestEx2003SchemaWithoutAttribute(t *testing.T) {
	h := lab.NewExchange2003(lab.Ex2003Open)
	h.SetSchemaWithoutRelayAttr(true)
	lr := startLab(t, h)
	for _, args := range [][]string{{"inspect"}, {"remediate", "--allow", "192.0.2.10", "--yes", "--no-retest", "--backup", filepath.Join(lr.dir, "b.json")}} {
		code, out, errOut := lr.run(labTestPassword, append(args, lr.winrmArgs()...)...)
		if code != exitError || !strings.Contains(errOut, remediate.Ex2003RelayIpListAttr) || !strings.Contains(errOut, "schema") || !strings.Contains(errOut, "nothing was read or changed") {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", args[0], code, out, errOut)
		}
	}
	for _, c := range h.Calls() {
		if c.Script == remediate.ScriptEx2003WriteAD {
			t.Fatal("wrote to AD although the schema lacks the attribute")
		}
	}
}

// TestEx2003DecodedCompare: DS2MB's copy in the metabase is the same list
// in other bytes. relaylock compares decoded lists, so the change
// completes (exit 0, in sync) instead of waiting for bytes that never come.
func TestEx2003DecodedCompare(t *testing.T) {
	h := lab.NewExchange2003(lab.Ex2003Open)
	h.SetSyncDelay(50 * time.Millisecond)
	h.SetDS2MBReserializes(true)
	lr := startLab(t, h)
	code, out, errOut := lr.run(labTestPassword, append([]string{"remediate", "--allow", "192.0.2.10", "--no-loopback", "--yes",
		"--no-retest", "--ds2mb-timeout", "5s", "--backup", filepath.Join(lr.dir, "b.json")}, lr.winrmArgs()...)...)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	ad, mb := h.ADState()[0].RelayIpList, h.MetabaseState().Servers[0].RelayIpList
	if ad.Equal(mb) {
		t.Fatal("the lab's DS2MB copied the same bytes: the test proves nothing")
	}
	code, out, errOut = lr.run(labTestPassword, append([]string{"inspect"}, lr.winrmArgs()...)...)
	if code != exitOK || !strings.Contains(out, remediate.DS2MBInSync) || strings.Contains(out, "EX2003-AD-METABASE-DISAGREE") {
		t.Fatalf("inspect: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestEx2003FixPending: fix over a domain whose Exchange 2003 MX does not
// copy the change within the wait: exit 1, the summary line says pending
// and how to re-check, the host is not re-tested and nothing is rolled
// back; the report is still written.
func TestEx2003FixPending(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	h := lab.NewExchange2003(lab.Ex2003Open)
	h.SetSyncDelay(time.Hour)
	lr := startLab(t, h)
	ev, pdf := filepath.Join(lr.dir, "fix.json"), filepath.Join(lr.dir, "fix.pdf")
	_, smtpPort, _ := net.SplitHostPort(lr.lab.SMTPAddr)
	args := []string{"fix", lr.lab.Domain, "--dns-server", lr.lab.DNSAddr, "--ports", smtpPort, "--timeout", "10s",
		"--allow", "192.0.2.25", "--restart", "never", "--yes", "--ds2mb-timeout", "1s", "--evidence", ev, "-o", pdf,
		"--winrm-host", lr.lab.MXHost + "=" + net.JoinHostPort(lr.lab.WinRMHost, fmt.Sprint(lr.lab.WinRMPort)),
		"--winrm-user", lr.lab.User, "--winrm-ca", lr.ca, "--winrm-server-name", lr.lab.TLSServerName}
	code, out, errOut := lr.run(labTestPassword, args...)
	if code != exitError {
		t.Fatalf("fix exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitError, out, errOut)
	}
	if !strings.Contains(out, "pending (DS2MB)") || !strings.Contains(out, "re-check with relaylock inspect") || !strings.Contains(out, "after not re-tested") {
		t.Errorf("summary does not say pending:\n%s", out)
	}
	if _, err := os.Stat(pdf); err != nil {
		t.Errorf("no report: %v", err)
	}
	if rec := lastChange(t, ev); rec.Result != "pending" {
		t.Errorf("change record result %q", rec.Result)
	}
	if h.ADState()[0].RelayIpList.Equal(remediate.RelayListBlob{Bytes: []byte{}}) {
		t.Fatal("the AD change was rolled back")
	}
}
