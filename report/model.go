package report

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// This file turns a bundle into what the report shows. It is pure and
// deterministic: slices in bundle order, no map iteration reaches output.

// Endpoint statuses as printed in the grid (words, so that the grid reads
// in black and white).
const (
	stOpen         = "OPEN"
	stClosed       = "CLOSED"
	stInconclusive = "INCONCLUSIVE"
	stNotRetested  = "NOT RE-TESTED"
	stNotTested    = "NOT TESTED"
	// stSet is a configuration finding's initial status: the setting
	// was found set.
	stSet = "SET"
)

// epKey is how an endpoint is shown: under the host name it was first
// seen under. Its identity, which rows are keyed by, is
// audit.EndpointKey.
type epKey struct {
	Host string
	Addr string
	Port int
	TLS  string
}

func (k epKey) String() string {
	addr := k.Addr
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() && !a.Is4In6() {
		addr = "[" + addr + "]"
	}
	s := addr + ":" + fmt.Sprint(k.Port)
	if k.Host != "" && !strings.EqualFold(strings.TrimSuffix(k.Host, "."), k.Addr) {
		s = strings.TrimSuffix(k.Host, ".") + " " + s
	}
	switch k.TLS {
	case "", audit.TLSNone:
	case audit.TLSStartTLS:
		s += " STARTTLS"
	case audit.TLSImplicit:
		s += " TLS"
	default:
		s += " " + k.TLS
	}
	return s
}

// epRef is one endpoint result in one audit run.
type epRef struct {
	Run     int // index in Bundle.Audits
	Purpose evidence.Purpose
	Target  string
	EP      *audit.EndpointResult
	Inside  *evidence.InsideView // the run's inside view of EP (insideview.go)
}

// row is one line of the before/after grid.
type row struct {
	Key           epKey
	Before, After *epRef
	// Retests are every re-test of the endpoint, in order; After is the
	// last.
	Retests []*epRef
}

func verdictWord(v audit.Verdict) string {
	switch v {
	case audit.VerdictOpen:
		return stOpen
	case audit.VerdictClosed:
		return stClosed
	case audit.VerdictInconclusive, "":
		return stInconclusive
	default:
		return strings.ToUpper(string(v))
	}
}

func (r *row) beforeStatus() string {
	if r.Before == nil {
		return stNotTested
	}
	return verdictWord(r.Before.EP.Verdict)
}

func (r *row) afterStatus() string {
	if r.After == nil {
		return stNotRetested
	}
	return r.After.status()
}

// findingKind says what a finding is about.
type findingKind string

const (
	findingRelay  findingKind = "relay"  // an endpoint open in the first audit
	findingConfig findingKind = "config" // a setting on an inspected host no relay finding explains
)

// finding is one finding as the report shows it.
type finding struct {
	ID        string
	Kind      findingKind
	Title     string
	Severity  string // "High", "Medium", "Low", "Info"
	StatusKey string // texts key suffix: "open", "remediated", ...
	Row       *row   // relay findings
	Host      string // the inspected (WinRM) host, if matched
	Insp      *remediate.Inspection
	Causes    []remediate.Finding // root causes from the inspection
	Config    *remediate.Finding  // config findings
	Changes   []*remediate.ChangeRecord
	Controls  string
}

// model is everything the report shows, derived once.
type model struct {
	b        *evidence.Bundle
	digest   string
	hashes   *evidence.Integrity // computed now, not read from the file
	time     time.Time           // the report's date: the latest time in the content
	offset   string              // the operator's local offset, from the first audit
	rows     []*row
	findings []*finding
	retested bool // any re-test run exists
	first    int  // index of the first audit run, -1 if none
	// Records by link ID (Inspection.Ref, ChangeRecord.ID; the first of
	// an ID wins), and the ID of each inspection, in order.
	inspByID   map[string]*remediate.Inspection
	changeByID map[string]*remediate.ChangeRecord
	inspRefs   []string
}

func norm(s string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), ".")) }

// isRetest reports whether an audit run re-tests a change. A purpose
// this build does not know is not a re-test: it cannot prove a change.
func isRetest(p evidence.Purpose) bool {
	switch p {
	case evidence.PurposeRetest, evidence.PurposeRollbackRetest:
		return true
	case evidence.PurposeAudit:
		return false
	default:
		return false
	}
}

