package lab

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// exchange-write's parameters, read by the lab as the script reads them
// (templates/powershell/exchange-write.ps1: "ops" and op<i>_<field>; lists
// newline-joined, each item trimmed, empty items dropped, RLX-List), not
// with the driver's decoder: the lab checks what the driver sends.

// Operation kinds (op<i>_kind) and set-connector fields (op<i>_set), as the
// script's header lists them.
const (
	exOpNewConnector    = "new-connector"
	exOpSetConnector    = "set-connector"
	exOpRemoveConnector = "remove-connector"
	exOpAddACE          = "add-ace"
	exOpRemoveACE       = "remove-ace"
	exOpSetDomain       = "set-domain"
	exOpNewDomain       = "new-domain"
	exOpRemoveDomain    = "remove-domain"

	exFieldEnabled  = "enabled"
	exFieldBindings = "bindings"
	exFieldRanges   = "ranges"
	exFieldAuth     = "auth"
	exFieldGroups   = "groups"
)

// exOp is one operation as the script sees it in $P.
type exOp struct {
	Kind, Identity                 string
	Name, Server, Role, Comment    string // new-connector
	Set                            []string
	Enabled                        bool
	Bindings, Ranges, Auth, Groups []string
	User, SID                      string // add-ace, remove-ace
	DomainName, DomainType         string // set-domain, new-domain (name: Name)
	err                            error  // raised when the operation runs
}

// psList is RLX-List: the value split on newlines, items trimmed, empty
// ones dropped.
func psList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, "\n") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// exWriteOps reads the operations. [int]$P['ops'] fails the whole run on
// a value that is not a number ($null and ” are 0); a set-connector whose
// enabled value [bool]::Parse refuses fails when that operation runs.
func exWriteOps(p map[string]string) ([]exOp, error) {
	v := strings.TrimSpace(p["ops"])
	n := 0
	if v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf(`Cannot convert value "%s" to type "System.Int32". Error: "Input string was not in a correct format."`, p["ops"])
		}
	}
	var ops []exOp
	for i := 1; i <= n; i++ {
		pre := "op" + strconv.Itoa(i) + "_"
		op := exOp{Kind: p[pre+"kind"], Identity: p[pre+"identity"], Name: p[pre+"name"], Server: p[pre+"server"],
			Role: p[pre+"role"], Comment: p[pre+"comment"], Set: psList(p[pre+"set"]),
			Bindings: psList(p[pre+"bindings"]), Ranges: psList(p[pre+"ranges"]), Auth: psList(p[pre+"auth"]),
			Groups: psList(p[pre+"groups"]), User: p[pre+"user"], SID: p[pre+"sid"],
			DomainName: p[pre+"domain"], DomainType: p[pre+"type"]}
		if op.Kind == exOpSetConnector && exContainsFold(op.Set, exFieldEnabled) {
			switch strings.ToLower(strings.TrimSpace(p[pre+"enabled"])) {
			case "true":
				op.Enabled = true
			case "false":
			default:
				op.err = fmt.Errorf(`Exception calling "Parse" with "1" argument(s): "String was not recognized as a valid Boolean."`)
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// exReadRecs is exchange-read's output for s, built from the script
// (templates/powershell/exchange-read.ps1): the loader's warnings, exinfo,
// each connector followed by its Accept-Any-Recipient ACEs, then the
// accepted domains. Lists are newline-joined; TransportRole is $null on
// Exchange 2007/2010, whose connectors have no such property; an ACE whose
// SID cannot be resolved prints a $null sid.
func exReadRecs(s *remediate.ExchangeState) []psframe.Record {
	var recs []psframe.Record
	for _, w := range s.Warnings {
		recs = append(recs, *psframe.NewRecord("warning").Set("message", w))
	}
	recs = append(recs, *psframe.NewRecord("exinfo").Set("server", s.Server).Set("loader", s.Loader).
		Set("anon_sid", s.AnonymousSID).Set("anon_name", s.AnonymousName).Set("dc", s.DomainController))
	for _, c := range s.Connectors {
		r := psframe.NewRecord("connector").Set("id", c.Identity).Set("name", c.Name).Set("server", c.Server)
		if s.RoleAware {
			r.Set("role", c.TransportRole)
		} else {
			r.SetNull("role")
		}
		recs = append(recs, *r.Set("enabled", psBool(c.Enabled)).SetList("bindings", c.Bindings).
			SetList("ranges", c.RemoteIPRanges).SetList("auth", c.AuthMechanism).SetList("groups", c.PermissionGroups).
			Set("comment", c.Comment))
		for _, a := range c.AnyRecipient {
			ar := psframe.NewRecord("ace").Set("id", c.Identity).Set("user", a.User)
			setOrNull(ar, "sid", a.SID)
			recs = append(recs, *ar.Set("inherited", psBool(a.Inherited)))
		}
	}
	for _, d := range s.Domains {
		recs = append(recs, *psframe.NewRecord("domain").Set("name", d.Name).Set("domain", d.DomainName).
			Set("type", d.DomainType).Set("default", psBool(d.Default)))
	}
	return recs
}
