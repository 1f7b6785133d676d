package remediate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Exchange Plan: from an inspection and the operator's Request to the
// exchange-write operations (exchangeDesired) that Apply runs.

type exchangePlanner struct {
	plan    *Plan
	desired exchangeDesired
}

func (p *exchangePlanner) add(op exchangeOp, changes ...Change) {
	var idx []int
	for _, c := range changes {
		idx = append(idx, len(p.plan.Changes))
		p.plan.Changes = append(p.plan.Changes, c)
	}
	p.desired.Ops = append(p.desired.Ops, op)
	p.desired.OpChanges = append(p.desired.OpChanges, idx)
}

func (p *exchangePlanner) note(format string, args ...any) {
	p.plan.Notes = append(p.plan.Notes, fmt.Sprintf(format, args...))
}

func exStateOf(insp *Inspection) (*ExchangeState, error) {
	if insp == nil || len(insp.State) == 0 {
		return nil, errors.New("no exchange state in the inspection")
	}
	var s ExchangeState
	if err := json.Unmarshal(insp.State, &s); err != nil {
		return nil, fmt.Errorf("exchange state: %w", err)
	}
	s.Normalize()
	return &s, nil
}

// ErrConnectorName reports a dedicated connector name Exchange would refuse.
var ErrConnectorName = errors.New("invalid receive connector name")

// CheckConnectorName refuses names Exchange cannot store: empty, longer
// than 64 characters (New-ReceiveConnector -Name: "The maximum length is
// 64 characters"), control characters, or the identity separator "\"
// (SERVER\Name). It needs no host: callers run it before connecting.
func CheckConnectorName(n string) error {
	if strings.TrimSpace(n) == "" || n != strings.TrimSpace(n) {
		return fmt.Errorf("%w: %q: empty or with leading/trailing spaces", ErrConnectorName, n)
	}
	if len([]rune(n)) > 64 {
		return fmt.Errorf("%w: %q: longer than 64 characters", ErrConnectorName, n)
	}
	for _, r := range n {
		if unicode.IsControl(r) || r == '\\' {
			return fmt.Errorf("%w: %q: contains a control character or a backslash", ErrConnectorName, n)
		}
	}
	return nil
}

// exCoveredBy reports whether every address of r lies in the union of allow.
func exCoveredBy(r AddrRange, allow []AddrRange) bool {
	var same []AddrRange
	for _, a := range allow {
		if a.From.Is4() == r.From.Is4() {
			same = append(same, a)
		}
	}
	exSortRanges(same)
	cur := r.From
	for _, a := range same {
		if cur.Less(a.From) {
			return false // sorted by From: no later range covers cur
		}
		if !a.To.Less(cur) {
			if !a.To.Less(r.To) {
				return true
			}
			cur = a.To.Next()
		}
	}
	return false
}

// exReachableBeyond reports whether a connector accepts addresses outside
// the allow list (unparsable ranges count as outside).
func exReachableBeyond(c ExchangeConnector, allow []AddrRange) bool {
	rs, bad := c.Ranges()
	if len(bad) > 0 || len(rs) == 0 {
		return len(bad) > 0
	}
	for _, r := range rs {
		if !exCoveredBy(r, allow) {
			return true
		}
	}
	return false
}

