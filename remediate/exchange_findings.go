package remediate

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Exchange settings rows and findings: what an Inspection shows of an
// ExchangeState, and the root causes it names.

// ---- settings rows -------------------------------------------------------

// Setting names of a receive connector (Object "Receive connector <identity>")
// and of an accepted domain (Object "Accepted domain <name>").
const (
	SetEnabled               = "Enabled"
	SetTransportRole         = "TransportRole"
	SetBindings              = "Bindings"
	SetRemoteIPRanges        = "RemoteIPRanges"
	SetAuthMechanism         = "AuthMechanism"
	SetPermissionGroups      = "PermissionGroups"
	SetAnyRecipient          = "Accept-Any-Recipient"             // grantees set on the connector
	SetAnyRecipientInherited = "Accept-Any-Recipient (inherited)" // grantees inherited from a parent
	SetDomainName            = "DomainName"
	SetDomainType            = "DomainType"
	SetDomainDefault         = "Default"
)

func connectorObject(identity string) string { return "Receive connector " + identity }
func domainObject(name string) string        { return "Accepted domain " + name }

// exCanonRanges writes RemoteIPRanges canonically: parsed entries as
// AddrRange.String() (so "0.0.0.0-255.255.255.255" reads "0.0.0.0/0"),
// sorted by family and address, then unparsable entries verbatim.
func exCanonRanges(in []string) string {
	var rs []AddrRange
	var bad []string
	for _, s := range in {
		if r, err := parseExchangeIPRange(s); err == nil {
			rs = append(rs, r)
		} else {
			bad = append(bad, strings.TrimSpace(s))
		}
	}
	exSortRanges(rs)
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, r := range rs {
		if s := r.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(bad)
	out = append(out, bad...)
	return exJoinOr(out, ", ", "(none)")
}

func exSortRanges(rs []AddrRange) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.From.Is4() != b.From.Is4() {
			return a.From.Is4()
		}
		if a.From != b.From {
			return a.From.Less(b.From)
		}
		return a.To.Less(b.To)
	})
}

func exCanonSet(in []string, empty string) string {
	out := append([]string(nil), in...)
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return exJoinOr(out, ", ", empty)
}

// exCanonACEs writes the grantees of ACEs set on the object itself
// (explicit ones and those Exchange derives from PermissionGroups);
// exCanonInherited those inherited from a parent. Plans change only the
// former, so ACEs inherited from above cannot make a read-back differ.
func exCanonACEs(aces []ExchangeACE) string { return exCanonACEsOf(aces, false) }

func exCanonInherited(aces []ExchangeACE) string { return exCanonACEsOf(aces, true) }

func exCanonACEsOf(aces []ExchangeACE, inherited bool) string {
	out := make([]string, 0, len(aces))
	for _, a := range aces {
		if a.Inherited == inherited {
			out = append(out, a.String())
		}
	}
	sort.Strings(out)
	return exJoinOr(out, "; ", "(none)")
}

func exJoinOr(items []string, sep, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, sep)
}

// connectorRows are the Setting rows of one connector; Plan's Change.New
// values are computed with the same function so read-back compares like
// with like.
func connectorRows(roleAware bool, c ExchangeConnector) []Setting {
	o := connectorObject(c.Identity)
	rows := []Setting{{o, SetEnabled, exBool(c.Enabled)}}
	if roleAware {
		rows = append(rows, Setting{o, SetTransportRole, c.TransportRole})
	}
	return append(rows,
		Setting{o, SetBindings, exCanonSet(c.Bindings, "(none)")},
		Setting{o, SetRemoteIPRanges, exCanonRanges(c.RemoteIPRanges)},
		Setting{o, SetAuthMechanism, exCanonSet(c.AuthMechanism, "None")},
		Setting{o, SetPermissionGroups, exCanonSet(c.PermissionGroups, "None")},
		Setting{o, SetAnyRecipient, exCanonACEs(c.AnyRecipient)},
		Setting{o, SetAnyRecipientInherited, exCanonInherited(c.AnyRecipient)},
	)
}

func domainRows(d ExchangeAcceptedDomain) []Setting {
	o := domainObject(d.Name)
	return []Setting{{o, SetDomainName, d.DomainName}, {o, SetDomainType, d.DomainType}, {o, SetDomainDefault, exBool(d.Default)}}
}

