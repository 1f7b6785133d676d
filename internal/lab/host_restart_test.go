package lab

import (
	"context"
	"strings"
	"testing"
)

func TestServiceRestart(t *testing.T) {
	for _, platform := range []string{"iis", "exchange2003", "exchange2016"} {
		t.Run(platform, func(t *testing.T) {
			h, err := NewHost(platform)
			if err != nil {
				t.Fatal(err)
			}
			r := &DirectRunner{Host: h}
			svc := "SMTPSVC"
			if platform == "exchange2016" {
				svc = "MSExchangeFrontEndTransport"
			}
			run, err := r.Run(context.Background(), "service-restart", map[string]string{"service": svc})
			if err != nil || run.ExitCode != 0 {
				t.Fatalf("restart %s: %v (exit %d, %v)", svc, err, run.ExitCode, run.Errors)
			}
			if rec, ok := run.Output.First("service"); !ok || rec.Str("state") != "Running" {
				t.Errorf("no service record: %+v", run.Output.Records)
			}
			// Anything but the mail services is refused, as the script does.
			run, err = r.Run(context.Background(), "service-restart", map[string]string{"service": "WinRM"})
			if err != nil || run.ExitCode != 2 || len(run.Errors) == 0 || !strings.Contains(run.Errors[0], "refusing") {
				t.Errorf("restart WinRM: err %v exit %d errors %v", err, run.ExitCode, run.Errors)
			}
		})
	}
	// A service the host does not have fails like Restart-Service.
	h, _ := NewHost("iis")
	run, err := (&DirectRunner{Host: h}).Run(context.Background(), "service-restart", map[string]string{"service": "MSExchangeTransport"})
	if err != nil || run.ExitCode != 1 || !strings.Contains(strings.Join(run.Errors, ""), "Cannot find any service") {
		t.Errorf("missing service: err %v exit %d errors %v", err, run.ExitCode, run.Errors)
	}
}
