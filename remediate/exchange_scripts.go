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
// takes (encoded from exchangeOp). Record, field and parameter names are
// listed in each script's header (templates/powershell/).

// ---- exchange-read records -------------------------------------------------

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

// encodeExchangeOps turns operations into exchange-write parameters.
func encodeExchangeOps(ops []exchangeOp) map[string]string {
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
		if op.Kind == opSetConnector && exContainsFold(op.Set, fieldEnabled) {
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