// ExchangeSettings returns the Setting rows of a state, deterministic.
func ExchangeSettings(s *ExchangeState) []Setting {
	var rows []Setting
	for _, c := range s.Connectors {
		rows = append(rows, connectorRows(s.RoleAware, c)...)
	}
	for _, d := range s.Domains {
		rows = append(rows, domainRows(d)...)
	}
	return rows
}

// ---- findings -------------------------------------------------------------

// Finding IDs of the Exchange platform.
const (
	FindExchAnonRelay       = "EXCH-ANON-RELAY"             // ANONYMOUS LOGON has Accept-Any-Recipient
	FindExchExternalAuth    = "EXCH-EXTERNAL-AUTHORITATIVE" // ExternalAuthoritative on a reachable connector
	FindExchRelayRightOther = "EXCH-RELAY-RIGHT-OTHER"      // Accept-Any-Recipient for an unusual principal
	FindExchWildcardDomain  = "EXCH-ACCEPTED-DOMAIN-WILDCARD"
	FindExchRelayDomain     = "EXCH-ACCEPTED-DOMAIN-RELAY"
	FindExchAnonInternal    = "EXCH-ANON-NON-INTERNET" // STIG: AnonymousUsers on a non-Internet connector
	FindExchProberConnector = "EXCH-PROBER-CONNECTOR"  // which connector answers the prober (info)
	FindExchLoader          = "EXCH-SHELL-LOADER"      // cmdlets loaded in an unsupported way (info)
)

// exRangeHasPublic reports whether r holds any Internet address: true when
// r is not inside a private, loopback or link-local block.
func exRangeHasPublic(r AddrRange) bool {
	for _, p := range exInternalPrefixes {
		if p.Addr().Is4() == r.From.Is4() && p.Contains(r.From) && p.Contains(r.To) {
			return false
		}
	}
	return true
}

var exInternalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("::1/128"),
}

// exposure grades who can reach a connector: exposureWide when a
// RemoteIPRanges entry holding Internet addresses is wider than a /24
// (IPv4) or /48 (IPv6) or does not parse, exposureHosts when only
// narrower Internet ranges (named partner hosts) are listed,
// exposureInternal when every range is private, loopback or link-local.
type exposure int

const (
	exposureInternal exposure = iota
	exposureHosts
	exposureWide
)

func connectorExposure(c ExchangeConnector) exposure {
	rs, bad := c.Ranges()
	if len(bad) > 0 {
		return exposureWide
	}
	e := exposureInternal
	for _, r := range rs {
		if !exRangeHasPublic(r) {
			continue
		}
		limit := 24
		if r.From.Is6() {
			limit = 48
		}
		if r.PrefixLenEquivalent() < limit {
			return exposureWide
		}
		e = exposureHosts
	}
	return e
}

// relaySeverity: high when the prober lands on the connector or the
// Internet at large can; medium for named Internet hosts; low for
// internal-only or disabled connectors.
func relaySeverity(c ExchangeConnector, probers []string) Severity {
	switch {
	case !c.Enabled:
		return SeverityLow
	case len(probers) > 0 || connectorExposure(c) == exposureWide:
		return SeverityHigh
	case connectorExposure(c) == exposureHosts:
		return SeverityMedium
	}
	return SeverityLow
}

