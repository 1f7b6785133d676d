package engagement

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

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
// change: smtpTargets (--smtp-target); else those the evidence's most
// recent audit found for host, with that audit's mail domain for the
// controls (as rollback re-tests what was probed before the change); else
// host on the probe's ports, and the operator is told why.
func (f *fixer) remediateTargets(smtpTargets []string, ev, host string) ([]string, error) {
	if len(smtpTargets) > 0 {
		return smtpTargets, nil
	}
	why := "no --evidence file says what an audit found"
	if ev != "" {
		b, err := evidence.Load(ev)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "the evidence file " + ev + " does not exist yet, so no audit found an endpoint"
		case err != nil:
			return nil, err
		default:
			if eps, domain, _ := auditedEndpoints(b, host); len(eps) > 0 {
				if domain != "" && f.probeOpts.MailDomain == "" {
					f.probeOpts.MailDomain = domain
				}
				f.progress("re-testing %s: the endpoints the audit in %s found for %s", strings.Join(eps, ", "), ev, host)
				return eps, nil
			}
			why = "no audit in " + ev + " found an endpoint of " + host + " (by MX host name, by address, or by the audit's own DNS answers for it)"
		}
	}
	fmt.Fprintf(f.e.Stderr, "relaylock: note: the re-test targets the WinRM host %s on port(s) %s: %s; give --smtp-target HOST:PORT to test the relay's own endpoint\n", host, f.probeOpts.Ports, why)
	return []string{host}, nil
}

// hostNames are the names fix checks a WinRM host by, for TLS and
// Kerberos, when fix reaches it at the address the audit probed (no
// mapping): the certificate is checked against the MX host name, and the
// SPN is HTTP/<MX host>, as they would be had the name been dialled. A
// mapped host, or a name the operator gave, keeps the operator's names.
func hostNames(w WinRMOptions, mapped bool, h openHost) (server, spn string) {
	server, spn = w.ServerName, w.SPN
	if _, err := netip.ParseAddr(h.mx); !mapped && err != nil {
		if server == "" && w.useHTTPS() {
			server = h.mx
		}
		if spn == "" && strings.EqualFold(w.Auth, "kerberos") {
			spn = "HTTP/" + h.mx
		}
	}
	return server, spn
}

// retestEndpoints are the "address:port" endpoints a change's re-test
// covers: those of the probe before the change when there was one, else
// the targets (each with --ports when it names no port).
func retestEndpoints(targets []string, ports []int, before *audit.Result) []string {
	var out []string
	if before != nil {
		for _, t := range before.Targets {
			for _, ep := range t.Endpoints {
				if s := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port)); !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	for _, t := range targets {
		if _, _, err := net.SplitHostPort(t); err == nil {
			out = append(out, t)
			continue
		}
		for _, p := range ports {
			out = append(out, net.JoinHostPort(strings.Trim(t, "[]"), strconv.Itoa(p)))
		}
	}
	return out
}
