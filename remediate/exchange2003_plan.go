package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Exchange 2000/2003 Plan, Apply and Restore: from the operator's Request to
// the Active Directory writes (Ex2003Desired, exchange2003.go), the wait for
// DS2MB to copy them into the metabase, and back.

// Plan implements Driver.
func (d *Exchange2003Driver) Plan(insp *Inspection, req Request) (*Plan, error) {
	st, err := ex2003State(insp)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if st.ADError != "" {
		return nil, fmt.Errorf("plan: %w: the settings must be written to Active Directory (DS2MB undoes metabase-only changes): %s", ErrADUnavailable, st.ADError)
	}
	if st.DC == nil {
		return nil, errors.New("plan: the inspection did not say which domain controller it read")
	}
	p := &Plan{Host: insp.Host, Platform: PlatformExchange2003, Changes: []Change{}}
	des := Ex2003Desired{SyncTimeout: req.SyncTimeout, DC: st.DC.Name}
	if !st.DC.ReadByDS2MB() {
		p.Notes = append(p.Notes, "writes go to domain controller "+st.DC.Describe())
	}
	for _, s := range insp.HostInfo.Services {
		if s.Name == "MSExchangeSA" && s.Present && s.State != "" && s.State != "Running" {
			p.Notes = append(p.Notes, "the System Attendant (MSExchangeSA), which runs DS2MB, is "+s.State+": the change stays pending (DS2MB) until it runs")
		}
	}
	why := allowWhy(req)
	seen := map[string]bool{}
	for _, a := range st.AD {
		vs, ok := st.Metabase.Server(a.MetabaseName())
		if !ok {
			p.Notes = append(p.Notes, a.DN+": no metabase virtual server "+a.MetabaseName()+" on this host; not changed")
			continue
		}
		seen[vs.Name] = true
		if !req.Force {
			if mm := st.Metabase.adsiMismatchOf(vs); mm != "" {
				return nil, fmt.Errorf("plan %s: %w: IIS (ADSI) reads the relay list differently from relaylock (%s); not writing hand-built bytes: %w", vs.Name, ErrRelayList, mm, ErrRefusedUnlessForced)
			}
		}
		rfa := ex2003MetabaseRelayForAuth(a.RelayForAuthOn())
		want, wantRFA, adCh, notes, err := planRelay(relayTarget{object: a.DN, cur: a.RelayIpList, rfa: rfa}, req, why+" (Active Directory, copied to the metabase by DS2MB)")
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", a.DN, err)
		}
		p.Notes = append(p.Notes, notes...)
		for i := range adCh {
			if adCh[i].Setting == SettingRelayForAuth {
				adCh[i].Current, adCh[i].New = adRFAText(a.RelayForAuthOn()), adRFAText(wantRFA != 0)
			}
		}
		// The metabase must end up with the same values once DS2MB ran.
		wantMB := ex2003MetabaseRelayForAuth(wantRFA != 0)
		// The metabase side is compared decoded: DS2MB need not keep the
		// exact bytes, so no raw row is planned for it.
		var mbCh []Change
		if !sameRelayList(vs.RelayIpList, want) {
			mbCh = append(mbCh,
				Change{Object: vs.Name, Setting: SettingRelayIpList, Current: DescribeBlob(vs.RelayIpList), New: DescribeBlob(want), Why: "copied from Active Directory by DS2MB"})
		}
		if (vs.RelayForAuth != 0) != (wantRFA != 0) {
			mbCh = append(mbCh, Change{Object: vs.Name, Setting: SettingRelayForAuth, Current: strconv.FormatInt(vs.RelayForAuth, 10), New: strconv.FormatInt(wantMB, 10), Why: "copied from Active Directory by DS2MB"})
		}
		if len(adCh) == 0 && len(mbCh) > 0 {
			p.Notes = append(p.Notes, a.DN+": Active Directory already holds the requested values; the object is rewritten so that DS2MB copies them into the metabase of "+vs.Name)
		}
		if len(adCh)+len(mbCh) > 0 {
			p.Changes = append(p.Changes, adCh...)
			p.Changes = append(p.Changes, mbCh...)
			des.Writes = append(des.Writes, Ex2003ADWrite{DN: a.DN, Server: vs.Name, RelayIpList: want, RelayForAuth: wantRFA != 0})
		}
	}
	for _, vs := range st.Metabase.Servers {
		if seen[vs.Name] {
			continue
		}
		eff, _ := st.Metabase.EffectiveRelayList(vs)
		if l, err := eff.Decode(); err != nil || !l.Null && (l.GrantByDefault || l.IsOpenToAll()) {
			return nil, fmt.Errorf("plan: virtual server %s relays (%s) but has no Active Directory object under %s: relaylock cannot change it (a metabase-only change is undone by DS2MB); change it in Exchange System Manager",
				vs.Name, DescribeBlob(eff), insp.HostInfo.ComputerName)
		}
		p.Notes = append(p.Notes, "metabase virtual server "+vs.Name+" has no Active Directory object on this server; not changed (a metabase-only change would be undone by DS2MB)")
	}
	for _, dm := range st.Metabase.Domains {
		if dm.RelayAllowed() {
			p.Notes = append(p.Notes, fmt.Sprintf("metabase domain %s allows relaying to it (RouteAction %d); on Exchange 2003 change it in Exchange System Manager (relaylock does not write Exchange domain objects)", dm.DomainName(), dm.RouteAction))
		}
	}
	guestNotes(st.Metabase, p)
	if p.Desired, err = json.Marshal(des); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *Exchange2003Driver) writeAD(ctx context.Context, r Runner, host, dc string, w Ex2003ADWrite) error {
	params := map[string]string{
		"dn": w.DN, "relayiplistattr": Ex2003RelayIpListAttr, "relayiplist": w.RelayIpList.String(),
		"relayforauth": strings.ToUpper(adRFAText(w.RelayForAuth)), "dc": dc,
	}
	out, err := runScript(ctx, r, host, ScriptEx2003WriteAD, params, nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.DN, err)
	}
	rec, ok := out.First(recADVS)
	if !ok {
		return fmt.Errorf("write %s: the script reported no read-back", w.DN)
	}
	got, err := decodeADServer(rec)
	if err != nil {
		return fmt.Errorf("write %s: read-back: %w", w.DN, err)
	}
	if !sameRelayList(got.RelayIpList, w.RelayIpList) || got.RelayForAuthOn() != w.RelayForAuth {
		return fmt.Errorf("write %s on %s: read back %s / RelayForAuth %s, wrote %s / %v", w.DN, dc, DescribeBlob(got.RelayIpList), got.RelayForAuth, DescribeBlob(w.RelayIpList), w.RelayForAuth)
	}
	return nil
}

