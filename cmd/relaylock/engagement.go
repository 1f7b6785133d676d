package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/user"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
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

// recorder adds sections to the evidence file named by --evidence; with no
// file it does nothing.
type recorder struct {
	ctx        context.Context // bounds the wait for the evidence lock (Ctrl-C)
	app        *cli.App        // where a lost write is noted (evidenceLost)
	path       string
	tool       evidence.Tool
	engagement evidence.Engagement
	now        func() time.Time
}

func newRecorder(c *cli.Context, scope []string) *recorder {
	ver, rev := buildVersion()
	return &recorder{
		ctx:  c.Context,
		app:  c.App,
		path: c.String("evidence"),
		tool: evidence.CurrentTool(ver, rev),
		engagement: evidence.Engagement{
			Client:        c.String("client"),
			Authorization: c.String("authorization"),
			Operator:      osUser(),
			Scope:         scope,
			Ticket:        c.String("ticket"),
		},
		now: func() time.Time { return time.Now().UTC() },
	}
}

// update applies fn to the evidence, keeping what is already there.
func (r *recorder) update(fn func(b *evidence.Bundle)) error {
	if r == nil || r.path == "" {
		return nil
	}
	if beforeEvidenceWrite != nil {
		beforeEvidenceWrite(r.path)
	}
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	err := evidence.Update(ctx, r.path, func(b *evidence.Bundle) error {
		b.Tool = r.tool
		mergeEngagement(&b.Engagement, r.engagement)
		fn(b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("write evidence %s: %w", r.path, err)
	}
	return nil
}

// log records one line of the account of what was done.
func (r *recorder) log(b *evidence.Bundle, step, host, msg string) {
	b.Log = append(b.Log, evidence.LogEntry{Time: r.now(), Step: step, Host: host, Message: msg})
}

func mergeEngagement(dst *evidence.Engagement, src evidence.Engagement) {
	if src.Client != "" {
		dst.Client = src.Client
	}
	if src.Authorization != "" {
		dst.Authorization = src.Authorization
	}
	if src.Operator != "" {
		dst.Operator = src.Operator
	}
	if src.Ticket != "" {
		dst.Ticket = src.Ticket
	}
	seen := map[string]bool{}
	for _, s := range dst.Scope {
		seen[s] = true
	}
	for _, s := range src.Scope {
		if !seen[s] {
			dst.Scope = append(dst.Scope, s)
			seen[s] = true
		}
	}
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
