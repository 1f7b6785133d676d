package lab

import (
	"bytes"
	"context"
	"testing"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// BenchmarkRunScript measures one stdin-fed relaylock script run (Create,
// Command, Send, Receive, Signal, Delete) through the real masterzen
// client, per transport.
func BenchmarkRunScript(b *testing.B) {
	for _, tc := range []struct {
		name        string
		https, ntlm bool
	}{{"https-ntlm", true, true}, {"https-basic", true, false}, {"http-basic", false, false}} {
		b.Run(tc.name, func(b *testing.B) {
			ts := startWSMan(b, tc.https, WSManConfig{AllowUnencrypted: !tc.https})
			c := ts.client(b, clientOpts{ntlm: tc.ntlm})
			in, _ := payload(b, "detect", nil)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var out, errb bytes.Buffer
				if code, err := c.RunWithContextWithInput(context.Background(), psframe.CommandLine(), &out, &errb, bytes.NewReader(in)); err != nil || code != 0 {
					b.Fatal(code, err)
				}
			}
			b.ReportMetric(float64(ts.CountCalls("Receive"))/float64(b.N), "receives/op")
		})
	}
}