// waitSync polls the metabase until server has the values, or fails with
// ErrSyncTimeout.
func (d *Exchange2003Driver) waitSync(ctx context.Context, r Runner, host string, w Ex2003ADWrite) error {
	timeout, poll := d.SyncTimeout, d.PollInterval
	if timeout <= 0 {
		timeout = DefaultDS2MBTimeout
	}
	if poll <= 0 {
		poll = DefaultDS2MBPoll
	}
	deadline := time.Now().Add(timeout)
	step := firstDS2MBPoll
	var last string
	for {
		out, err := runScript(ctx, r, host, ScriptIISRead, nil, nil)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("wait for DS2MB on %s: %w", w.Server, errWaitInterrupted)
		}
		if err != nil {
			return fmt.Errorf("wait for DS2MB on %s: %w", w.Server, err)
		}
		st, err := DecodeIISState(out)
		if err != nil {
			return fmt.Errorf("wait for DS2MB on %s: %w", w.Server, err)
		}
		vs, ok := st.Server(w.Server)
		if !ok {
			return fmt.Errorf("wait for DS2MB: virtual server %s disappeared from the metabase", w.Server)
		}
		if sameRelayList(vs.RelayIpList, w.RelayIpList) && (vs.RelayForAuth != 0) == w.RelayForAuth {
			return nil
		}
		last = fmt.Sprintf("%s, RelayForAuth %d", DescribeBlob(vs.RelayIpList), vs.RelayForAuth)
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: after %s the metabase of %s still has %s; Active Directory has %s, RelayForAuth %s", ErrSyncTimeout, timeout, w.Server, last, DescribeBlob(w.RelayIpList), adRFAText(w.RelayForAuth))
		}
		// Back off from a short first pause: DS2MB usually runs within
		// seconds of the AD change notification.
		wait := min(step, poll, time.Until(deadline)+time.Millisecond)
		step *= 2
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for DS2MB on %s: %w", w.Server, errWaitInterrupted)
		case <-t.C:
		}
	}
}

