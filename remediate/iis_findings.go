package remediate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// IIS settings rows and findings: what an Inspection shows of an IISState,
// and the root causes it names.

// --- settings rows ----------------------------------------------------------

// Setting names of the relay properties.
const (
	SettingRelayIpList    = "RelayIpList"     // readable: mode and entries
	SettingRelayIpListRaw = "RelayIpList.raw" // NULL, EMPTY or hex: exact
	SettingRelayForAuth   = "RelayForAuth"
	SettingRouteAction    = "RouteAction"
)

// DescribeBlob is the canonical readable value of a RelayIpList: its
// decoded entries in normalized order, so that two values that differ only
// in how they are stored (entry order) read the same; the raw row keeps
// the exact bytes.
func DescribeBlob(b RelayListBlob) string {
	l, err := b.Decode()
	if err != nil {
		return "undecodable: " + err.Error()
	}
	return l.Normalize().Describe()
}

func relayRows(object string, b RelayListBlob, rfa int64) []Setting {
	return []Setting{
		{object, SettingRelayIpList, DescribeBlob(b)},
		{object, SettingRelayIpListRaw, b.String()},
		{object, SettingRelayForAuth, strconv.FormatInt(rfa, 10)},
	}
}

// IISSettings returns the settings rows of st, in a fixed order.
func IISSettings(st IISState) []Setting {
	var rows []Setting
	svc := "Service " + st.Service.Name
	rows = append(rows, Setting{svc, "Present", strconv.FormatBool(st.Service.Present)})
	if st.Service.Present {
		rows = append(rows, Setting{svc, "State", st.Service.State}, Setting{svc, "StartMode", st.Service.StartMode})
	}
	if st.Guest != nil {
		rows = append(rows, Setting{"Account " + st.Guest.Name, "Enabled", strconv.FormatBool(st.Guest.Enabled)})
	}
	if st.ServiceLevel != nil {
		rows = append(rows, relayRows(st.ServiceLevel.Name, st.ServiceLevel.RelayIpList, st.ServiceLevel.RelayForAuth)...)
	}
	for _, vs := range st.Servers {
		rows = append(rows, relayRows(vs.Name, vs.RelayIpList, vs.RelayForAuth)...)
		if from := st.relayFromText(vs); from != "" {
			rows = append(rows, Setting{vs.Name, SettingRelayIpListFrom, from})
		}
		rows = append(rows,
			Setting{vs.Name, "AuthAnonymous", strconv.FormatBool(vs.AuthAnonymous)},
			Setting{vs.Name, "AuthBasic", strconv.FormatBool(vs.AuthBasic)},
			Setting{vs.Name, "AuthNTLM", strconv.FormatBool(vs.AuthNTLM)},
			Setting{vs.Name, "SmartHost", vs.SmartHost},
			Setting{vs.Name, "SmartHostType", strconv.FormatInt(vs.SmartHostType, 10)},
		)
		if v, ok := st.adsiFor(vs.Name); ok {
			rows = append(rows, Setting{vs.Name, "RelayIpList.adsi", v.Describe()})
		}
		if eff, inherited := st.EffectiveRelayList(vs); inherited {
			rows = append(rows, Setting{vs.Name, "RelayIpList.effective", DescribeBlob(eff) + " (inherited from " + st.ServiceLevel.Name + ")"})
		}
	}
	for _, d := range st.Domains {
		rows = append(rows,
			Setting{d.Name, SettingRouteAction, strconv.FormatInt(d.RouteAction, 10)},
			Setting{d.Name, "RelayAllowed", strconv.FormatBool(d.RelayAllowed())},
		)
	}
	return rows
}

// SettingRelayIpListFrom says whether a virtual server's RelayIpList is its
// own or inherited from the service level.
const SettingRelayIpListFrom = "RelayIpList.from"