func (exchangeDriver) Plan(insp *Inspection, req Request) (*Plan, error) {
	s, err := exStateOf(insp)
	if err != nil {
		return nil, fmt.Errorf("plan exchange: %w", err)
	}
	name := req.ConnectorName
	if name == "" {
		name = defaultRelayConnectorName
	}
	if err := CheckConnectorName(name); err != nil {
		return nil, fmt.Errorf("plan exchange: %w", err)
	}
	if s.Loader == "snapin" && !req.Force {
		return nil, fmt.Errorf("plan exchange: %w", ErrUnsupportedShell)
	}
	p := &exchangePlanner{plan: &Plan{Host: insp.Host, Platform: PlatformExchange}}
	p.desired.AllowSnapin = s.Loader == "snapin"
	p.desired.DomainController = s.DomainController
	relayID := s.Server + `\` + name
	dedicated := s.Connector(relayID)
	allow := append([]AddrRange(nil), req.Allow...)
	exSortRanges(allow)

	// 1. The dedicated relay connector first, so allowed clients never lose relay.
	if len(allow) > 0 {
		if err := planDedicated(p, s, dedicated, relayID, name, allow); err != nil {
			return nil, fmt.Errorf("plan exchange: %w", err)
		}
	} else {
		p.note("The allow list is empty: no connector will let anonymous clients relay; only authenticated clients can.")
	}

	// 2. Close anonymous relay and ExternalAuthoritative on connectors reachable beyond the allow list.
	for _, c := range s.Connectors {
		if strings.EqualFold(c.Identity, relayID) {
			continue
		}
		if !exReachableBeyond(c, allow) {
			if c.HasAnonymousRelay(s.AnonymousName, false) || c.HasAuth("ExternalAuthoritative") {
				p.note("%s relays for %s only, all inside the allow list: left unchanged.", c.Identity, exCanonRanges(c.RemoteIPRanges))
			}
			continue
		}
		var keep []ExchangeACE
		var removed []ExchangeACE
		for _, a := range c.AnyRecipient {
			switch {
			case a.IsAnonymous(s.AnonymousName) && a.Inherited:
				p.note("%s inherits %s for %s from a parent object: relaylock does not change inherited permissions; remove it on the parent (the server object or its Protocols container) with Remove-ADPermission.",
					c.Identity, RightAcceptAnyRecipient, a.User)
				keep = append(keep, a)
			case a.IsAnonymous(s.AnonymousName):
				removed = append(removed, a)
			default:
				keep = append(keep, a)
			}
		}
		if len(removed) > 0 {
			// One Remove-ADPermission -User removes the right for the
			// principal, however many ACEs carry it.
			a := removed[0]
			why := "ANONYMOUS LOGON may relay through this connector, which accepts " + exCanonRanges(c.RemoteIPRanges) + ", beyond the allowed clients."
			if isDefaultFrontend(c) {
				why += " This connector receives the Internet's mail: its RemoteIPRanges stay as they are, only the relay right goes."
			}
			p.add(exchangeOp{Kind: opRemoveACE, Identity: c.Identity, User: a.User, SID: a.SID},
				Change{Object: connectorObject(c.Identity), Setting: SetAnyRecipient, Current: exCanonACEs(c.AnyRecipient),
					New: exCanonACEs(keep), Why: why})
			c.AnyRecipient = keep
		}
		if c.HasAuth("ExternalAuthoritative") {
			var auth []string
			for _, m := range c.AuthMechanism {
				if !strings.EqualFold(m, "ExternalAuthoritative") {
					auth = append(auth, m)
				}
			}
			p.add(exchangeOp{Kind: opSetConnector, Identity: c.Identity, Set: []string{fieldAuth}, Auth: auth},
				Change{Object: connectorObject(c.Identity), Setting: SetAuthMechanism, Current: exCanonSet(c.AuthMechanism, "None"),
					New: exCanonSet(auth, "None"),
					Why: "ExternalAuthoritative makes every client in " + exCanonRanges(c.RemoteIPRanges) + " a trusted server that may relay; the allowed clients relay through the dedicated connector instead."})
			if !c.HasGroup("AnonymousUsers") && exContainsInt(c.Ports(), 25) {
				p.note("%s will no longer treat its clients as Exchange servers, and its PermissionGroups (%s) do not include AnonymousUsers: Internet servers that land on it (%s) can no longer deliver anonymously. Narrow its RemoteIPRanges to the partner servers it is meant for, or disable it if Default Frontend should take that mail.",
					c.Identity, exCanonSet(c.PermissionGroups, "None"), exCanonRanges(c.RemoteIPRanges))
			}
		}
	}

	// 3. Relay and wildcard accepted domains: only with FixDomains.
	for _, d := range s.Domains {
		relayType := strings.EqualFold(d.DomainType, "InternalRelay") || strings.EqualFold(d.DomainType, "ExternalRelay")
		broad := exIsBroadDomain(d.DomainName)
		if !relayType && !broad {
			continue
		}
		if !req.FixDomains {
			if broad {
				p.note("Accepted domain %s (%s, %s) covers every recipient domain under it: remove it (relaylock does when asked to fix accepted domains).", d.Name, d.DomainName, d.DomainType)
			} else {
				p.note("Accepted domain %s (%s) is %s: Exchange relays to it from anyone, for that domain only; left unchanged (asked to fix accepted domains, relaylock makes it Authoritative).", d.Name, d.DomainName, d.DomainType)
			}
			continue
		}
		o := domainObject(d.Name)
		if broad {
			if d.Default {
				p.note("Accepted domain %s is the default domain: relaylock does not remove it; fix it by hand.", d.Name)
				continue
			}
			var chs []Change
			for _, row := range domainRows(d) {
				chs = append(chs, Change{Object: o, Setting: row.Name, Current: row.Value, New: ValueAbsent,
					Why: "Accepted domain " + d.DomainName + " matches almost every recipient domain (the operator asked to fix accepted domains)."})
			}
			p.add(exchangeOp{Kind: opRemoveDomain, Identity: d.Name}, chs...)
			continue
		}
		p.add(exchangeOp{Kind: opSetDomain, Identity: d.Name, DomainType: "Authoritative"},
			Change{Object: o, Setting: SetDomainType, Current: d.DomainType, New: "Authoritative",
				Why: "Relay domain: Exchange accepts mail for " + d.DomainName + " from anyone and forwards it (the operator asked to fix accepted domains; recipients that do not exist in Exchange will now be rejected)."})
	}

	// 4. Authenticated relay.
	if req.AllowAuthenticated {
		p.note("Authenticated clients keep relaying through the ExchangeUsers permission group (Authenticated Users holds %s on the client connectors, e.g. Client Frontend on port 587); relaylock does not change it.", RightAcceptAnyRecipient)
	} else {
		p.note("Authenticated relay was not requested, but relaylock leaves the ExchangeUsers permission group (Authenticated Users, %s) in place: removing it would stop Outlook, phones and devices from submitting mail to outside recipients. Restrict who can authenticate (accounts, Client Frontend RemoteIPRanges) instead.", RightAcceptAnyRecipient)
	}
	p.note("Exchange applies receive connector changes after Active Directory replication (no restart in Microsoft's procedure); re-probe with back-off for a few minutes before restarting MSExchangeFrontEndTransport (2013+) or MSExchangeTransport.")

	if p.plan.Desired, err = json.Marshal(p.desired); err != nil {
		return nil, fmt.Errorf("plan exchange: %w", err)
	}
	return p.plan, nil
}

// ErrForeignConnector reports a --connector-name that names an existing
// receive connector relaylock did not create: reconfiguring it as the
// dedicated relay connector would narrow its RemoteIPRanges, rebind it,
// replace its AuthMechanism and PermissionGroups and grant anonymous
// relay on it (for Default Frontend: an outage for inbound Internet mail
// and an anonymous relay right on the Internet-facing connector).
var ErrForeignConnector = errors.New("refusing to reconfigure a receive connector relaylock did not create")

// isRelaylockConnector reports whether relaylock created c: its Comment
// carries relayConnectorMarker, or (connectors made before the marker)
// it has the default dedicated name and is none of Exchange's defaults.
func isRelaylockConnector(c ExchangeConnector) bool {
	if exchangeDefaultConnector(c.Name, c.serverName()) != "" {
		return false
	}
	return strings.HasPrefix(strings.TrimSpace(c.Comment), relayConnectorMarker) ||
		strings.EqualFold(c.Name, defaultRelayConnectorName)
}

// exchangeDefaultConnector says which of the receive connectors Exchange
// setup creates on server the name is ("" for none): Default, Client
// (2007/2010); Default, Client Proxy, Default Frontend, Outbound Proxy
// Frontend, Client Frontend (2013+); Default internal receive connector
// (Edge), each followed by the server name.
func exchangeDefaultConnector(name, server string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	server = strings.ToLower(strings.TrimSpace(server))
	for _, d := range []struct{ prefix, what string }{
		{"default frontend ", "Exchange's default Internet-facing connector, which receives the Internet's mail on port 25"},
		{"outbound proxy frontend ", "Exchange's default connector for mail the Mailbox server sends out through the Front End, on port 717"},
		{"client frontend ", "Exchange's default client submission connector, on port 587"},
		{"client proxy ", "Exchange's default connector for client mail the Front End proxies, on port 465"},
		{"default internal receive connector ", "the Edge Transport server's default connector, which receives the Internet's mail"},
		{"default ", "Exchange's default receive connector, on port 25 before Exchange 2013 and port 2525 of the Mailbox server since"},
		{"client ", "Exchange's default client submission connector, on port 587"},
	} {
		if server != "" && n == d.prefix+server {
			return d.what
		}
	}
	return ""
}

// serverName is the connector's server, from its identity when Server is
// empty.
func (c ExchangeConnector) serverName() string {
	if c.Server != "" {
		return c.Server
	}
	srv, _, _ := strings.Cut(c.Identity, `\`)
	return srv
}

// checkOwnConnector refuses to reconfigure an existing connector that
// relaylock did not create (ErrForeignConnector), naming it and why.
func checkOwnConnector(c ExchangeConnector) error {
	if isRelaylockConnector(c) {
		return nil
	}
	why := "its Comment does not start with " + relayConnectorMarker + ", the mark relaylock gives the connector it creates"
	if d := exchangeDefaultConnector(c.Name, c.serverName()); d != "" {
		why = "it is " + d
	}
	return fmt.Errorf("%w: the relay connector name given names %s, and %s. As the dedicated relay connector it would get the allowed clients as its only RemoteIPRanges, new bindings, AuthMechanism and PermissionGroups, and ANONYMOUS LOGON relay. Choose a name no connector has yet (the default is %q); nothing was changed",
		ErrForeignConnector, c.Identity, why, defaultRelayConnectorName)
}

func isDefaultFrontend(c ExchangeConnector) bool {
	return strings.HasPrefix(strings.ToLower(c.Name), "default frontend") ||
		(exContainsInt(c.Ports(), 25) && strings.HasPrefix(strings.ToLower(c.Name), "default ") && !strings.EqualFold(c.TransportRole, "FrontendTransport"))
}

// dedicatedRole is the TransportRole of the dedicated connector:
// FrontendTransport where it exists [S32], HubTransport on a 2013+ server
// without it (Edge), none before 2013.
func dedicatedRole(s *ExchangeState) string {
	if !s.RoleAware {
		return ""
	}
	for _, c := range s.Connectors {
		if strings.EqualFold(c.TransportRole, "FrontendTransport") {
			return "FrontendTransport"
		}
	}
	return "HubTransport"
}

func planDedicated(p *exchangePlanner, s *ExchangeState, cur *ExchangeConnector, identity, name string, allow []AddrRange) error {
	ranges := make([]string, 0, len(allow))
	v6 := false
	for _, r := range allow {
		ranges = append(ranges, r.String())
		v6 = v6 || r.From.Is6()
	}
	// Microsoft's documented form (exchange_bindings.go).
	bindings := relayConnectorBindings(v6)
	role := dedicatedRole(s)
	// Method A of [S32]: AnonymousUsers plus the anonymous Accept-Any-Recipient
	// ACE (minimum rights; not ExternalAuthoritative). AuthMechanism is set
	// explicitly to Tls so the result does not depend on version defaults.
	want := ExchangeConnector{Identity: identity, Name: name, Server: s.Server, TransportRole: role, Enabled: true,
		Bindings: bindings, RemoteIPRanges: ranges, AuthMechanism: []string{"Tls"}, PermissionGroups: []string{"AnonymousUsers"},
		AnyRecipient: []ExchangeACE{{User: s.AnonymousName, SID: anonymousLogonSID}}}
	// Exchange refuses two connectors of a role with the same binding and
	// the same remote range, or ranges that overlap partly [S33]: say so
	// before touching the host.
	for _, c := range s.Connectors {
		if strings.EqualFold(c.Identity, identity) || !strings.EqualFold(c.TransportRole, role) {
			continue
		}
		theirs, _ := c.Ranges()
		for _, b := range bindings {
			if !exContainsFold(c.Bindings, b) {
				continue
			}
			for _, r := range allow {
				for _, x := range theirs {
					if x == r {
						return fmt.Errorf("allow entry %s on %s is already the RemoteIPRanges entry of receive connector %s: Exchange refuses a second connector with the same binding and range; remove the entry from the allow list or from %s", r, b, c.Identity, c.Identity)
					}
					if exRangesConflict(x, r) {
						return fmt.Errorf("allow entry %s on %s overlaps the RemoteIPRanges entry %s of receive connector %s without either holding the other: Exchange refuses connectors that share a binding with partly overlapping ranges; change the allow entry or %s so that one holds the other", r, b, x, c.Identity, c.Identity)
					}
				}
			}
		}
	}
	for _, n := range specificBindingNotes(s, role, identity, exCanonRanges(ranges)) {
		p.note("%s", n)
	}
	o := connectorObject(identity)
	why := "Dedicated relay connector for the allowed clients (" + exCanonRanges(ranges) + "): anonymous senders from these addresses may relay, nobody else (Microsoft's anonymous relay recipe)."
	if cur == nil {
		// New-ReceiveConnector sets everything but the ACE; add-ace makes
		// the Accept-Any-Recipient row. What the new connector inherits
		// from its parent is not planned (not relaylock's to predict).
		var chs []Change
		var ace Change
		for _, row := range connectorRows(s.RoleAware, want) {
			c := Change{Object: o, Setting: row.Name, Current: ValueAbsent, New: row.Value, Why: why}
			switch row.Name {
			case SetAnyRecipientInherited:
			case SetAnyRecipient:
				ace = c
			default:
				chs = append(chs, c)
			}
		}
		p.add(exchangeOp{Kind: opNewConnector, Name: name, Server: s.Server, Role: want.TransportRole,
			Bindings: want.Bindings, Ranges: want.RemoteIPRanges, Auth: want.AuthMechanism, Groups: want.PermissionGroups,
			Comment: relayConnectorComment}, chs...)
		p.add(exchangeOp{Kind: opAddACE, Identity: identity, User: s.AnonymousName, SID: anonymousLogonSID}, ace)
		p.plan.Created = append(p.plan.Created, o)
		return nil
	}
	if err := checkOwnConnector(*cur); err != nil {
		return err
	}
	if s.RoleAware && !strings.EqualFold(cur.TransportRole, want.TransportRole) {
		return fmt.Errorf("receive connector %s exists in the %s role, not %s: choose another connector name", identity, cur.TransportRole, want.TransportRole)
	}
	curRows := connectorRows(s.RoleAware, *cur)
	wantRows := connectorRows(s.RoleAware, want)
	op := exchangeOp{Kind: opSetConnector, Identity: identity}
	var chs []Change
	for i, row := range wantRows {
		if row.Name == SetAnyRecipient || row.Name == SetAnyRecipientInherited || row.Name == SetTransportRole || row.Value == curRows[i].Value {
			continue
		}
		chs = append(chs, Change{Object: o, Setting: row.Name, Current: curRows[i].Value, New: row.Value, Why: why})
		switch row.Name {
		case SetEnabled:
			op.Set, op.Enabled = append(op.Set, fieldEnabled), true
		case SetBindings:
			op.Set, op.Bindings = append(op.Set, fieldBindings), want.Bindings
		case SetRemoteIPRanges:
			op.Set, op.Ranges = append(op.Set, fieldRanges), want.RemoteIPRanges
		case SetAuthMechanism:
			op.Set, op.Auth = append(op.Set, fieldAuth), want.AuthMechanism
		case SetPermissionGroups:
			op.Set, op.Groups = append(op.Set, fieldGroups), want.PermissionGroups
		}
	}
	if len(op.Set) > 0 {
		p.add(op, chs...)
	}
	if !cur.HasAnonymousRelay(s.AnonymousName, false) {
		after := append(append([]ExchangeACE(nil), cur.AnyRecipient...), want.AnyRecipient[0])
		p.add(exchangeOp{Kind: opAddACE, Identity: identity, User: s.AnonymousName, SID: anonymousLogonSID},
			Change{Object: o, Setting: SetAnyRecipient, Current: exCanonACEs(cur.AnyRecipient), New: exCanonACEs(after), Why: why})
	}
	return nil
}
