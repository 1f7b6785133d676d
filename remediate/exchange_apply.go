package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Exchange Apply and Restore: running the planned exchange-write operations
// and putting back a backup's state.

// ErrExchangeWrite wraps a failed exchange-write run.
var ErrExchangeWrite = errors.New("exchange-write failed")

// ErrUnsupportedShell: the Exchange cmdlets came from the bare snap-in on
// Exchange 2010 or later (Connect-ExchangeServer failed), which Microsoft
// supports for *-TransportAgent cmdlets only; relaylock writes through it
// only when forced (Request.Force). cmd/ names the flag.
var ErrUnsupportedShell = errors.New("refusing to change Exchange through the bare snap-in: Microsoft supports the local Exchange snap-in on 2010 and later for *-TransportAgent cmdlets only (\"may result in irreparable damage\"); " +
	"fix the Exchange remote shell (http://<server>/PowerShell/) so that Connect-ExchangeServer works, or force the write through the snap-in")

// exParams are the parameters every Exchange script of a run gets: the
// pinned domain controller (WithDomainController), if any.
func exParams(ctx context.Context) map[string]string {
	if dc := DomainControllerFrom(ctx); dc != "" {
		return map[string]string{DomainControllerParam: dc}
	}
	return nil
}

// exRunOps runs ops and returns how many completed ('done' records).
func exRunOps(ctx context.Context, r Runner, ops []exchangeOp, allowSnapin bool) (int, *ScriptRun, error) {
	if len(ops) == 0 {
		return 0, nil, nil
	}
	params := encodeExchangeOps(ops)
	for k, v := range exParams(ctx) {
		params[k] = v
	}
	if allowSnapin {
		params["allow_snapin"] = "yes"
	}
	run, err := r.Run(ctx, ExchangeWriteScript, params)
	done := 0
	if run != nil && run.Output != nil {
		for _, rec := range run.Output.Of("done") {
			if n, e := rec.Int("op"); e == nil && int(n) == done+1 {
				done++
			}
		}
	}
	if err != nil {
		return done, run, fmt.Errorf("%w: %w", ErrExchangeWrite, err)
	}
	if run.Output == nil || run.Output.ExitCode != 0 || len(run.Errors) > 0 || done != len(ops) {
		msg := "incomplete"
		if run.Output != nil && len(run.Errors) > 0 {
			msg = strings.Join(run.Errors, "; ")
		}
		return done, run, fmt.Errorf("%w after %d of %d operations: %s", ErrExchangeWrite, done, len(ops), msg)
	}
	return done, run, nil
}

func (exchangeDriver) Apply(ctx context.Context, r Runner, plan *Plan) ([]Change, error) {
	var d exchangeDesired
	if err := json.Unmarshal(plan.Desired, &d); err != nil {
		return nil, fmt.Errorf("apply exchange: desired: %w", err)
	}
	if len(d.OpChanges) != len(d.Ops) {
		return nil, errors.New("apply exchange: desired: operations and changes do not match")
	}
	if DomainControllerFrom(ctx) == "" {
		ctx = WithDomainController(ctx, d.DomainController)
	}
	done, _, err := exRunOps(ctx, r, d.Ops, d.AllowSnapin)
	var applied []Change
	for i := 0; i < done; i++ {
		for _, ci := range d.OpChanges[i] {
			if ci >= 0 && ci < len(plan.Changes) {
				applied = append(applied, plan.Changes[ci])
			}
		}
	}
	if err != nil {
		return applied, fmt.Errorf("apply exchange: %w", err)
	}
	return applied, nil
}

// Restore reads the host again and puts back, for every object the plan
// touched, the state saved in the backup's inspection: connectors'
// Enabled, Bindings, RemoteIPRanges, AuthMechanism, PermissionGroups and
// explicit ANONYMOUS LOGON Accept-Any-Recipient ACEs, accepted domains'
// types (removed ones are created again); connectors the plan created
// are deleted. It
// works after a partial Apply, and running it twice changes nothing.
func (exchangeDriver) Restore(ctx context.Context, r Runner, b *Backup) error {
	if b == nil || b.Inspection == nil || b.Plan == nil {
		return errors.New("restore exchange: backup has no inspection or plan")
	}
	old, err := exStateOf(b.Inspection)
	if err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	var d exchangeDesired
	if len(b.Plan.Desired) > 0 {
		if err := json.Unmarshal(b.Plan.Desired, &d); err != nil {
			return fmt.Errorf("restore exchange: desired: %w", err)
		}
	}
	if DomainControllerFrom(ctx) == "" {
		ctx = WithDomainController(ctx, old.DomainController)
	}
	run, err := runExchange(ctx, r, ExchangeReadScript, exParams(ctx))
	if err != nil {
		return fmt.Errorf("restore exchange: read current state: %w", err)
	}
	cur, err := decodeExchangeRead(run.Output)
	if err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	ops, err := restoreOps(old, cur, b.Plan)
	if err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	if _, _, err := exRunOps(ctx, r, ops, d.AllowSnapin); err != nil {
		return fmt.Errorf("restore exchange: %w", err)
	}
	return nil
}