func (st IISState) relayFromText(vs IISVirtualServer) string {
	svc := "the service level"
	if st.ServiceLevel != nil {
		svc = st.ServiceLevel.Name
	}
	switch vs.RelayIpListFrom {
	case RelayFromOwn:
		return "own value"
	case RelayFromInherited:
		return "inherited from " + svc + " (no value of its own)"
	case RelayFromUnknown:
		return "unknown: the same value as " + svc + ", and IIS (ADSI) could not say whether it is the server's own"
	}
	return ""
}

// --- findings ----------------------------------------------------------------

// Finding IDs of the IIS driver. The Exchange 2003 driver reports the same
// causes with the prefix "EX2003-" instead of "IIS-".
const (
	FindingAllExceptEmpty = "RELAY-ALL-EXCEPT-EMPTY"     // zero-length RelayIpList: everyone relays
	FindingGrantEveryone  = "RELAY-GRANT-EVERYONE"       // grant entry with mask 0.0.0.0
	FindingGrantProber    = "RELAY-GRANT-PROBER"         // grant list covers the prober
	FindingDenyList       = "RELAY-DENY-LIST"            // all except a deny list
	FindingUndecodable    = "RELAY-LIST-UNDECODABLE"     // RelayIpList not understood
	FindingDomainWildcard = "RELAY-DOMAIN-WILDCARD"      // remote domain * (or *.tld) with relay
	FindingDomainRelay    = "RELAY-DOMAIN"               // remote domain with relay
	FindingAuthGuest      = "RELAY-AUTH-GUEST"           // RelayForAuth + Basic + Guest enabled
	FindingBroadRange     = "RELAY-BROAD-RANGE"          // grant entry wider than /16
	FindingRestricted     = "RELAY-RESTRICTED"           // info: relay restricted
	FindingDecodeMismatch = "RELAY-LIST-DECODE-MISMATCH" // ADSI reads the list differently
	FindingUnsorted       = "RELAY-LIST-UNSORTED"        // addresses not in ascending order
)

// broadGrantPrefix: grant entries with a shorter prefix (more than 65536
// addresses, or a non-contiguous mask) are reported as broad.
const broadGrantPrefix = 16

