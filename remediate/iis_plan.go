package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// IIS Plan, Apply and Restore: from the operator's Request to the relay
// list and domain writes (IISDesired, iis.go) and back.

// DesiredRelayList is the list a plan writes for req: "Only the list
// below" with the allowed clients, plus 127.0.0.1 unless NoLoopback.
// IIS relay lists hold IPv4 only; ranges are split into prefixes. flags
// are the existing header flags to keep. With nothing to list the result
// is the unset (null) property: only authenticated clients may relay.
func DesiredRelayList(req Request, flags uint32) (RelayList, error) {
	var grant []IPMask
	if !req.NoLoopback {
		grant = append(grant, IPMask{IP: [4]byte{127, 0, 0, 1}, Mask: [4]byte{255, 255, 255, 255}})
	}
	for _, a := range req.Allow {
		if !a.From.Is4() {
			return RelayList{}, fmt.Errorf("allow entry %s: IIS SMTP relay restrictions hold IPv4 addresses only", a)
		}
		for _, p := range rangePrefixes4(a.From, a.To) {
			m, err := IPMaskFromPrefix(p)
			if err != nil {
				return RelayList{}, err
			}
			grant = append(grant, m)
		}
	}
	if len(grant) == 0 {
		return RelayList{Null: true}, nil
	}
	if flags == 0 {
		flags = relayListDefaultFlags
	}
	return RelayList{Grant: grant, Flags: flags}.Normalize(), nil
}

// rangePrefixes4 splits an inclusive IPv4 range into CIDR prefixes.
func rangePrefixes4(from, to netip.Addr) []netip.Prefix {
	f := uint64(u32of(from))
	t := uint64(u32of(to))
	var ps []netip.Prefix
	for f <= t {
		bits := 32
		for bits > 0 {
			size := uint64(1) << (32 - (bits - 1))
			if f%size != 0 || f+size-1 > t {
				break
			}
			bits--
		}
		var b [4]byte
		b[0], b[1], b[2], b[3] = byte(f>>24), byte(f>>16), byte(f>>8), byte(f)
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4(b), bits))
		f += uint64(1) << (32 - bits)
	}
	return ps
}

