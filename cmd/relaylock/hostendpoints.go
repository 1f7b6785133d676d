package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/report/evidence"
)

// auditedEndpoints returns the endpoints ("address:port") that the most
// recent audit in b (a first look: `relaylock audit` or fix's step 1, not a
// re-test) found for the WinRM host, the mail domain that audit was of
// ("" when it was given hosts or addresses), and the audit's index in
// b.Audits (-1 when no audit found an endpoint of the host).
//
// An endpoint is the host's when its MX host name is host, when its address
// is host, or when its address is one host resolves to in that audit's own
// DNS answers (the MX list and the A/AAAA queries it recorded). No resolver
// is asked: the answer the audit acted on is the one that counts.
func auditedEndpoints(b *evidence.Bundle, host string) (eps []string, domain string, run int) {
	for i := len(b.Audits) - 1; i >= 0; i-- {
		a := b.Audits[i]
		if a.Purpose != evidence.PurposeAudit || a.Host != "" || a.Result == nil {
			continue
		}
		if eps, domain := hostEndpoints(a.Result, host); len(eps) > 0 {
			return eps, domain, i
		}
	}
	return nil, "", -1
}

// hostEndpoints are the endpoints of r that belong to host (see
// auditedEndpoints), in r's order, and the mail domain of the first target
// they were found under.
func hostEndpoints(r *audit.Result, host string) (eps []string, domain string) {
	name := normHost(host)
	addrs := auditAddrs(r, name)
	for _, t := range r.Targets {
		for _, ep := range t.Endpoints {
			a, err := netip.ParseAddr(ep.Address)
			if normHost(ep.MXHost) != name && (err != nil || !slices.Contains(addrs, a.Unmap())) {
				continue
			}
			if s := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port)); !slices.Contains(eps, s) {
				eps = append(eps, s)
			}
			if domain == "" && t.Kind == "domain" {
				domain = t.Domain
			}
		}
	}
	return eps, domain
}

// auditAddrs are the addresses name stands for in r: itself when it is an
// address, else those r's MX list and DNS answers give it.
func auditAddrs(r *audit.Result, name string) []netip.Addr {
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	for _, t := range r.Targets {
		for _, mx := range t.MX {
			if normHost(mx.Host) == name || slices.ContainsFunc(mx.CNAMEs, func(c string) bool { return normHost(c) == name }) {
				for _, s := range mx.Addresses {
					add(s)
				}
			}
		}
		for _, q := range t.DNS {
			if normHost(q.Name) != name || (q.Type != "A" && q.Type != "AAAA") {
				continue
			}
			for _, rr := range q.Answers {
				// Presentation format: "NAME TTL CLASS TYPE RDATA".
				if f := strings.Fields(rr); len(f) >= 5 && (f[3] == "A" || f[3] == "AAAA") {
					add(f[4])
				}
			}
		}
	}
	return out
}

func normHost(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.Trim(strings.TrimSpace(s), "[]"), "."))
}

// remediateTargets are the endpoints remediate probes before and after the
// change: --smtp-target; else those the evidence's most recent audit found
// for host, with that audit's mail domain for the controls (as rollback
// re-tests what was probed before the change); else host on --ports, and
// the operator is told why.
func remediateTargets(c *cli.Context, f *fixer, host string) ([]string, error) {
	if t := c.StringSlice("smtp-target"); len(t) > 0 {
		return t, nil
	}
	why := "no --evidence file says what an audit found"
	if ev := c.String("evidence"); ev != "" {
		b, err := evidence.Load(ev)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "the evidence file " + ev + " does not exist yet, so no audit found an endpoint"
		case err != nil:
			return nil, err
		default:
			if eps, domain, _ := auditedEndpoints(b, host); len(eps) > 0 {
				if domain != "" && c.String("mail-domain") == "" {
					if err := c.Set("mail-domain", domain); err != nil {
						return nil, err
					}
				}
				f.progress("re-testing %s: the endpoints the audit in %s found for %s", strings.Join(eps, ", "), ev, host)
				return eps, nil
			}
			why = "no audit in " + ev + " found an endpoint of " + host + " (by MX host name, by address, or by the audit's own DNS answers for it)"
		}
	}
	fmt.Fprintf(f.e.Stderr, "relaylock: note: the re-test targets the WinRM host %s on port(s) %s: %s; give --smtp-target HOST:PORT to test the relay's own endpoint\n", host, c.String("ports"), why)
	return []string{host}, nil
}

// winrmNames names fix's WinRM host for TLS and Kerberos when fix reaches
// it at the address the audit probed (no --winrm-host mapping): the
// certificate is checked against the MX host name, and the SPN is
// HTTP/<MX host>, as they would be had the name been dialled. A mapped
// host, or a flag the operator gave, keeps the operator's names.
type winrmNames struct {
	c               *cli.Context
	serverName, spn string // as given
}

func (n winrmNames) set(mapped bool, h openHost) error {
	server, spn := n.serverName, n.spn
	if _, err := netip.ParseAddr(h.mx); !mapped && err != nil {
		https := n.c.Bool("winrm-https") && !n.c.Bool("winrm-http")
		if server == "" && https {
			server = h.mx
		}
		if spn == "" && strings.EqualFold(n.c.String("winrm-auth"), "kerberos") {
			spn = "HTTP/" + h.mx
		}
	}
	for name, v := range map[string]string{"winrm-server-name": server, "winrm-spn": spn} {
		if n.c.String(name) != v {
			if err := n.c.Set(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}