func restoreOps(old, cur *ExchangeState, plan *Plan) ([]exchangeOp, error) {
	touched := map[string]bool{}
	for _, c := range plan.Changes {
		touched[c.Object] = true
	}
	created := map[string]bool{}
	for _, o := range plan.Created {
		created[o] = true
	}
	var ops []exchangeOp
	for _, oc := range cur.Connectors {
		if created[connectorObject(oc.Identity)] && old.Connector(oc.Identity) == nil {
			ops = append(ops, exchangeOp{Kind: opRemoveConnector, Identity: oc.Identity})
		}
	}
	for _, oc := range old.Connectors {
		if !touched[connectorObject(oc.Identity)] {
			continue
		}
		nc := cur.Connector(oc.Identity)
		if nc == nil {
			return nil, fmt.Errorf("receive connector %s no longer exists: recreate it by hand from the backup", oc.Identity)
		}
		set := exchangeOp{Kind: opSetConnector, Identity: oc.Identity}
		if oc.Enabled != nc.Enabled {
			set.Set, set.Enabled = append(set.Set, fieldEnabled), oc.Enabled
		}
		if exCanonSet(oc.Bindings, "") != exCanonSet(nc.Bindings, "") {
			set.Set, set.Bindings = append(set.Set, fieldBindings), oc.Bindings
		}
		if exCanonRanges(oc.RemoteIPRanges) != exCanonRanges(nc.RemoteIPRanges) {
			set.Set, set.Ranges = append(set.Set, fieldRanges), oc.RemoteIPRanges
		}
		if exCanonSet(oc.AuthMechanism, "None") != exCanonSet(nc.AuthMechanism, "None") {
			set.Set, set.Auth = append(set.Set, fieldAuth), oc.AuthMechanism
		}
		if exCanonSet(oc.PermissionGroups, "None") != exCanonSet(nc.PermissionGroups, "None") {
			set.Set, set.Groups = append(set.Set, fieldGroups), oc.PermissionGroups
		}
		if len(set.Set) > 0 {
			ops = append(ops, set)
		}
		// Explicit anonymous ACEs (the only ones a plan adds or removes):
		// re-add the saved ones, remove ones the plan added. The other
		// grantees come from PermissionGroups/AuthMechanism, which
		// Exchange derives again from the values restored above.
		for _, a := range oc.AnyRecipient {
			if !a.Inherited && a.IsAnonymous(old.AnonymousName) && !exHasACE(nc.AnyRecipient, a) {
				ops = append(ops, exchangeOp{Kind: opAddACE, Identity: oc.Identity, User: a.User, SID: a.SID})
			}
		}
		for _, a := range nc.AnyRecipient {
			if !a.Inherited && a.IsAnonymous(cur.AnonymousName) && !exHasACE(oc.AnyRecipient, a) {
				ops = append(ops, exchangeOp{Kind: opRemoveACE, Identity: oc.Identity, User: a.User, SID: a.SID})
			}
		}
	}
	for _, od := range old.Domains {
		if !touched[domainObject(od.Name)] {
			continue
		}
		nd := cur.Domain(od.Name)
		switch {
		case nd == nil:
			ops = append(ops, exchangeOp{Kind: opNewDomain, Name: od.Name, DomainName: od.DomainName, DomainType: od.DomainType})
		case !strings.EqualFold(nd.DomainType, od.DomainType):
			ops = append(ops, exchangeOp{Kind: opSetDomain, Identity: od.Name, DomainType: od.DomainType})
		}
	}
	return ops, nil
}

func exHasACE(list []ExchangeACE, a ExchangeACE) bool {
	for _, b := range list {
		if b.Inherited {
			continue
		}
		if (a.SID != "" && b.SID == a.SID) || ((a.SID == "" || b.SID == "") && strings.EqualFold(a.User, b.User)) {
			return true
		}
	}
	return false
}
