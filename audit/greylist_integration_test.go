package audit_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/audit/mtatest"
)

// TestIntegrationGreylisting puts real Postfix behind greylisting policy
// services, each in front of an open and a closed configuration, with and
// without a postmaster exemption (issue 13 item 2):
//   - milter-greylist style: "451 4.7.1 Greylisting in action, please
//     come back later", no delay in the text (a policy server in Go);
//   - a policy service naming its delay: "451 4.7.1 Greylisted, please try
//     again in 2 seconds";
//   - Debian's postgrey: "450 4.2.0 <rcpt>: Recipient address rejected:
//     Greylisted, see ...", which echoes the recipient (item 2b: the
//     recipient's local part is "relaytest").
//
// Before: milter-greylist style read closed (4.7.1 taken as a refusal) or
// "blocked" (C1 greylisted); postgrey's echo made R17, R27, R33 denied.
// Now every greylisted test, controls included, is retried with the same
// triplet and the verdict is that of the server behind.
func TestIntegrationGreylisting(t *testing.T) {
	if testing.Short() {
		t.Skip("real MTAs")
	}
	type style struct {
		name  string
		start func(t *testing.T, exempt bool) (netip.AddrPort, error)
	}
	styles := []style{
		{"milter-greylist", func(t *testing.T, exempt bool) (netip.AddrPort, error) {
			return mtatest.StartGreylistPolicy(t, mtatest.MilterGreylistAction, 2*time.Second, exempt).Addr, nil
		}},
		{"policy-with-delay", func(t *testing.T, exempt bool) (netip.AddrPort, error) {
			return mtatest.StartGreylistPolicy(t, "451 4.7.1 Greylisted, please try again in 2 seconds", 2*time.Second, exempt).Addr, nil
		}},
		{"postgrey", func(t *testing.T, exempt bool) (netip.AddrPort, error) {
			return mtatest.StartPostgrey(t, 2*time.Second, exempt)
		}},
	}
	for _, st := range styles {
		for _, exempt := range []bool{true, false} {
			for _, mode := range []mtatest.Mode{mtatest.OpenClientAccess, mtatest.ClosedReject} {
				want := audit.VerdictClosed
				if mode == mtatest.OpenClientAccess {
					want = audit.VerdictOpen
				}
				t.Run(fmt.Sprintf("%s/exempt=%v/%s", st.name, exempt, mode), func(t *testing.T) {
					t.Parallel()
					policy, err := st.start(t, exempt)
					if errors.Is(err, mtatest.ErrUnavailable) {
						t.Skip(err)
					}
					if err != nil {
						t.Fatal(err)
					}
					sink := mtatest.StartSink(t)
					inst := mtatest.StartT(t, mtatest.Config{Kind: mtatest.Postfix, Mode: mode, RelayHost: sink.Addr(), PolicyService: policy})
					progress := &syncWriter{b: &strings.Builder{}}
					res := auditInstance(t, inst, func(o *audit.Options) {
						o.To = "relaytest@victim.test"
						o.GreylistRetry = 40 * time.Second
						o.GreylistInterval = 3 * time.Second
						o.Progress = progress
					})
					ep := res.Targets[0].Endpoints[0]
					if ep.Verdict != want {
						t.Fatalf("verdict %s (%s), want %s", ep.Verdict, ep.Reason, want)
					}
					greylisted := 0
					for _, ts := range ep.Tests {
						if ts.Greylisted == nil {
							continue
						}
						greylisted++
						if ts.Attempts < 2 {
							t.Errorf("%s: greylisted but %d attempts", ts.ID, ts.Attempts)
						}
						if ts.Outcome == audit.OutcomeInconclusive {
							t.Errorf("%s: still %s after the retry: %s", ts.ID, ts.Outcome, ts.Reason)
						}
						// Both attempts are in the transcripts.
						n := 0
						for _, tr := range ep.Transcripts {
							for _, l := range tr.Lines {
								if l.Dir == "C" && l.Text == "RCPT TO:"+ts.RcptTo {
									n++
								}
							}
						}
						if n < 2 {
							t.Errorf("%s: RCPT TO:%s is in the transcripts %d time(s), want both attempts", ts.ID, ts.RcptTo, n)
						}
					}
					if greylisted == 0 {
						t.Fatal("no test was greylisted: the policy service is not in the path")
					}
					if c1 := findTest(t, ep, "C1"); !exempt && c1.Greylisted == nil {
						t.Errorf("C1 was not greylisted without the postmaster exemption: %+v", c1)
					}
					if !strings.Contains(progress.String(), "greylisted") {
						t.Errorf("no progress line shows the wait:\n%s", progress.String())
					}
				})
			}
		}
	}
}

// syncWriter serialises progress lines from the endpoint goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