func exchangeFindings(s *ExchangeState, prober []netip.Addr) []Finding {
	var fs []Finding
	effective := map[string][]string{} // connector identity -> prober addresses it answers on port 25
	for _, a := range prober {
		if c := s.EffectiveConnector(a, 25); c != nil {
			effective[c.Identity] = append(effective[c.Identity], a.String())
		}
	}
	for _, c := range s.Connectors {
		o := connectorObject(c.Identity)
		probers := effective[c.Identity]
		exp := connectorExposure(c)
		ranges := exCanonRanges(c.RemoteIPRanges)
		for _, a := range c.AnyRecipient {
			if !a.IsAnonymous(s.AnonymousName) {
				continue
			}
			f := Finding{ID: FindExchAnonRelay, Severity: relaySeverity(c, probers), Object: o, Setting: SetAnyRecipient, Value: a.String(),
				Explains: c.Enabled && len(probers) > 0,
				Title:    "Anonymous senders may relay through receive connector " + c.Name,
				Detail: fmt.Sprintf("%s (ANONYMOUS LOGON, %s) holds %s on %s, which accepts connections from %s on %s%s. "+
					"Any client whose address matches these ranges most specifically can send mail to any domain.",
					a.User, anonymousLogonSID, RightAcceptAnyRecipient, c.Identity, ranges,
					exCanonSet(c.Bindings, "(no bindings)"), enabledNote(c)),
				Remediation: "Remove-ADPermission the anonymous " + RightAcceptAnyRecipient + " right from this connector and put the clients that must relay on a dedicated connector whose RemoteIPRanges list only them (Microsoft Learn, \"Allow anonymous relay on Exchange servers\").",
			}
			if len(probers) > 0 {
				f.Detail += " It is the connector that answers the prober (" + strings.Join(probers, ", ") + ") on port 25."
			}
			if exp != exposureWide && len(probers) == 0 {
				f.Detail += " Its ranges name specific hosts or internal networks only: this is Microsoft's anonymous-relay recipe; check that every listed host should relay."
			}
			if a.Inherited {
				f.Detail += " The permission is inherited from a parent object (the server or its protocol container): remove it there."
			}
			fs = append(fs, f)
		}
		if c.HasAuth("ExternalAuthoritative") {
			fs = append(fs, Finding{ID: FindExchExternalAuth, Severity: relaySeverity(c, probers), Object: o, Setting: SetAuthMechanism,
				Value: exCanonSet(c.AuthMechanism, "None"), Explains: c.Enabled && len(probers) > 0,
				Title: "Receive connector " + c.Name + " treats its clients as externally secured Exchange servers",
				Detail: fmt.Sprintf("AuthMechanism ExternalAuthoritative makes every client matching %s on %s a trusted "+
					"Exchange server (MS Exchange\\Externally Secured Servers): it may relay to any domain and bypasses "+
					"anti-spam checks.%s", ranges, exCanonSet(c.Bindings, "(no bindings)"), enabledNote(c)),
				Remediation: "Remove ExternalAuthoritative from the connector's AuthMechanism, or narrow its RemoteIPRanges to the servers it is meant for.",
			})
		}
		for _, a := range c.AnyRecipient {
			if a.IsAnonymous(s.AnonymousName) || a.SID == authenticatedUsersSID || expectedExchangePrincipal(a.User) {
				continue
			}
			fs = append(fs, Finding{ID: FindExchRelayRightOther, Severity: SeverityMedium, Object: o, Setting: SetAnyRecipient,
				Value: a.String(), Explains: false,
				Title:       "Receive connector " + c.Name + " lets " + a.User + " relay",
				Detail:      a.String() + " holds " + RightAcceptAnyRecipient + " on " + c.Identity + ". Check that every member of this principal should be able to send to any domain.",
				Remediation: "Remove-ADPermission the right from this principal unless it is required.",
			})
		}
		if c.HasGroup("AnonymousUsers") && exp == exposureInternal && !c.HasAnonymousRelay(s.AnonymousName, false) {
			fs = append(fs, Finding{ID: FindExchAnonInternal, Severity: SeverityLow, Object: o, Setting: SetPermissionGroups,
				Value: exCanonSet(c.PermissionGroups, "None"),
				Title: "Internal receive connector " + c.Name + " accepts anonymous connections",
				Detail: "PermissionGroups include AnonymousUsers on a connector that only serves internal addresses (" + ranges +
					"); DISA's Exchange STIG (e.g. SV-221245) requires internal connectors not to allow anonymous connections. This is not relay by itself.",
				Remediation: "Remove AnonymousUsers from PermissionGroups unless anonymous internal senders are required.",
			})
		}
	}
	for _, d := range s.Domains {
		o := domainObject(d.Name)
		relayType := strings.EqualFold(d.DomainType, "InternalRelay") || strings.EqualFold(d.DomainType, "ExternalRelay")
		if exIsBroadDomain(d.DomainName) {
			sev := SeverityMedium
			if relayType {
				sev = SeverityHigh
			}
			fs = append(fs, Finding{ID: FindExchWildcardDomain, Severity: sev, Object: o, Setting: SetDomainName,
				Value: d.DomainName, Explains: relayType && len(prober) > 0,
				Title: "Accepted domain " + d.Name + " covers " + d.DomainName,
				Detail: fmt.Sprintf("The accepted domain %q (%s) matches every recipient domain under %q. %s", d.DomainName, d.DomainType,
					strings.TrimPrefix(d.DomainName, "*."), wildcardNote(relayType)),
				Remediation: "Remove the accepted domain (relaylock does it when the operator asks to fix accepted domains) and list the real domains instead.",
			})
			continue
		}
		if relayType {
			fs = append(fs, Finding{ID: FindExchRelayDomain, Severity: SeverityMedium, Object: o, Setting: SetDomainType,
				Value: d.DomainType,
				Title: "Exchange relays mail for " + d.DomainName + " (" + d.DomainType + ")",
				Detail: "Exchange accepts mail from anyone for recipients in " + d.DomainName + " and forwards it through its send connectors. " +
					"This relays only to this domain (and its subdomains when it starts with *.), not to arbitrary domains; it is expected for shared address spaces and hybrid setups.",
				Remediation: "Keep it if the domain really is shared with another mail system; otherwise set its DomainType to Authoritative (relaylock does it when the operator asks to fix accepted domains).",
			})
		}
	}
	if len(prober) > 0 {
		for _, a := range prober {
			c := s.EffectiveConnector(a, 25)
			f := Finding{ID: FindExchProberConnector, Severity: SeverityInfo, Setting: SetRemoteIPRanges}
			if c == nil {
				f.Title = "No enabled receive connector on port 25 accepts " + a.String()
				f.Detail = "Exchange refuses connections from this address on port 25."
			} else {
				f.Object, f.Value = connectorObject(c.Identity), exCanonRanges(c.RemoteIPRanges)
				f.Title = "Receive connector " + c.Name + " answers " + a.String() + " on port 25"
				f.Detail = "Its RemoteIPRanges match this address most specifically, so its permissions decide whether the prober may relay (" + relayVerdict(s, c) + ")."
			}
			fs = append(fs, f)
		}
	}
	if s.Loader == "snapin" {
		fs = append(fs, Finding{ID: FindExchLoader, Severity: SeverityInfo, Setting: "Loader", Value: s.Loader,
			Title:       "Exchange cmdlets were loaded from the local snap-in",
			Detail:      "Connect-ExchangeServer failed, so the unsupported local snap-in was used (it bypasses RBAC); relaylock reads through it but changes nothing through it unless forced. " + strings.Join(s.Warnings, " "),
			Remediation: "Make the Exchange remote shell work (http://<server>/PowerShell/, the Microsoft.Exchange session configuration), then run relaylock again."})
	}
	return fs
}

