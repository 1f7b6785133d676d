package main

import (
	"net/netip"
	"os/user"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/internal/engagement"
	"github.com/relaylock/relaylock/report/evidence"
)

// evidenceFlags are shared by every command that adds to the evidence file.
func evidenceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "evidence", Usage: "add results to the evidence `FILE` (JSON; created if missing, written atomically, mode 0600)"},
		&cli.StringFlag{Name: "client", Usage: "client `NAME` recorded in the evidence and report"},
		&cli.StringFlag{Name: "authorization", Usage: "reference `REF` of the written authorization for this test, recorded in the evidence"},
		&cli.StringFlag{Name: "ticket", Usage: "change ticket `ID`, recorded in the evidence and with every change this command makes"},
	}
}

// newRecorder is the recorder of the evidence flags.
func newRecorder(c *cli.Context, e *env, scope []string) *engagement.Recorder {
	return engagement.NewRecorder(c.Context, e, evidenceOptions(c), scope)
}

// evidenceOptions maps the evidence flags.
func evidenceOptions(c *cli.Context) engagement.EvidenceOptions {
	return engagement.EvidenceOptions{Path: c.String("evidence"), Client: c.String("client"),
		Authorization: c.String("authorization"), Ticket: c.String("ticket")}
}

func osUser() string {
	u, err := user.Current()
	if err != nil {
		return "unknown"
	}
	return u.Username
}

// proberAddrs returns this machine's addresses as seen in an audit: the
// local addresses the probe connections used.
func proberAddrs(results ...*audit.Result) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, r := range results {
		if r == nil {
			continue
		}
		for _, s := range r.Vantage.SourceAddrs {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				s = ap.Addr().String()
			}
			a, err := netip.ParseAddr(strings.Trim(s, "[]"))
			if err != nil {
				continue
			}
			a = a.Unmap()
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// lastAudit returns the newest audit in the evidence, or nil. Only
// evidence that verifies is used (the command's preflight has refused
// any other).
func lastAudit(path string) *audit.Result {
	if path == "" {
		return nil
	}
	b, _, err := evidence.LoadVerified(path)
	if err != nil || len(b.Audits) == 0 {
		return nil
	}
	return b.Audits[len(b.Audits)-1].Result
}