func anyAllowed(l RelayList, prober []netip.Addr) bool {
	for _, p := range prober {
		if l.Allows(p) {
			return true
		}
	}
	return false
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// relayListFindings names the causes in one effective RelayIpList, plus
// FindingUnsorted when its addresses are out of order.
// prefix is "IIS-" or "EX2003-"; where names the object for the texts.
func relayListFindings(prefix, object string, b RelayListBlob, inheritedFrom string, prober []netip.Addr, fix string) []Finding {
	fs := relayListCauses(prefix, object, b, inheritedFrom, prober, fix)
	if l, err := b.Decode(); err == nil && !l.StoredSorted() {
		fs = append(fs, Finding{
			ID: prefix + FindingUnsorted, Title: "Relay list addresses are not in ascending order", Severity: SeverityLow,
			Object: object, Setting: SettingRelayIpList, Value: l.Describe(),
			Detail: "The addresses under one mask are stored out of ascending order (as some public scripts write them). IIS is believed to binary-search them (UNVERIFIED), " +
				"so some listed clients may be refused relay: this fails closed, no other address gains relay.",
			Remediation: "Run relaylock remediate with the clients that must relay: it rewrites the list in order. Or re-enter the list in the Relay dialog.",
		})
	}
	return fs
}

func relayListCauses(prefix, object string, b RelayListBlob, inheritedFrom string, prober []netip.Addr, fix string) []Finding {
	value := b.String()
	detailSuffix := ""
	if inheritedFrom != "" {
		detailSuffix = " The virtual server has no value of its own and inherits this one from " + inheritedFrom + "."
	}
	l, err := b.Decode()
	if err != nil {
		return []Finding{{
			ID: prefix + FindingUndecodable, Title: "Relay restriction list could not be decoded", Severity: SeverityMedium,
			Object: object, Setting: SettingRelayIpList, Value: value,
			Detail:      "RelayIpList does not follow the IPSECLIST layout relaylock knows (" + err.Error() + "); its effect cannot be judged from the settings. Rely on the external probe." + detailSuffix,
			Remediation: fix,
		}}
	}
	desc := l.Describe()
	switch {
	case !l.Null && l.GrantByDefault && len(l.Deny) == 0:
		return []Finding{{
			ID: prefix + FindingAllExceptEmpty, Title: "Relay allowed for all computers (\"All except the list below\" with an empty list)", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: len(prober) > 0,
			Detail:      "RelayIpList is set to a zero-length value, which IIS shows as \"All except the list below\" with nothing listed: every client may relay mail to any domain without authenticating. This is an open relay." + detailSuffix,
			Remediation: fix,
		}}
	case l.IsOpenToAll():
		return []Finding{{
			ID: prefix + FindingGrantEveryone, Title: "Relay allowed for every address (grant entry 0.0.0.0 mask 0.0.0.0)", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: len(prober) > 0,
			Detail:      "The relay grant list contains an entry whose mask is 0.0.0.0, which matches every client address. This is an open relay." + detailSuffix,
			Remediation: fix,
		}}
	case l.GrantByDefault:
		covered := anyAllowed(l, prober)
		d := "RelayIpList is \"All except the list below\": every client not on the deny list may relay (" + desc + ")."
		if covered {
			d += " The probe address(es) " + addrList(prober) + " are not on the deny list."
		}
		return []Finding{{
			ID: prefix + FindingDenyList, Title: "Relay allowed for all computers except a deny list", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: covered,
			Detail: d + detailSuffix, Remediation: fix,
		}}
	}
	var fs []Finding
	if !l.Null && anyAllowed(l, prober) {
		var hit []string
		for _, p := range prober {
			for _, g := range l.Grant {
				if g.Contains(p) {
					hit = append(hit, p.String()+" in "+g.String())
					break
				}
			}
		}
		fs = append(fs, Finding{
			ID: prefix + FindingGrantProber, Title: "Relay grant list covers the probe address", Severity: SeverityHigh,
			Object: object, Setting: SettingRelayIpList, Value: desc, Explains: true,
			Detail:      "The relay grant list lets the address the external probe came from relay (" + strings.Join(hit, "; ") + "). If the probe ran from outside the organisation, the list is too wide." + detailSuffix,
			Remediation: fix,
		})
	}
	var broad []string
	for _, g := range l.Grant {
		if n := g.PrefixLen(); n < broadGrantPrefix && n != 0 { // /0 is FindingGrantEveryone
			broad = append(broad, g.String())
		}
	}
	if len(broad) > 0 {
		fs = append(fs, Finding{
			ID: prefix + FindingBroadRange, Title: "Relay allowed for a whole network range", Severity: SeverityMedium,
			Object: object, Setting: SettingRelayIpList, Value: desc,
			Detail: fmt.Sprintf("The relay grant list holds ranges wider than /%d (%s): every host in them may relay without authenticating, so one compromised machine there can send spam through this server.",
				broadGrantPrefix, strings.Join(broad, ", ")) + detailSuffix,
			Remediation: "Narrow the list to the application servers and devices that send mail.",
		})
	}
	if len(fs) > 0 {
		return fs
	}
	return []Finding{{
		ID: prefix + FindingRestricted, Title: "Relay restricted by address list", Severity: SeverityInfo,
		Object: object, Setting: SettingRelayIpList, Value: desc,
		Detail: "Only the listed clients may relay without authenticating: " + desc + "." + detailSuffix,
	}}
}

func domainFindings(prefix string, domains []IISDomain, fix string) []Finding {
	var fs []Finding
	for _, d := range domains {
		if !d.RelayAllowed() {
			continue
		}
		name := d.DomainName()
		val := fmt.Sprintf("%d (0x%X)", d.RouteAction, d.RouteAction)
		if name == "*" || (strings.HasPrefix(name, "*.") && !strings.Contains(name[2:], ".")) {
			fs = append(fs, Finding{
				ID: prefix + FindingDomainWildcard, Title: "Remote domain " + name + " allows relaying to every matching domain", Severity: SeverityHigh,
				Object: d.Name, Setting: SettingRouteAction, Value: val, Explains: name == "*",
				Detail:      "The remote domain " + name + " has \"Allow incoming mail to be relayed to this domain\" set. It overrides the relay restrictions of the Access tab for every recipient domain it matches, so anyone can relay through it.",
				Remediation: fix,
			})
			continue
		}
		fs = append(fs, Finding{
			ID: prefix + FindingDomainRelay, Title: "Remote domain " + name + " allows relaying to it", Severity: SeverityMedium,
			Object: d.Name, Setting: SettingRouteAction, Value: val,
			Detail:      "The remote domain " + name + " has \"Allow incoming mail to be relayed to this domain\" set: anyone may relay mail to " + name + " through this server, whatever the relay restrictions say. This is only intended for backup MX or internal forwarding.",
			Remediation: fix,
		})
	}
	return fs
}

func authGuestFinding(prefix string, st IISState, vs IISVirtualServer) []Finding {
	if vs.RelayForAuth == 0 || !vs.AuthBasic || st.Guest == nil || !st.Guest.Enabled {
		return nil
	}
	return []Finding{{
		ID: prefix + FindingAuthGuest, Title: "Authenticated relay with Basic authentication while the Guest account is enabled", Severity: SeverityMedium,
		Object: vs.Name, Setting: SettingRelayForAuth, Value: strconv.FormatInt(vs.RelayForAuth, 10),
		Detail:      "\"Allow all computers which successfully authenticate to relay\" is on, Basic authentication is offered and the local Guest account (" + st.Guest.Name + ") is enabled. Spammers brute-force SMTP AUTH, and an enabled Guest account can let a failed login still relay: relaylock audit --auth-tests shows whether it does (tests A41b, A41c).",
		Remediation: "Disable the Guest account; turn off authenticated relay (RelayForAuth) unless clients need it; offer Basic authentication only over TLS.",
	}}
}

const iisFixText = "Run relaylock remediate: it sets \"Only the list below\" with the allowed clients " + FixTextLoopback + ", keeps or clears authenticated relay as requested, and proves the result with a re-probe."

// iisFindings names every cause in st.
func iisFindings(prefix string, st IISState, prober []netip.Addr, fix string) []Finding {
	var fs []Finding
	for _, vs := range st.Servers {
		eff, inherited := st.EffectiveRelayList(vs)
		from := ""
		if inherited {
			from = st.ServiceLevel.Name
		}
		fs = append(fs, relayListFindings(prefix, vs.Name, eff, from, prober, fix)...)
		if _, ok := st.adsiFor(vs.Name); ok {
			if mm := st.adsiMismatchOf(vs); mm != "" {
				fs = append(fs, Finding{
					ID: prefix + FindingDecodeMismatch, Title: "IIS reads the relay list differently from relaylock", Severity: SeverityMedium,
					Object: vs.Name, Setting: SettingRelayIpList, Value: vs.RelayIpList.String(),
					Detail:      "IIS's own reading of RelayIpList (ADSI IIsIPSecurity) differs from relaylock's decoding of the stored bytes: " + mm + ". Parts of the IPSECLIST layout are inferred from public samples; trust the ADSI view and the external probe. relaylock will not write hand-built bytes to this server unless forced.",
					Remediation: "Check the Relay dialog of the virtual server, and report the RelayIpList value to the relaylock maintainers.",
				})
			}
		}
		fs = append(fs, authGuestFinding(prefix, st, vs)...)
	}
	fs = append(fs, domainFindings(prefix, st.Domains, "Clear \"Allow incoming mail to be relayed to this domain\" on the remote domain unless it is a domain this server is a backup MX for (relaylock clears it when the operator asks to fix relay domains).")...)
	return fs
}
