package remediate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// Go mirrors of what the iis-*, ex2003-* and exchange-* scripts print and
// exchange-write reads, for the round-trip and field-name tests of this
// package only. The lab (internal/lab) has its own, written from the
// scripts, and the decoders are also checked against host output written
// by hand (testdata/hostoutput).

func setBlob(r *psframe.Record, name string, b RelayListBlob) {
	switch {
	case b.Null:
		r.SetNull(name)
	case len(b.Bytes) == 0:
		r.Set(name, "")
	default:
		r.Set(name, b.String())
	}
}

func boolText(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// iisServiceRecord is the "service" record for a Windows service.
func iisServiceRecord(s ServiceInfo) psframe.Record {
	r := psframe.NewRecord(iisRecService).Set("name", s.Name).Set("present", boolText(s.Present)).
		Set("state", s.State).Set("startmode", s.StartMode)
	return *r
}

// iisServiceLevelRecord is the "svc" record of the service level, as
// iis-read and iis-write print it.
func iisServiceLevelRecord(s IISRelaySettings) psframe.Record {
	r := psframe.NewRecord(iisRecSvc).Set("name", s.Name)
	setBlob(r, "relayiplist", s.RelayIpList)
	r.Set("relayforauth", strconv.FormatInt(s.RelayForAuth, 10))
	return *r
}

// iisServerRecord is the "vs" record for one virtual server, as iis-read
// and iis-write print it.
func iisServerRecord(vs IISVirtualServer) psframe.Record {
	r := psframe.NewRecord(iisRecVS).Set("name", vs.Name).Set("comment", vs.Comment)
	setBlob(r, "relayiplist", vs.RelayIpList)
	r.Set("relayforauth", strconv.FormatInt(vs.RelayForAuth, 10))
	if vs.AuthFlags == "" {
		r.SetNull("authflags")
	} else {
		r.Set("authflags", vs.AuthFlags)
	}
	r.Set("authanonymous", boolText(vs.AuthAnonymous)).Set("authbasic", boolText(vs.AuthBasic)).
		Set("authntlm", boolText(vs.AuthNTLM)).Set("smarthost", vs.SmartHost).
		Set("smarthosttype", strconv.FormatInt(vs.SmartHostType, 10))
	return *r
}

// iisDomainRecord is the "domain" record for one domain object.
func iisDomainRecord(d IISDomain) psframe.Record {
	r := psframe.NewRecord(iisRecDomain).Set("name", d.Name).Set("routeaction", strconv.FormatInt(d.RouteAction, 10)).
		Set("relayforauth", strconv.FormatInt(d.RelayForAuth, 10))
	setBlob(r, "relayiplist", d.RelayIpList)
	return *r
}

// encodeIISState returns the records iis-read prints for st.
func encodeIISState(st IISState) []psframe.Record {
	recs := []psframe.Record{iisServiceRecord(st.Service)}
	if st.Guest != nil {
		recs = append(recs, *psframe.NewRecord(iisRecGuest).Set("name", st.Guest.Name).Set("enabled", boolText(st.Guest.Enabled)))
	}
	if st.ServiceLevel != nil {
		recs = append(recs, iisServiceLevelRecord(*st.ServiceLevel))
	}
	for _, vs := range st.Servers {
		recs = append(recs, iisServerRecord(vs))
	}
	for _, d := range st.Domains {
		recs = append(recs, iisDomainRecord(d))
	}
	for _, v := range st.ADSI {
		recs = append(recs, iisADSIRecord(v))
	}
	return recs
}

// iisADSIRecord is the "adsi" record iis-read prints for one virtual
// server: name and error on failure, else present, grantbydefault and the
// IPGrant / IPDeny strings joined by newlines.
func iisADSIRecord(v IISADSIView) psframe.Record {
	r := psframe.NewRecord(iisRecADSI).Set("name", v.Name)
	if v.Error != "" {
		r.Set("error", v.Error)
		return *r
	}
	if v.Own == nil {
		r.SetNull("own")
	} else {
		r.Set("own", boolText(*v.Own))
	}
	r.Set("present", boolText(v.Present))
	if v.Present {
		r.Set("grantbydefault", boolText(v.GrantByDefault)).SetList("ipgrant", v.IPGrant).SetList("ipdeny", v.IPDeny)
	}
	return *r
}

// ex2003ADRecord is the "advs" record both AD scripts print.
func ex2003ADRecord(a Ex2003ADServer) psframe.Record {
	r := psframe.NewRecord(recADVS).Set("dn", a.DN)
	setBlob(r, "relayiplist", a.RelayIpList)
	for _, f := range [][2]string{{"relayforauth", a.RelayForAuth}, {"authflags", a.AuthFlags}, {"smarthost", a.SmartHost}} {
		if f[1] == "" {
			r.SetNull(f[0])
		} else {
			r.Set(f[0], f[1])
		}
	}
	return *r
}

// encodeExchangeState builds the records exchange-read prints for s, in
// the script's order. The lab uses it to answer exchange-read, so the
// driver's decoder is tested against exactly this format.
func encodeExchangeState(s *ExchangeState) []psframe.Record {
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

// decodeExchangeOps reverses encodeExchangeOps, reading parameters the way
// exchange-write does (lists split on newlines, items trimmed, empty items
// dropped). The lab uses it.
func decodeExchangeOps(p map[string]string) ([]exchangeOp, error) {
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
	ops := make([]exchangeOp, 0, n)
	for i := 1; i <= n; i++ {
		pre := "op" + strconv.Itoa(i) + "_"
		op := exchangeOp{Kind: p[pre+"kind"], Identity: p[pre+"identity"], Name: p[pre+"name"],
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