func buildModel(b *evidence.Bundle) (*model, error) {
	h, err := evidence.Compute(b)
	if err != nil {
		return nil, err
	}
	m := &model{b: b, digest: h.Digest, hashes: h, time: contentTime(b), first: -1,
		inspByID: map[string]*remediate.Inspection{}, changeByID: map[string]*remediate.ChangeRecord{},
		inspRefs: make([]string, len(b.Inspections))}
	for i := range b.Inspections {
		// Inspections recorded before IDs existed are found by the ID
		// derived from them, which a newer change may name (a rollback
		// names its backup's inspection).
		in := &b.Inspections[i]
		m.inspRefs[i] = in.Ref()
		if m.inspByID[m.inspRefs[i]] == nil {
			m.inspByID[m.inspRefs[i]] = in
		}
	}
	for i := range b.Changes {
		if c := &b.Changes[i]; c.ID != "" && m.changeByID[c.ID] == nil {
			m.changeByID[c.ID] = c
		}
	}
	// The first audit: the first run with purpose "audit", else the first run.
	for i, a := range b.Audits {
		if a.Result != nil && !isRetest(a.Purpose) {
			m.first = i
			break
		}
	}
	if m.first < 0 {
		for i, a := range b.Audits {
			if a.Result != nil {
				m.first = i
				break
			}
		}
	}
	// Rows are keyed by the endpoint's identity (audit.EndpointKey): a
	// re-test of one host is usually run against the address (its MX host
	// name is then the address), and must still meet the first audit's
	// row. The row keeps the host name it was first seen under.
	index := map[string]*row{}
	eachEP := func(i int, fn func(r *row, ref *epRef)) {
		a := b.Audits[i]
		for ti := range a.Result.Targets {
			t := &a.Result.Targets[ti]
			for ei := range t.Endpoints {
				ep := &t.Endpoints[ei]
				id := audit.EndpointKey(*ep)
				r := index[id]
				if r == nil {
					r = &row{Key: epKey{ep.MXHost, ep.Address, ep.Port, ep.TLS}}
					index[id] = r
					m.rows = append(m.rows, r)
				}
				fn(r, &epRef{Run: i, Purpose: a.Purpose, Target: t.Target, EP: ep, Inside: insideViewOf(a, ep)})
			}
		}
	}
	if m.first >= 0 {
		m.offset = b.Audits[m.first].Result.Vantage.LocalOffset
		eachEP(m.first, func(r *row, ref *epRef) {
			if r.Before == nil {
				r.Before = ref
			}
		})
	}
	for i, a := range b.Audits {
		if i == m.first || a.Result == nil || !isRetest(a.Purpose) {
			continue
		}
		m.retested = true
		eachEP(i, func(r *row, ref *epRef) {
			r.After = ref // the latest wins
			r.Retests = append(r.Retests, ref)
		})
	}

	// Relay findings: one per endpoint open in the first audit.
	attached := map[string]bool{} // inspected hosts explained by a relay finding
	n := 0
	for _, r := range m.rows {
		if r.Before == nil || r.Before.EP.Verdict != audit.VerdictOpen {
			continue
		}
		n++
		f := &finding{ID: fmt.Sprintf("RLY-%03d", n), Kind: findingRelay, Severity: "High", Row: r}
		f.Insp = m.inspectionFor(r)
		if f.Insp != nil {
			f.Host = f.Insp.Host
			attached[norm(f.Host)] = true
			f.Causes = f.Insp.Findings
		}
		f.Changes = m.changesFor(f.Host, r)
		f.StatusKey = relayStatus(r, f.Changes)
		f.Controls = m.controlsFor(f.Insp)
		m.findings = append(m.findings, f)
	}
	// Config findings on inspected hosts no relay finding explains.
	seen := map[string]bool{}
	n = 0
	for i := range b.Inspections {
		in := &b.Inspections[i]
		h := norm(in.Host)
		if attached[h] || seen[h] {
			continue
		}
		seen[h] = true // the first inspection of a host is the "before"
		changes := m.changesFor(in.Host, nil)
		for j := range in.Findings {
			cf := &in.Findings[j]
			n++
			f := &finding{ID: fmt.Sprintf("CFG-%03d", n), Kind: findingConfig, Title: cf.Title,
				Severity: severityWord(cf.Severity), Host: in.Host, Insp: in, Config: cf, Changes: changes,
				Causes: []remediate.Finding{*cf}, StatusKey: "open"}
			if changed(changes, cf.Object, cf.Setting) {
				f.StatusKey = "config_remediated"
			}
			f.Controls = m.controlsFor(in)
			m.findings = append(m.findings, f)
		}
	}
	return m, nil
}

