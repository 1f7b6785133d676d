package engagement

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/audit"
)

// The probe options are checked when the probe is set up, in the order
// the command line has always checked them; each mistake is a usage error
// naming the flag.
func TestProbeOptionsChecked(t *testing.T) {
	base := ProbeOptions{Ports: "25", Depth: audit.DepthData, PerHost: 16}
	e := &Env{Resolver: &audit.MockResolver{}}
	for _, tc := range []struct {
		name      string
		change    func(o *ProbeOptions)
		targets   []string
		wantDepth string
		usage     string
	}{
		{"defaults", nil, []string{"example.com"}, audit.DepthData, ""},
		{"no depth at all is data", func(o *ProbeOptions) { o.Depth = "" }, []string{"example.com"}, audit.DepthData, ""},
		{"deliver over the default depth", func(o *ProbeOptions) { o.Deliver = true }, []string{"example.com"}, audit.DepthDeliver, ""},
		{"no target", nil, nil, "", "name at least one TARGET"},
		{"no target before a bad port", func(o *ProbeOptions) { o.Ports = "x" }, nil, "", "name at least one TARGET"},
		{"bad port", func(o *ProbeOptions) { o.Ports = "25,x" }, []string{"example.com"}, "", `--ports: bad port "x"`},
		{"deliver against a depth given", func(o *ProbeOptions) { o.Deliver, o.DepthGiven = true, true }, []string{"example.com"}, "", "--deliver conflicts with --depth data"},
		{"an empty depth given", func(o *ProbeOptions) { o.Depth, o.DepthGiven = "", true }, []string{"example.com"}, "", "--depth must be rcpt, data or deliver"},
		{"per host", func(o *ProbeOptions) { o.PerHost = 0 }, []string{"example.com"}, "", "--per-host must be at least 1"},
		{"concurrency", func(o *ProbeOptions) { o.Concurrency = -1 }, []string{"example.com"}, "", "--concurrency must be at least 1"},
		{"rate", func(o *ProbeOptions) { o.Rate = -1 }, []string{"example.com"}, "", "--rate must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.change != nil {
				tc.change(&o)
			}
			opts, err := o.auditOptions(e, tc.targets)
			if tc.usage != "" {
				var ue UsageError
				if !asUsage(err, &ue) || !strings.Contains(ue.Msg, tc.usage) {
					t.Fatalf("err %v, want a usage error with %q", err, tc.usage)
				}
				return
			}
			if err != nil || opts.Depth != tc.wantDepth || opts.Resolver != e.Resolver {
				t.Fatalf("err %v, depth %q (want %q)", err, opts.Depth, tc.wantDepth)
			}
		})
	}
}

// Catch mode's own checks come before any listener is opened.
func TestCatchOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		o     AuditOptions
		usage string
	}{
		{"listen without a domain", AuditOptions{Catch: CatchOptions{ListenGiven: true, WaitGiven: true}}, "--catch-listen needs --catch-domain"},
		{"wait without a domain", AuditOptions{Catch: CatchOptions{WaitGiven: true}}, "--catch-wait needs --catch-domain"},
		{"deliver without a recipient", AuditOptions{Probe: ProbeOptions{Deliver: true}}, "--deliver needs --to ADDR"},
		{"depth deliver without a recipient", AuditOptions{Probe: ProbeOptions{Depth: audit.DepthDeliver}}, "--deliver needs --to ADDR"},
		{"a recipient given, even empty", AuditOptions{Catch: CatchOptions{Domain: "catch.example"}, Probe: ProbeOptions{ToGiven: true}}, "conflicts with --to"},
		{"a depth given", AuditOptions{Catch: CatchOptions{Domain: "catch.example"}, Probe: ProbeOptions{Depth: "rcpt", DepthGiven: true}}, "conflicts with --depth rcpt"},
		{"no wait", AuditOptions{Catch: CatchOptions{Domain: "catch.example", WaitGiven: true}}, "--catch-wait must be positive"},
		{"bad listen address", AuditOptions{Catch: CatchOptions{Domain: "catch.example", Listen: "localhost", ListenGiven: true}}, `--catch-listen "localhost": want ADDR:PORT`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts audit.Options
			cleanup, err := setupCatch(context.Background(), &Env{}, tc.o, &opts)
			if cleanup != nil {
				cleanup()
			}
			var ue UsageError
			if !asUsage(err, &ue) || !strings.Contains(ue.Msg, tc.usage) {
				t.Fatalf("err %v, want a usage error with %q", err, tc.usage)
			}
			if opts.Catcher != nil {
				t.Error("a catcher was set up")
			}
		})
	}
}

func asUsage(err error, ue *UsageError) bool { return errors.As(err, ue) }
