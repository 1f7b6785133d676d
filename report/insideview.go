package report

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/report/evidence"
)

// The inside view (evidence.AuditRun.InsideView): a re-test made from an
// address the allowed list lets relay sees the server relay by design. An
// endpoint such a re-test found open is neither fixed nor still open: it
// is not verified, and the report says why where the re-test is shown.

// stInsideView is the grid's word for an endpoint the re-test found open
// from inside the allowed list.
const stInsideView = "NOT VERIFIED (INSIDE VIEW)"

// insideViewOf returns the inside view of run a that names ep, or nil.
func insideViewOf(a evidence.AuditRun, ep *audit.EndpointResult) *evidence.InsideView {
	key := net.JoinHostPort(ep.Address, strconv.Itoa(ep.Port))
	for i := range a.InsideView {
		if slices.Contains(a.InsideView[i].Endpoints, key) {
			return &a.InsideView[i]
		}
	}
	return nil
}

// insideOpen reports whether ref is an open result seen from inside the
// allowed list.
func (ref *epRef) insideOpen() bool {
	return ref.Inside != nil && ref.EP.Verdict == audit.VerdictOpen
}

// status is the grid's word for ref's result.
func (ref *epRef) status() string {
	if ref.insideOpen() {
		return stInsideView
	}
	return verdictWord(ref.EP.Verdict)
}

// proofOpen is the plain-words proof of a re-test that found the endpoint
// open: not fixed, or, from inside the allowed list, not verified.
func (r *renderer) proofOpen(a *epRef, kv []string) string {
	if !a.insideOpen() {
		return r.t.get("summary.plain.proof.open", kv...)
	}
	return r.t.get("summary.plain.proof.inside_view", append(kv, "prober", a.Inside.Prober, "allowed", a.Inside.Allowed)...)
}

// insideViewNote is the caveat added to a re-test's result where it is
// shown: "" unless the re-test came from inside the allowed list.
func (r *renderer) insideViewNote(a *epRef) string {
	if a.Inside == nil {
		return ""
	}
	s := fmt.Sprintf(r.l("Inside view: the re-test came from %s, which the allowed list lets relay (entry %s)"), a.Inside.Prober, a.Inside.Allowed)
	if a.Inside.Loopback {
		s += r.l(", added by default on IIS and Exchange 2000/2003 unless --no-loopback")
	}
	if a.insideOpen() {
		s += r.l("; its OPEN is not verified (inside view): re-test from an address outside the allowed list")
	}
	return "\n" + s
}

// transcriptInsideView adds the caveat under an endpoint's verdict in the
// transcripts appendix, when run a reached it from inside the allowed list.
func (r *renderer) transcriptInsideView(a evidence.AuditRun, ep *audit.EndpointResult) {
	if n := r.insideViewNote(&epRef{EP: ep, Inside: insideViewOf(a, ep)}); n != "" {
		r.muted(clean(n[1:]))
	}
}