// pendingError is the ErrPending of the writes whose metabase has not
// caught up; restore is true for a rollback's writes.
func pendingError(restore bool, dc string, timeouts []error) error {
	what, undo := "the change was", "nothing was rolled back: a rollback would race the copy"
	if restore {
		what, undo = "the saved values were", "the restore stands"
	}
	return fmt.Errorf("%w: %s written to Active Directory on %s and read back there, but DS2MB has not copied it into the metabase yet (%w); "+
		"%s: DS2MB copies it within about 15 s of its change notification and every 15 minutes (is the System Attendant, MSExchangeSA, running?); "+
		"re-check with relaylock inspect (the DS2MB row of each Active Directory object says \"in sync\" once the metabase has it), then re-test",
		ErrPending, what, dc, errors.Join(timeouts...), undo)
}

// interruptedWait is the error of a wait for DS2MB cut short by ctx
// (Ctrl-C): the write stands in Active Directory, the metabase has not
// taken it, which is pending (DS2MB) as after a timeout, and wraps both
// ErrPending and ctx's error. notWritten are the Active Directory
// objects the interrupt came before; they keep their values.
func interruptedWait(ctx context.Context, restore bool, dc string, pending []error, notWritten []string) error {
	err := pendingError(restore, dc, pending)
	err = fmt.Errorf("%w; until DS2MB copies it, the metabase, which the SMTP service enforces, keeps the values it has now", err)
	if len(notWritten) > 0 {
		err = fmt.Errorf("%w; not written, the interrupt came first: %s", err, strings.Join(notWritten, ", "))
	}
	return fmt.Errorf("stopped while waiting for DS2MB (%w): %w", context.Cause(ctx), err)
}

// errWaitInterrupted: the wait for DS2MB ended because ctx did.
var errWaitInterrupted = errors.New("the wait was interrupted before DS2MB had copied it")

// Apply implements Driver: for each virtual server, write AD on the
// inspection's DC, then wait until DS2MB has copied the values into the
// metabase. Servers whose metabase has not caught up within the wait are
// reported together as ErrPending (their AD changes count as applied),
// after the remaining servers were written.
func (d *Exchange2003Driver) Apply(ctx context.Context, r Runner, plan *Plan) ([]Change, error) {
	var des Ex2003Desired
	if err := json.Unmarshal(plan.Desired, &des); err != nil {
		return nil, fmt.Errorf("apply: plan: %w", err)
	}
	d = d.withTimeout(des)
	dc := des.DC
	if d.DC != "" {
		dc = d.DC
	}
	var applied []Change
	var pending []error
	for i, w := range des.Writes {
		if err := d.writeAD(ctx, r, plan.Host, dc, w); err != nil {
			return applied, err
		}
		applied = append(applied, changesOf(plan, w.DN)...)
		if err := d.waitSync(ctx, r, plan.Host, w); err != nil {
			if errors.Is(err, ErrSyncTimeout) {
				pending = append(pending, err)
				continue
			}
			if errors.Is(err, errWaitInterrupted) {
				return applied, interruptedWait(ctx, false, dc, append(pending, err), writesDN(des.Writes[i+1:]))
			}
			return applied, err
		}
		applied = append(applied, changesOf(plan, w.Server)...)
	}
	if len(pending) > 0 {
		return applied, pendingError(false, dc, pending)
	}
	return applied, nil
}

