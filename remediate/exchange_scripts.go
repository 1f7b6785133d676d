package remediate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// The wire formats of the Exchange scripts: the records exchange-read prints
// (decoded into ExchangeState, exchange.go) and the parameters exchange-write
// takes (encoded from ExchangeOp). Record, field and parameter names are
// listed in each script's header (templates/powershell/).

// ---- exchange-read records -------------------------------------------------

// EncodeExchangeState builds the records exchange-read prints for s, in
// the script's order. The lab uses it to answer exchange-read, so the
// driver's decoder is tested against exactly this format.
func EncodeExchangeState(s *ExchangeState) []psframe.Record {
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
		r.Set("enabled", exBool(c.Enabled)).SetList("bindings", c.Bindings).SetList("ranges", c.RemoteIPRanges).
			SetList("auth", c.AuthMechanism).SetList("groups", c.PermissionGroups).Set("comment", c.Comment)
		recs = append(recs, *r)
		for _, a := range c.AnyRecipient {
			ar := psframe.NewRecord("ace").Set("id", c.Identity).Set("user", a.User)
			if a.SID == "" {
				ar.SetNull("sid")
			} else {
				ar.Set("sid", a.SID)
			}
			recs = append(recs, *ar.Set("inherited", exBool(a.Inherited)))
		}
	}
	for _, d := range s.Domains {
		recs = append(recs, *psframe.NewRecord("domain").Set("name", d.Name).Set("domain", d.DomainName).
			Set("type", d.DomainType).Set("default", exBool(d.Default)))
	}
	return recs
}

// ErrExchangeRead reports exchange-read output that does not describe a server.
var ErrExchangeRead = errors.New("unexpected exchange-read output")

func decodeExchangeRead(out *psframe.Output) (*ExchangeState, error) {
	info, ok := out.First("exinfo")
	if !ok {
		return nil, fmt.Errorf("%w: no exinfo record", ErrExchangeRead)
	}
	s := &ExchangeState{Server: info.Str("server"), Loader: info.Str("loader"),
		AnonymousSID: info.Str("anon_sid"), AnonymousName: info.Str("anon_name"), DomainController: info.Str("dc")}
	for _, w := range out.Of("warning") {
		s.Warnings = append(s.Warnings, w.Str("message"))
	}
	idx := map[string]int{}
	for _, r := range out.Of("connector") {
		en, err := r.Bool("enabled")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExchangeRead, err)
		}
		c := ExchangeConnector{Identity: r.Str("id"), Name: r.Str("name"), Server: r.Str("server"), Enabled: en,
			Bindings: r.List("bindings"), RemoteIPRanges: r.List("ranges"),
			AuthMechanism: r.List("auth"), PermissionGroups: r.List("groups"), Comment: r.Str("comment")}
		if role, ok := r.Get("role"); ok {
			s.RoleAware = true
			c.TransportRole = role
		}
		if c.Identity == "" {
			return nil, fmt.Errorf("%w: connector without identity", ErrExchangeRead)
		}
		idx[strings.ToLower(c.Identity)] = len(s.Connectors)
		s.Connectors = append(s.Connectors, c)
	}
	// The Exchange server name is what connector identities start with;
	// it normally equals COMPUTERNAME (exinfo's server), but trust the
	// connectors when they agree on another one.
	if len(s.Connectors) > 0 {
		srv := s.Connectors[0].Server
		for _, c := range s.Connectors {
			if !strings.EqualFold(c.Server, srv) {
				srv = ""
			}
		}
		if srv != "" {
			s.Server = srv
		}
	}
	for _, r := range out.Of("ace") {
		i, ok := idx[strings.ToLower(r.Str("id"))]
		if !ok {
			return nil, fmt.Errorf("%w: permission for unknown connector %q", ErrExchangeRead, r.Str("id"))
		}
		inh, err := r.Bool("inherited")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExchangeRead, err)
		}
		s.Connectors[i].AnyRecipient = append(s.Connectors[i].AnyRecipient,
			ExchangeACE{User: r.Str("user"), SID: r.Str("sid"), Inherited: inh})
	}
	for _, r := range out.Of("domain") {
		def, err := r.Bool("default")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExchangeRead, err)
		}
		s.Domains = append(s.Domains, ExchangeAcceptedDomain{Name: r.Str("name"), DomainName: r.Str("domain"),
			DomainType: r.Str("type"), Default: def})
	}
	s.Normalize()
	return s, nil
}

// EncodeExchangeOps turns operations into exchange-write parameters.
func EncodeExchangeOps(ops []ExchangeOp) map[string]string {
	p := map[string]string{"ops": strconv.Itoa(len(ops))}
	for i, op := range ops {
		pre := "op" + strconv.Itoa(i+1) + "_"
		put := func(k, v string) {
			if v != "" {
				p[pre+k] = v
			}
		}
		put("kind", op.Kind)
		put("identity", op.Identity)
		put("name", op.Name)
		put("server", op.Server)
		put("role", op.Role)
		put("set", strings.Join(op.Set, "\n"))
		if op.Kind == OpSetConnector && exContainsFold(op.Set, FieldEnabled) {
			put("enabled", exBool(op.Enabled))
		}
		put("bindings", strings.Join(op.Bindings, "\n"))
		put("ranges", strings.Join(op.Ranges, "\n"))
		put("auth", strings.Join(op.Auth, "\n"))
		put("groups", strings.Join(op.Groups, "\n"))
		put("user", op.User)
		put("sid", op.SID)
		put("domain", op.DomainName)
		put("type", op.DomainType)
		put("comment", op.Comment)
	}
	return p
}

// ErrExchangeOps reports exchange-write parameters that do not describe operations.
var ErrExchangeOps = errors.New("malformed exchange-write parameters")

// DecodeExchangeOps reverses EncodeExchangeOps, reading parameters the way
// exchange-write does (lists split on newlines, items trimmed, empty items
// dropped). The lab uses it.
func DecodeExchangeOps(p map[string]string) ([]ExchangeOp, error) {
	n, err := strconv.Atoi(strings.TrimSpace(p["ops"]))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%w: ops=%q", ErrExchangeOps, p["ops"])
	}
	list := func(v string) []string {
		var out []string
		for _, x := range strings.Split(v, "\n") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	ops := make([]ExchangeOp, 0, n)
	for i := 1; i <= n; i++ {
		pre := "op" + strconv.Itoa(i) + "_"
		op := ExchangeOp{Kind: p[pre+"kind"], Identity: p[pre+"identity"], Name: p[pre+"name"],
			Server: p[pre+"server"], Role: p[pre+"role"], Set: list(p[pre+"set"]),
			Bindings: list(p[pre+"bindings"]), Ranges: list(p[pre+"ranges"]), Auth: list(p[pre+"auth"]),
			Groups: list(p[pre+"groups"]), User: p[pre+"user"], SID: p[pre+"sid"],
			DomainName: p[pre+"domain"], DomainType: p[pre+"type"], Comment: p[pre+"comment"]}
		if v, ok := p[pre+"enabled"]; ok {
			b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
			if err != nil {
				return nil, fmt.Errorf("%w: %senabled=%q", ErrExchangeOps, pre, v)
			}
			op.Enabled = b
		}
		ops = append(ops, op)
	}
	return ops, nil
}