func severityWord(s remediate.Severity) string {
	switch s {
	case remediate.SeverityHigh:
		return "High"
	case remediate.SeverityMedium:
		return "Medium"
	case remediate.SeverityLow:
		return "Low"
	case remediate.SeverityInfo:
		return "Info"
	}
	if s == "" {
		return "Info"
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

var severities = []string{"High", "Medium", "Low", "Info"}

// Records are tied together by the IDs they carry: a re-test names the
// change it verifies (evidence.AuditRun.Change), and a change the
// inspection it was planned from (remediate.ChangeRecord.Inspection) and
// its backup (BackupSHA256). A record without a link (recorded before
// links existed), or whose link names nothing in the evidence (verify
// notes it), is tied by host name instead, by byHostName.

// linkedChanges returns the IDs of the changes in the evidence that the
// re-tests of an endpoint verify, in the order of the re-tests.
func (m *model) linkedChanges(r *row) []string {
	var ids []string
	if r == nil {
		return nil
	}
	for _, ref := range r.Retests {
		if id := m.b.Audits[ref.Run].Change; m.changeByID[id] != nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// linked reports whether a change names an inspection in the evidence.
func (m *model) linked(c *remediate.ChangeRecord) bool {
	return c.Inspection != "" && m.inspByID[c.Inspection] != nil
}

// inspectionFor finds the inspection of the host behind an endpoint: the
// first in the evidence that a change verified by a re-test of the
// endpoint was planned from; failing that, by host name (byHostName).
func (m *model) inspectionFor(r *row) *remediate.Inspection {
	var want []string
	for _, id := range m.linkedChanges(r) {
		if c := m.changeByID[id]; m.linked(c) {
			want = append(want, c.Inspection)
		}
	}
	for i, id := range m.inspRefs {
		if slices.Contains(want, id) {
			return &m.b.Inspections[i]
		}
	}
	return byHostName{m}.inspection(r)
}

// changesFor returns the change records of an inspected host, or of the
// host behind an endpoint, in order. A linked change belongs to it when
// it was planned from an inspection of the host or a re-test of the
// endpoint verified it; a change without a link, by byHostName.
func (m *model) changesFor(host string, r *row) []*remediate.ChangeRecord {
	var insp []string // the IDs of the host's inspections
	if host != "" {
		for i := range m.b.Inspections {
			if norm(m.b.Inspections[i].Host) == norm(host) {
				insp = append(insp, m.inspRefs[i])
			}
		}
	}
	verified := m.linkedChanges(r)
	byName := byHostName{m}.change(host, r)
	var out []*remediate.ChangeRecord
	for i := range m.b.Changes {
		c := &m.b.Changes[i]
		var mine bool
		if m.linked(c) {
			mine = slices.Contains(insp, c.Inspection) || slices.Contains(verified, c.ID)
		} else {
			mine = slices.Contains(verified, c.ID) || byName(c)
		}
		if mine {
			out = append(out, c)
		}
	}
	return out
}

// byHostName is the fallback for evidence recorded before records were
// linked by ID: it ties audits, inspections and changes together by
// normalised host name, exactly as earlier versions of the report did.
// It is used only for records that carry no link.
type byHostName struct{ m *model }

// inspection finds the first inspection of the host behind an endpoint:
// by MX host name, address or banner host, or by a re-test run that names
// the WinRM host and covers the endpoint.
func (l byHostName) inspection(r *row) *remediate.Inspection {
	names := []string{norm(r.Key.Host), norm(r.Key.Addr)}
	if r.Before != nil && r.Before.EP.BannerHost != "" {
		names = append(names, norm(r.Before.EP.BannerHost))
	}
	if r.After != nil && l.m.b.Audits[r.After.Run].Host != "" {
		names = append(names, norm(l.m.b.Audits[r.After.Run].Host))
	}
	for i := range l.m.b.Inspections {
		in := &l.m.b.Inspections[i]
		if slices.Contains(names, norm(in.Host)) || (in.HostInfo.ComputerName != "" && slices.Contains(names, norm(in.HostInfo.ComputerName))) {
			return in
		}
	}
	return nil
}

// change returns whether a change was made on the inspected host, or on
// the MX host name or address of the endpoint.
func (l byHostName) change(host string, r *row) func(c *remediate.ChangeRecord) bool {
	names := []string{}
	if host != "" {
		names = append(names, norm(host))
	}
	if r != nil {
		names = append(names, norm(r.Key.Host), norm(r.Key.Addr))
	}
	return func(c *remediate.ChangeRecord) bool { return slices.Contains(names, norm(c.Host)) }
}

// applied reports whether the changes, in order, leave a remediation in
// effect: the last that decides is a remediation applied (or partly
// applied and not rolled back), not a rollback that restored the state
// before it.
func applied(cs []*remediate.ChangeRecord) bool {
	ok := false
	for _, c := range cs {
		switch c.Kind {
		case remediate.ChangeRemediate:
			switch c.Result {
			case remediate.ResultApplied, remediate.ResultPartial:
				ok = true
			case remediate.ResultNoChange, remediate.ResultRolledBack, remediate.ResultFailed,
				remediate.ResultPending, remediate.ResultRestored, remediate.ResultInterrupted:
				// Not in effect, or not known to be: this record changes
				// nothing about what went before.
			default:
				// A result this build does not know: as above.
			}
		case remediate.ChangeRollback:
			switch c.Result {
			case remediate.ResultRestored, remediate.ResultPending,
				remediate.ResultApplied, remediate.ResultRolledBack:
				// The saved state is back (pending: written, DS2MB is
				// copying it). Applied and rolled-back are no rollback's
				// result; they were read as done.
				ok = false
			case remediate.ResultNoChange, remediate.ResultFailed, remediate.ResultPartial, remediate.ResultInterrupted:
				// The restore did not finish: what went before stands
				// until a re-test says otherwise.
			default:
			}
		default:
			// A kind this build does not know decides nothing.
		}
	}
	return ok
}

func changed(cs []*remediate.ChangeRecord, object, setting string) bool {
	if !applied(cs) {
		return false
	}
	for _, c := range cs {
		for _, a := range c.Applied {
			if a.Object == object && (setting == "" || a.Setting == setting) {
				return true
			}
		}
	}
	return false
}

func relayStatus(r *row, cs []*remediate.ChangeRecord) string {
	fixed := applied(cs)
	switch r.afterStatus() {
	case stOpen:
		return "open_after"
	case stClosed:
		if fixed {
			return "remediated"
		}
		return "resolved"
	case stNotRetested:
		if fixed {
			return "remediated_unverified"
		}
		return "open"
	case stInsideView:
		return "inside_view"
	default:
		return "inconclusive"
	}
}

// statusGroup puts a status into a column of the counts table.
func statusGroup(key string) int {
	switch key {
	case "open", "open_after":
		return 1
	case "remediated", "resolved":
		return 2
	case "remediated_unverified", "config_remediated":
		return 3
	default:
		return 4
	}
}

// controlsFor lists the compliance ids for a finding on a host: the STIG
// rule for the host's Exchange version and role, and the general ones.
func (m *model) controlsFor(in *remediate.Inspection) string {
	var ids []string
	if in != nil && in.Platform == remediate.PlatformExchange {
		edge := false
		for _, r := range in.HostInfo.ExchangeRoles {
			edge = edge || strings.Contains(strings.ToLower(r), "edge")
		}
		// docs/reporting.md §2.1: the CCI of V-259622 is not verified, so it is
		// not printed with it.
		switch v := in.HostInfo.ExchangeVersion; {
		case v == "2016" && edge:
			ids = append(ids, "STIG V-221245", "CCI-001308")
		case v == "2016":
			ids = append(ids, "STIG V-228391", "CCI-001308")
		case (v == "2019" || v == "SE") && edge:
			ids = append(ids, "STIG V-259622")
		case v == "2019" || v == "SE":
			ids = append(ids, "STIG V-259687", "CCI-001308")
		}
	}
	ids = append(ids, "PCI DSS 2.2.6, 11.3.1, 11.3.2", "ISO 27001 A.8.8, A.8.9")
	return strings.Join(ids, "; ")
}

// contentTime is the report's date: the latest time recorded in the
// content the digest covers, so that recording the PDF as an artifact and
// rendering again gives the same bytes.
func contentTime(b *evidence.Bundle) time.Time {
	t := b.Created
	later := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	for _, a := range b.Audits {
		if a.Result != nil {
			later(a.Result.End)
			later(a.Result.Start)
		}
	}
	for _, in := range b.Inspections {
		later(in.Time)
	}
	for _, bk := range b.Backups {
		if bk.Backup != nil {
			later(bk.Backup.Taken)
		}
	}
	for _, c := range b.Changes {
		later(c.End)
		later(c.Start)
	}
	return t.UTC()
}

// counts returns the verdict line numbers. Once anything was re-tested,
// a relay counts as remediated only when its change is in effect and its
// endpoint was re-tested closed; one whose re-test could not decide
// (INCONCLUSIVE) or did not cover it (NOT RE-TESTED) is unverified, never
// remediated: a change nobody saw working proves nothing.
func (m *model) counts() (found, remediated, openAfter, unverified int) {
	for _, f := range m.findings {
		if f.Kind != findingRelay {
			continue
		}
		found++
		st := f.Row.afterStatus()
		switch {
		case st == stOpen:
			openAfter++
		case m.retested && st != stClosed:
			unverified++
		case applied(f.Changes):
			remediated++
		}
	}
	return
}

// untested counts the endpoints, other than the relays found, whose
// latest test (the re-test when there was one, else the first audit) could
// not decide: the report has not verified them.
func (m *model) untested() int {
	n := 0
	for _, r := range m.rows {
		if r.Before != nil && r.Before.EP.Verdict == audit.VerdictOpen {
			continue // a relay finding: counts() judges it
		}
		ref := r.After
		if ref == nil {
			ref = r.Before
		}
		if ref == nil {
			continue
		}
		if st := verdictWord(ref.EP.Verdict); st != stOpen && st != stClosed {
			n++
		}
	}
	return n
}