func u32of(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func rfaWanted(req Request) int64 {
	if req.AllowAuthenticated {
		return relayForAuthEnabled
	}
	return RelayForAuthDisabled
}

// relayTarget is one relay object (virtual server or AD object) to plan.
type relayTarget struct {
	object string
	cur    RelayListBlob
	rfa    int64
	// inherits describes the inherited value the server enforces while
	// cur is unset ("" when none): shown in the plan's current value.
	inherits string
}

// relayTargetOf is the relay target of a virtual server.
func (st IISState) relayTargetOf(vs IISVirtualServer) relayTarget {
	t := relayTarget{object: vs.Name, cur: vs.RelayIpList, rfa: vs.RelayForAuth}
	if eff, inherited := st.EffectiveRelayList(vs); inherited {
		t.inherits = DescribeBlob(eff) + ", inherited from " + st.ServiceLevel.Name
	}
	return t
}

// planRelay computes the values to write and the changes for one relay
// object; no changes when it already matches the request.
func planRelay(t relayTarget, req Request, why string) (want RelayListBlob, wantRFA int64, changes []Change, notes []string, err error) {
	curList, decErr := t.cur.Decode()
	flags := uint32(0)
	if decErr == nil {
		flags = curList.Flags
	}
	wl, err := DesiredRelayList(req, flags)
	if err != nil {
		return want, 0, nil, nil, err
	}
	if wl.Null {
		notes = append(notes, t.object+": no client to list (no --allow and --no-loopback): RelayIpList is cleared to the unset value (\"Only the list below\", empty); clearing through WMI ($null + Put) is UNVERIFIED")
	}
	if want, err = BlobOf(wl); err != nil {
		return want, 0, nil, nil, err
	}
	for _, g := range wl.Grant {
		if g.PrefixLen() != 32 {
			notes = append(notes, t.object+": "+g.String()+" is not a single host; the IPSECLIST encoding of masks other than /32 is UNVERIFIED (confirm with the re-probe and the Relay dialog)")
			break
		}
	}
	// A list with the requested entries is still rewritten when its
	// addresses are out of order (relayListSorted).
	sameList := decErr == nil && curList.Equal(wl) && curList.StoredSorted()
	if sameList {
		want = t.cur // keep the exact bytes: nothing to write
	} else {
		cur := DescribeBlob(t.cur)
		if t.inherits != "" {
			cur += " (enforces " + t.inherits + ")"
		}
		changes = append(changes,
			Change{Object: t.object, Setting: SettingRelayIpList, Current: cur, New: DescribeBlob(want), Why: why},
			Change{Object: t.object, Setting: SettingRelayIpListRaw, Current: t.cur.String(), New: want.String(), Why: "exact value written (IPSECLIST blob)"})
	}
	wantRFA = rfaWanted(req)
	if (t.rfa != 0) == (wantRFA != 0) {
		wantRFA = t.rfa // already as requested (any non-zero value is enabled)
	} else {
		w := "authenticated relay not requested (--allow-authenticated not given)"
		if req.AllowAuthenticated {
			w = "authenticated clients may relay (--allow-authenticated)"
		}
		changes = append(changes, Change{Object: t.object, Setting: SettingRelayForAuth, Current: strconv.FormatInt(t.rfa, 10), New: strconv.FormatInt(wantRFA, 10), Why: w})
	}
	return want, wantRFA, changes, notes, nil
}

func allowWhy(req Request) string {
	var s []string
	if !req.NoLoopback {
		s = append(s, "127.0.0.1")
	}
	for _, a := range req.Allow {
		s = append(s, a.String())
	}
	if len(s) == 0 {
		return "restrict relay to authenticated clients"
	}
	return "restrict unauthenticated relay to " + strings.Join(s, ", ")
}

func planDomains(st IISState, req Request, p *Plan, desired *[]IISDomainWrite) {
	for _, d := range st.Domains {
		if !d.RelayAllowed() {
			continue
		}
		if !req.FixDomains {
			p.Notes = append(p.Notes, fmt.Sprintf("remote domain %s (%s) allows relaying to it (RouteAction %d); not changed unless the operator asks to fix relay domains", d.DomainName(), d.Name, d.RouteAction))
			continue
		}
		n := d.RouteAction &^ routeActionDomainRelay
		*desired = append(*desired, IISDomainWrite{Name: d.Name, RouteAction: n})
		p.Changes = append(p.Changes, Change{Object: d.Name, Setting: SettingRouteAction, Current: strconv.FormatInt(d.RouteAction, 10), New: strconv.FormatInt(n, 10),
			Why: "clear \"Allow incoming mail to be relayed to this domain\" (the operator asked to fix relay domains)"})
	}
}

func guestNotes(st IISState, p *Plan) {
	if st.Guest != nil && st.Guest.Enabled {
		p.Notes = append(p.Notes, "the local Guest account ("+st.Guest.Name+") is enabled: disable it (relaylock does not change accounts)")
	}
	if st.ServiceLevel != nil {
		if l, err := st.ServiceLevel.RelayIpList.Decode(); err == nil && l.IsOpenToAll() {
			p.Notes = append(p.Notes, st.ServiceLevel.Name+" (service level) RelayIpList is open ("+l.Describe()+"); virtual servers created later inherit it (not changed)")
		}
	}
}

// Plan implements Driver.
func (IISDriver) Plan(insp *Inspection, req Request) (*Plan, error) {
	var st IISState
	if err := json.Unmarshal(insp.State, &st); err != nil {
		return nil, fmt.Errorf("plan: inspection state: %w", err)
	}
	p := &Plan{Host: insp.Host, Platform: PlatformIIS, Changes: []Change{}}
	var d IISDesired
	why := allowWhy(req)
	for _, vs := range st.Servers {
		// Plan against the server's own value: the plan writes a value on
		// the server, which overrides an inherited one. ADSI and relaylock
		// are compared on the value the server enforces.
		if !req.Force {
			if mm := st.adsiMismatchOf(vs); mm != "" {
				return nil, fmt.Errorf("plan %s: %w: IIS (ADSI) reads the relay list differently from relaylock (%s); not writing hand-built bytes: %w", vs.Name, ErrRelayList, mm, ErrRefusedUnlessForced)
			}
		}
		want, wantRFA, ch, notes, err := planRelay(st.relayTargetOf(vs), req, why)
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", vs.Name, err)
		}
		if want.Null && st.ServiceLevel != nil && !st.ServiceLevel.RelayIpList.Null {
			return nil, fmt.Errorf("plan %s: clearing RelayIpList would inherit %s's value (%s); give at least one --allow address or drop --no-loopback", vs.Name, st.ServiceLevel.Name, DescribeBlob(st.ServiceLevel.RelayIpList))
		}
		p.Notes = append(p.Notes, notes...)
		if len(ch) > 0 {
			p.Changes = append(p.Changes, ch...)
			d.Servers = append(d.Servers, IISServerWrite{Name: vs.Name, RelayIpList: want, RelayForAuth: wantRFA})
			if vs.RelayIpListFrom == RelayFromUnknown {
				p.Notes = append(p.Notes, vs.Name+": whether its RelayIpList is its own or inherited from "+st.ServiceLevel.Name+" is unknown (IIS ADSI did not say); a rollback writes the saved value onto the server, so it stops following later changes of "+st.ServiceLevel.Name)
			}
		}
	}
	planDomains(st, req, p, &d.Domains)
	guestNotes(st, p)
	var err error
	if p.Desired, err = json.Marshal(d); err != nil {
		return nil, err
	}
	return p, nil
}

func iisWriteParams(w IISServerWrite) map[string]string {
	return map[string]string{"server": w.Name, "relayiplist": w.RelayIpList.String(), "relayforauth": strconv.FormatInt(w.RelayForAuth, 10)}
}