func relayVerdict(s *ExchangeState, c *ExchangeConnector) string {
	switch {
	case c.HasAnonymousRelay(s.AnonymousName, false):
		return "it grants anonymous relay"
	case c.HasAuth("ExternalAuthoritative"):
		return "it is ExternalAuthoritative: relay allowed"
	default:
		return "it does not grant anonymous relay"
	}
}

func enabledNote(c ExchangeConnector) string {
	if c.Enabled {
		return ""
	}
	return " The connector is disabled, so this has no effect until it is enabled."
}

func wildcardNote(relay bool) string {
	if relay {
		return "As a relay domain it makes Exchange accept and forward mail to any such domain from anyone: an open relay."
	}
	return "As an authoritative domain Exchange accepts such mail for local delivery and bounces it (backscatter), but does not relay it."
}

// exIsBroadDomain flags "*" and wildcards one label below a public suffix
// level ("*.com", "*.co.uk"-style: at most two labels after "*.").
func exIsBroadDomain(d string) bool {
	d = strings.TrimSpace(strings.ToLower(d))
	if d == "*" {
		return true
	}
	if !strings.HasPrefix(d, "*.") {
		return false
	}
	labels := strings.Split(strings.TrimPrefix(d, "*."), ".")
	return len(labels) == 1 || (len(labels) == 2 && len(labels[0]) <= 3)
}

// expectedExchangePrincipal names the principals Exchange's own permission
// groups grant Accept-Any-Recipient to [S33].
func expectedExchangePrincipal(user string) bool {
	u := strings.ToLower(user)
	for _, s := range []string{`\exchange servers`, `\externally secured servers`, `\hub transport servers`,
		`\edge transport servers`, `\legacy exchange servers`} {
		if strings.HasSuffix(u, s) {
			return true
		}
	}
	return false
}
