package remediate

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// The wire formats of the IIS scripts: the records iis-read prints, decoded
// into IISState (iis.go). Record and field names are listed in the script's
// header (templates/powershell/).

// --- records ----------------------------------------------------------------

func getBlob(r psframe.Record, name string) (RelayListBlob, error) {
	if !r.Has(name) {
		return RelayListBlob{}, fmt.Errorf("record %s: field %s missing", r.Type, name)
	}
	if r.IsNull(name) {
		return RelayListBlob{Null: true}, nil
	}
	v := r.Str(name)
	if v == "" {
		return RelayListBlob{Bytes: []byte{}}, nil
	}
	b, err := ParseRelayListBlob(strings.ToUpper(v))
	if err != nil || b.Null || len(b.Bytes) == 0 {
		return RelayListBlob{}, fmt.Errorf("record %s: field %s: %w", r.Type, name, ErrRelayList)
	}
	return b, nil
}

func decodeADSI(r psframe.Record) (IISADSIView, error) {
	v := IISADSIView{Name: r.Str("name")}
	if r.Has("error") {
		v.Error = r.Str("error")
		if v.Error == "" {
			v.Error = "unknown ADSI error"
		}
		return v, nil
	}
	var err error
	if r.Has("own") && !r.IsNull("own") {
		own, err := r.Bool("own")
		if err != nil {
			return v, err
		}
		v.Own = &own
	}
	if v.Present, err = r.Bool("present"); err != nil || !v.Present {
		return v, err
	}
	if v.GrantByDefault, err = r.Bool("grantbydefault"); err != nil {
		return v, err
	}
	v.IPGrant, v.IPDeny = r.List("ipgrant"), r.List("ipdeny")
	return v, nil
}

func decodeServer(r psframe.Record) (IISVirtualServer, error) {
	var vs IISVirtualServer
	var err error
	vs.Name = r.Str("name")
	if vs.Name == "" {
		return vs, errors.New("record vs: empty name")
	}
	vs.Comment = r.Str("comment")
	if vs.RelayIpList, err = getBlob(r, "relayiplist"); err != nil {
		return vs, err
	}
	if vs.RelayForAuth, err = intOrZero(r, "relayforauth"); err != nil {
		return vs, err
	}
	vs.AuthFlags = r.Str("authflags")
	if vs.AuthAnonymous, err = boolOrFalse(r, "authanonymous"); err != nil {
		return vs, err
	}
	if vs.AuthBasic, err = boolOrFalse(r, "authbasic"); err != nil {
		return vs, err
	}
	if vs.AuthNTLM, err = boolOrFalse(r, "authntlm"); err != nil {
		return vs, err
	}
	vs.SmartHost = r.Str("smarthost")
	if vs.SmartHostType, err = intOrZero(r, "smarthosttype"); err != nil {
		return vs, err
	}
	return vs, nil
}

func decodeDomain(r psframe.Record) (IISDomain, error) {
	var d IISDomain
	var err error
	if d.Name = r.Str("name"); d.Name == "" {
		return d, errors.New("record domain: empty name")
	}
	if d.RouteAction, err = intOrZero(r, "routeaction"); err != nil {
		return d, err
	}
	if d.RelayForAuth, err = intOrZero(r, "relayforauth"); err != nil {
		return d, err
	}
	if d.RelayIpList, err = getBlob(r, "relayiplist"); err != nil {
		return d, err
	}
	return d, nil
}

// intOrZero reads an integer field; $null (a WMI property never set)
// reads as 0, the metabase default.
func intOrZero(r psframe.Record, name string) (int64, error) {
	if r.IsNull(name) || (r.Has(name) && strings.TrimSpace(r.Str(name)) == "") {
		return 0, nil
	}
	return r.Int(name)
}

func boolOrFalse(r psframe.Record, name string) (bool, error) {
	if r.IsNull(name) {
		return false, nil
	}
	return r.Bool(name)
}

// DecodeIISState reads iis-read's records.
func DecodeIISState(out *psframe.Output) (IISState, error) {
	var st IISState
	if out == nil {
		return st, errors.New("no script output")
	}
	for _, r := range out.Records {
		switch r.Type {
		case iisRecService:
			present, err := r.Bool("present")
			if err != nil {
				return st, err
			}
			st.Service = ServiceInfo{Name: r.Str("name"), Present: present, State: r.Str("state"), StartMode: r.Str("startmode")}
		case iisRecGuest:
			en, err := r.Bool("enabled")
			if err != nil {
				return st, err
			}
			st.Guest = &GuestAccount{Name: r.Str("name"), Enabled: en}
		case iisRecSvc:
			b, err := getBlob(r, "relayiplist")
			if err != nil {
				return st, err
			}
			rfa, err := intOrZero(r, "relayforauth")
			if err != nil {
				return st, err
			}
			st.ServiceLevel = &IISRelaySettings{Name: r.Str("name"), RelayIpList: b, RelayForAuth: rfa}
		case iisRecVS:
			vs, err := decodeServer(r)
			if err != nil {
				return st, err
			}
			st.Servers = append(st.Servers, vs)
		case iisRecDomain:
			d, err := decodeDomain(r)
			if err != nil {
				return st, err
			}
			st.Domains = append(st.Domains, d)
		case iisRecADSI:
			v, err := decodeADSI(r)
			if err != nil {
				return st, err
			}
			st.ADSI = append(st.ADSI, v)
		}
	}
	sort.Slice(st.Servers, func(i, j int) bool { return st.Servers[i].Name < st.Servers[j].Name })
	sort.Slice(st.Domains, func(i, j int) bool { return st.Domains[i].Name < st.Domains[j].Name })
	for i := range st.Servers {
		v, ok := st.adsiFor(st.Servers[i].Name)
		var pv *IISADSIView
		if ok {
			pv = &v
		}
		resolveOwn(&st.Servers[i], pv, st.ServiceLevel)
	}
	return st, nil
}

// resolveOwn makes vs.RelayIpList the server's own value and sets
// RelayIpListFrom, from ADSI's "own" when IIS answered it, else from what
// the readings imply: WMI reports no value only for a server without one
// of its own; a value different from the service level's is the server's
// own; a value equal to it may be either.
func resolveOwn(vs *IISVirtualServer, adsi *IISADSIView, svc *IISRelaySettings) {
	svcSet := svc != nil && !svc.RelayIpList.Null
	switch {
	case adsi != nil && adsi.Error == "" && adsi.Own != nil && !*adsi.Own:
		if !vs.RelayIpList.Null {
			w := vs.RelayIpList
			vs.RelayIpListWMI = &w
		}
		vs.RelayIpList = RelayListBlob{Null: true}
		vs.RelayIpListFrom = RelayFromInherited
	case adsi != nil && adsi.Error == "" && adsi.Own != nil:
		vs.RelayIpListFrom = RelayFromOwn
	case vs.RelayIpList.Null:
		vs.RelayIpListFrom = RelayFromInherited
	case svcSet && vs.RelayIpList.Equal(svc.RelayIpList):
		vs.RelayIpListFrom = RelayFromUnknown
	default:
		vs.RelayIpListFrom = RelayFromOwn
	}
}