// writesDN are the Active Directory objects of ws.
func writesDN(ws []Ex2003ADWrite) []string {
	var dns []string
	for _, w := range ws {
		dns = append(dns, w.DN)
	}
	return dns
}

// Restore implements Driver: it writes the saved AD values (exact bytes,
// null included) back and waits for DS2MB to copy them into the metabase.
// When the saved metabase values differed from AD (a metabase-only edit),
// it then writes those back into the metabase as well, so the host is
// exactly as before; the next periodic DS2MB run will undo that edit, as
// it would have without relaylock.
func (d *Exchange2003Driver) Restore(ctx context.Context, r Runner, b *Backup) error {
	if b == nil || b.Inspection == nil || b.Plan == nil {
		return errors.New("restore: backup lacks the inspection or the plan")
	}
	st, err := ex2003State(b.Inspection)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var des Ex2003Desired
	if err := json.Unmarshal(b.Plan.Desired, &des); err != nil {
		return fmt.Errorf("restore: plan: %w", err)
	}
	d = d.withTimeout(des)
	dc := des.DC
	if d.DC != "" {
		dc = d.DC
	}
	var errs, pending []error
	for i, w := range des.Writes {
		var saved *Ex2003ADServer
		for i := range st.AD {
			if st.AD[i].DN == w.DN {
				saved = &st.AD[i]
			}
		}
		if saved == nil {
			errs = append(errs, fmt.Errorf("restore %s: not in the backup", w.DN))
			continue
		}
		back := Ex2003ADWrite{DN: saved.DN, Server: w.Server, RelayIpList: saved.RelayIpList, RelayForAuth: saved.RelayForAuthOn()}
		if err := d.writeAD(ctx, r, b.Host, dc, back); err != nil {
			if ctx.Err() != nil {
				// Interrupted during the write: whether AD took it is
				// unknown; the rest is not attempted.
				errs = append(errs, fmt.Errorf("restore: interrupted while writing to Active Directory on %s: %w", dc, err))
				if rest := writesDN(des.Writes[i+1:]); len(rest) > 0 {
					errs = append(errs, fmt.Errorf("restore: not written, the interrupt came first: %s", strings.Join(rest, ", ")))
				}
				break
			}
			errs = append(errs, fmt.Errorf("restore: %w", err))
			continue
		}
		if err := d.waitSync(ctx, r, b.Host, back); err != nil {
			if errors.Is(err, errWaitInterrupted) && len(errs) == 0 {
				return interruptedWait(ctx, true, dc, append(pending, err), writesDN(des.Writes[i+1:]))
			}
			if errors.Is(err, ErrSyncTimeout) || errors.Is(err, errWaitInterrupted) {
				// The metabase-only values (below) are not written over a
				// pending copy: DS2MB would overwrite them anyway.
				pending = append(pending, err)
			} else {
				errs = append(errs, fmt.Errorf("restore: %w", err))
			}
			continue
		}
		// When the metabase disagreed with AD before the change (a
		// metabase-only edit), put that exact state back too: it was the
		// prior state, which the next periodic DS2MB run would undo anyway.
		if vs, ok := st.Metabase.Server(w.Server); ok && (!vs.RelayIpList.Equal(back.RelayIpList) || vs.RelayForAuth != ex2003MetabaseRelayForAuth(back.RelayForAuth)) {
			if err := writeServer(ctx, r, b.Host, IISServerWrite{Name: vs.Name, RelayIpList: vs.RelayIpList, RelayForAuth: vs.RelayForAuth}); err != nil {
				errs = append(errs, fmt.Errorf("restore the metabase-only values: %w", err))
			}
		}
	}
	if len(errs) == 0 && len(pending) > 0 {
		return fmt.Errorf("restore: %w", pendingError(true, dc, pending))
	}
	return errors.Join(append(errs, pending...)...)
}
