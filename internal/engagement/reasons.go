package engagement

import (
	"fmt"
	"io"

	"github.com/relaylock/relaylock/audit"
)

// writeEndpointReasons says why each endpoint (or target without one) got
// its verdict, in the words the report uses: an inconclusive re-test
// proves nothing, and the operator must see why; a closed one may still
// have accepted own-domain forms as local recipients. With all false only
// the endpoints that are not closed are listed.
func writeEndpointReasons(w io.Writer, r *audit.Result, all bool) {
	w = PrintableLines{W: w} // reasons quote servers
	for _, t := range r.Targets {
		if len(t.Endpoints) == 0 && (all || t.Verdict != audit.VerdictClosed) {
			fmt.Fprintf(w, "  %s: %s: %s\n", t.Target, t.Verdict, orDash(t.Reason))
		}
		for _, ep := range t.Endpoints {
			if all || ep.Verdict != audit.VerdictClosed {
				fmt.Fprintf(w, "  %s: %s: %s\n", audit.EndpointKey(ep), ep.Verdict, orDash(ep.Reason))
			}
		}
	}
}
