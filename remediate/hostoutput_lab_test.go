package remediate_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

func hostOutputFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hostoutput", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The lab replays the hand-written outputs of testdata/hostoutput through
// WinRM, so the whole path (transport, frame, decoders, findings) runs on
// outputs that no relaylock encoder wrote.
func TestLabReplaysHostOutputs(t *testing.T) {
	t.Run("iis sample A", func(t *testing.T) {
		l := startLab(t, lab.Config{Platform: "iis", WinRM: lab.WSManConfig{
			Replay: map[string][]byte{remediate.ScriptIISRead: hostOutputFile(t, "iis-read-sample-a.txt")}}})
		r, _ := runner(t, labConfig(t, l))
		insp, err := remediate.InspectHost(ctxT(t, 30*time.Second), r, l.WinRMHost, nil)
		if err != nil {
			t.Fatal(err)
		}
		var list string
		for _, s := range insp.Settings {
			if s.Object == "SmtpSvc/1" && strings.Contains(strings.ToLower(s.Name), "relayiplist") {
				list = s.Value
			}
		}
		if !strings.Contains(list, "127.0.0.1") {
			t.Errorf("SmtpSvc/1 relay list %q, want sample A's 127.0.0.1 (settings %+v)", list, insp.Settings)
		}
		for _, f := range insp.Findings {
			if f.Severity == remediate.SeverityHigh && f.Object == "SmtpSvc/1" {
				t.Errorf("sample A is closed, but: %+v", f)
			}
		}
	})
	t.Run("detect exchange 2003", func(t *testing.T) {
		l := startLab(t, lab.Config{Platform: "exchange2003", WinRM: lab.WSManConfig{
			Replay: map[string][]byte{remediate.DetectScript: hostOutputFile(t, "detect-exchange2003.txt")}}})
		r, _ := runner(t, labConfig(t, l))
		info, _, err := remediate.Detect(ctxT(t, 30*time.Second), r)
		if err != nil {
			t.Fatal(err)
		}
		if info.ComputerName != "EXCH03" || info.Platform != remediate.PlatformExchange2003 || info.ExchangeServerAdmin == "" {
			t.Errorf("detect = %+v", info)
		}
	})
	t.Run("exchange anonymous relay connector", func(t *testing.T) {
		l := startLab(t, lab.Config{Platform: "exchange2016", WinRM: lab.WSManConfig{
			Replay: map[string][]byte{remediate.ExchangeReadScript: hostOutputFile(t, "exchange-read-anonymous-relay.txt")}}})
		r, _ := runner(t, labConfig(t, l))
		prober := []netip.Addr{netip.MustParseAddr("192.168.5.10")}
		insp, err := remediate.InspectHost(ctxT(t, 30*time.Second), r, l.WinRMHost, prober)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range insp.Findings {
			if f.ID == remediate.FindExchAnonRelay && strings.Contains(f.Object, "Anonymous Relay") && f.Explains {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s finding explaining 192.168.5.10 for the documented anonymous relay connector: %+v", remediate.FindExchAnonRelay, insp.Findings)
		}
	})
	t.Run("German host without Web-WMI", func(t *testing.T) {
		l := startLab(t, lab.Config{Platform: "iis", WinRM: lab.WSManConfig{
			Replay: map[string][]byte{remediate.ScriptIISRead: hostOutputFile(t, "iis-read-no-webwmi-de.txt")}}})
		r, _ := runner(t, labConfig(t, l))
		_, err := remediate.InspectHost(ctxT(t, 30*time.Second), r, l.WinRMHost, nil)
		if !errors.Is(err, remediate.ErrFeatureMissing) || !strings.Contains(err.Error(), "Ungültiger Namespace") {
			t.Errorf("err = %v", err)
		}
	})
}