// writeServer runs iis-write and checks the values it read back.
func writeServer(ctx context.Context, r Runner, host string, w IISServerWrite) error {
	out, err := runScript(ctx, r, host, ScriptIISWrite, iisWriteParams(w), nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.Name, err)
	}
	// The read-back is decoded as iis-read's is, so that a NULL written
	// (the server inherits again) reads back as NULL however WMI shows it.
	back, err := DecodeIISState(out)
	if err != nil {
		return fmt.Errorf("write %s: read-back: %w", w.Name, err)
	}
	if len(back.Servers) != 1 {
		return fmt.Errorf("write %s: the script reported no read-back", w.Name)
	}
	got := back.Servers[0]
	if got.Name != w.Name || !got.RelayIpList.Equal(w.RelayIpList) || got.RelayForAuth != w.RelayForAuth {
		return fmt.Errorf("write %s: read back RelayIpList %s RelayForAuth %d, wrote %s and %d", w.Name, got.RelayIpList, got.RelayForAuth, w.RelayIpList, w.RelayForAuth)
	}
	return nil
}

func writeDomain(ctx context.Context, r Runner, host string, w IISDomainWrite) error {
	out, err := runScript(ctx, r, host, ScriptIISWriteDomain, map[string]string{"domain": w.Name, "routeaction": strconv.FormatInt(w.RouteAction, 10)}, nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.Name, err)
	}
	rec, ok := out.First(iisRecDomain)
	if !ok {
		return fmt.Errorf("write %s: the script reported no read-back", w.Name)
	}
	got, err := decodeDomain(rec)
	if err != nil {
		return fmt.Errorf("write %s: read-back: %w", w.Name, err)
	}
	if got.Name != w.Name || got.RouteAction != w.RouteAction {
		return fmt.Errorf("write %s: read back RouteAction %d, wrote %d", w.Name, got.RouteAction, w.RouteAction)
	}
	return nil
}

func changesOf(p *Plan, object string) []Change {
	var cs []Change
	for _, c := range p.Changes {
		if c.Object == object {
			cs = append(cs, c)
		}
	}
	return cs
}

// Apply implements Driver.
func (IISDriver) Apply(ctx context.Context, r Runner, plan *Plan) ([]Change, error) {
	var d IISDesired
	if err := json.Unmarshal(plan.Desired, &d); err != nil {
		return nil, fmt.Errorf("apply: plan: %w", err)
	}
	var applied []Change
	for _, w := range d.Servers {
		if err := writeServer(ctx, r, plan.Host, w); err != nil {
			return applied, err
		}
		applied = append(applied, changesOf(plan, w.Name)...)
	}
	for _, w := range d.Domains {
		if err := writeDomain(ctx, r, plan.Host, w); err != nil {
			return applied, err
		}
		applied = append(applied, changesOf(plan, w.Name)...)
	}
	return applied, nil
}

func backupState(b *Backup) (IISState, error) {
	var st IISState
	if b == nil || b.Inspection == nil || b.Plan == nil {
		return st, errors.New("restore: backup lacks the inspection or the plan")
	}
	if err := json.Unmarshal(b.Inspection.State, &st); err != nil {
		return st, fmt.Errorf("restore: backup state: %w", err)
	}
	return st, nil
}

// Restore implements Driver: it writes back the saved values (the exact
// RelayIpList bytes, null and zero-length included) of every object the
// plan touches. Restoring a null RelayIpList assigns $null and calls Put
// (UNVERIFIED on real IIS; ADSI PutEx(1 /*ADS_PROPERTY_CLEAR*/) is the
// untested alternative, see iis-write.ps1).
func (IISDriver) Restore(ctx context.Context, r Runner, b *Backup) error {
	st, err := backupState(b)
	if err != nil {
		return err
	}
	var d IISDesired
	if err := json.Unmarshal(b.Plan.Desired, &d); err != nil {
		return fmt.Errorf("restore: plan: %w", err)
	}
	var errs []error
	for _, w := range d.Servers {
		vs, ok := st.Server(w.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("restore %s: not in the backup", w.Name))
			continue
		}
		if err := writeServer(ctx, r, b.Host, IISServerWrite{Name: vs.Name, RelayIpList: vs.RelayIpList, RelayForAuth: vs.RelayForAuth}); err != nil {
			errs = append(errs, fmt.Errorf("restore: %w", err))
		}
	}
	for _, w := range d.Domains {
		found := false
		for _, dm := range st.Domains {
			if dm.Name == w.Name {
				found = true
				if err := writeDomain(ctx, r, b.Host, IISDomainWrite{Name: dm.Name, RouteAction: dm.RouteAction}); err != nil {
					errs = append(errs, fmt.Errorf("restore: %w", err))
				}
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("restore %s: not in the backup", w.Name))
		}
	}
	return errors.Join(errs...)
}
