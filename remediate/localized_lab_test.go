package remediate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// TestLabLocalizedErrors: a host answering in German is classified exactly
// as one answering in English, because classification reads HRESULTs and
// exception types, never message text; the German message still reaches
// the operator.
func TestLabLocalizedErrors(t *testing.T) {
	tests := []struct {
		name     string
		host     func() lab.Host
		want     error
		hresult  string
		germanIn string
	}{
		{"IIS without Web-WMI", func() lab.Host { return lab.NewIIS(lab.IISNoWebWMI) }, remediate.ErrFeatureMissing,
			remediate.HResultInvalidNamespace, "Ungültiger Namespace"},
		{"Exchange 2003, AD unreachable", func() lab.Host { return lab.NewExchange2003(lab.Ex2003ADUnavailable) }, nil, // inspect reports it, it does not fail
			"0x80072020", "Ein Vorgangsfehler ist aufgetreten"},
	}
	for _, tc := range tests {
		for _, lang := range []string{"en-US", "de-DE"} {
			t.Run(tc.name+"/"+lang, func(t *testing.T) {
				l := startLab(t, lab.Config{Host: tc.host(), WinRM: lab.WSManConfig{Language: lang}})
				r, _ := runner(t, labConfig(t, l))
				insp, err := remediate.InspectHost(ctxT(t, 30*time.Second), r, l.WinRMHost, nil)
				if tc.want != nil && !errors.Is(err, tc.want) || tc.want == nil && err != nil {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				// What the operator and the evidence get: the error, and
				// each run's messages with their HRESULT.
				text := ""
				if err != nil {
					text = err.Error()
				}
				if insp != nil {
					for _, run := range insp.Runs {
						text += "\n" + strings.Join(run.Errors, "\n")
					}
					for _, f := range insp.Findings {
						text += "\n" + f.Detail
					}
				}
				if !strings.Contains(text, "HRESULT "+tc.hresult) {
					t.Errorf("the HRESULT %s is not reported: %q", tc.hresult, text)
				}
				if got := strings.Contains(text, tc.germanIn); got != (lang == "de-DE") {
					t.Errorf("German message shown = %v on a %s host: %q", got, lang, text)
				}
			})
		}
	}
}
