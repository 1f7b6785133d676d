package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/remediate/psframe"
	"github.com/relaylock/relaylock/templates"
)

var detectHosts = map[string]HostInfo{
	"exchange2019": sampleHost,
	"exchangeSE": {ComputerName: "EX2", OSCaption: "Microsoft Windows Server 2022 Datacenter", OSVersion: "10.0.20348", PSVersion: "5.1.20348.2849",
		Is64BitProcess: true, ExchangeVersion: "SE", ExchangeBuild: "15.2.2562.17", ExchangeRoles: []string{"Mailbox"},
		Services:         []ServiceInfo{{Name: "SMTPSVC"}, {Name: "MSExchangeTransport", Present: true, State: "Running", StartMode: "Auto"}},
		WinRSMaxMemoryMB: 1024, WinRSMaxMemorySource: "wsman", Platform: PlatformExchange},
	"exchange2010": {ComputerName: "EX3", OSCaption: "Microsoft Windows Server 2008 R2 Enterprise", OSVersion: "6.1.7601", PSVersion: "2.0",
		Is64BitProcess: true, ExchangeVersion: "2010", ExchangeBuild: "14.3.123.4", ExchangeRoles: []string{"ClientAccess", "HubTransport", "Mailbox"},
		Services: []ServiceInfo{{Name: "MSExchangeTransport", Present: true, State: "Running", StartMode: "Auto"}},
		Features: []FeatureInfo{{Name: "SMTP-Server"}, {Name: "Web-WMI"}}, WinRSMaxMemoryMB: 150, WinRSMaxMemorySource: "default", Platform: PlatformExchange},
	"exchange2003": {ComputerName: "OLDMAIL", Domain: "corp.local", OSCaption: "Microsoft(R) Windows(R) Server 2003, Standard Edition", OSVersion: "5.2.3790",
		PSVersion: "2.0", ExchangeVersion: "2003", ExchangeBuild: "6.5.7638",
		Services: []ServiceInfo{{Name: "SMTPSVC", Present: true, State: "Running", StartMode: "Auto"}, {Name: "MSExchangeSA", Present: true, State: "Running", StartMode: "Auto"}},
		Platform: PlatformExchange2003},
	"iis": {ComputerName: "RELAY", Domain: "WORKGROUP", OSCaption: "Microsoft Windows Server 2016 Standard", OSVersion: "10.0.14393", PSVersion: "5.1.14393.0",
		Is64BitProcess: true, Services: []ServiceInfo{{Name: "SMTPSVC", Present: true, State: "Stopped", StartMode: "Manual"}},
		Features: []FeatureInfo{{Name: "SMTP-Server", Installed: true}, {Name: "Web-WMI", Installed: true}}, Platform: PlatformIIS},
}

func TestEncodeDecodeHostInfo(t *testing.T) {
	for name, h := range detectHosts {
		t.Run(name, func(t *testing.T) {
			// Through the real framing, as the lab answers it.
			out, err := psframe.DecodeOutput("n1", psframe.EncodeOutput("n1", EncodeHostInfo(h), 0))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeHostInfo(out.Records)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(h)
			if string(gj) != string(wj) {
				t.Errorf("round trip:\n got %s\nwant %s", gj, wj)
			}
		})
	}
}

type fixedRunner struct {
	recs []psframe.Record
	err  error
}

func (f fixedRunner) Run(_ context.Context, script string, _ map[string]string) (*ScriptRun, error) {
	if f.err != nil {
		return &ScriptRun{Script: script}, f.err
	}
	return &ScriptRun{Script: script, Output: &psframe.Output{Records: f.recs}}, nil
}

func TestDetectPlatform(t *testing.T) {
	svc := func(names ...string) []ServiceInfo {
		var s []ServiceInfo
		for _, n := range names {
			s = append(s, ServiceInfo{Name: n, Present: true, State: "Running", StartMode: "Auto"})
		}
		return s
	}
	tests := []struct {
		name string
		h    HostInfo
		want Platform
		err  error
	}{
		{"iis", HostInfo{ComputerName: "A", Services: svc("SMTPSVC")}, PlatformIIS, nil},
		{"nothing", HostInfo{ComputerName: "A", Services: []ServiceInfo{{Name: "SMTPSVC"}}}, "", ErrNoSMTPService},
		{"exchange 2016", HostInfo{ComputerName: "A", ExchangeVersion: "2016", ExchangeBuild: "15.1.2507.6", Services: svc("MSExchangeTransport")}, PlatformExchange, nil},
		{"exchange 2013 CAS only", HostInfo{ComputerName: "A", ExchangeVersion: "2013", ExchangeBuild: "15.0.1497.2", Services: svc("MSExchangeFrontEndTransport")}, PlatformExchange, nil},
		{"exchange beats smtpsvc", HostInfo{ComputerName: "A", ExchangeVersion: "2019", ExchangeBuild: "15.2.1544.4", Services: svc("SMTPSVC", "MSExchangeTransport")}, PlatformExchange, nil},
		{"exchange tools only with smtpsvc", HostInfo{ComputerName: "A", ExchangeVersion: "2019", ExchangeBuild: "15.2.1544.4", Services: svc("SMTPSVC")}, PlatformIIS, nil},
		{"exchange tools only", HostInfo{ComputerName: "A", ExchangeVersion: "2019", ExchangeBuild: "15.2.1544.4"}, "", ErrNoSMTPService},
		{"exchange 2003", HostInfo{ComputerName: "A", ExchangeVersion: "2003", ExchangeBuild: "6.5.6944", Services: svc("SMTPSVC", "MSExchangeSA")}, PlatformExchange2003, nil},
		{"exchange 2000", HostInfo{ComputerName: "A", ExchangeVersion: "2000", ExchangeBuild: "6.0.4417", Services: svc("SMTPSVC", "MSExchangeSA")}, PlatformExchange2003, nil},
		{"exchange 2003 by ExchangeServerAdmin", HostInfo{ComputerName: "A", ExchangeVersion: "2003", ExchangeBuild: "6.5.7638", ExchangeServerAdmin: `C:\Program Files\Exchsrvr`, Services: svc("SMTPSVC")}, PlatformExchange2003, nil},
		// The Setup key alone is also Exchange 4.0-5.5's, or a leftover.
		{"setup key alone with smtpsvc", HostInfo{ComputerName: "A", ExchangeVersion: "2003", ExchangeBuild: "6.5.7638", Services: svc("SMTPSVC")}, PlatformIIS, nil},
		{"setup key alone", HostInfo{ComputerName: "A", ExchangeVersion: "2003"}, "", ErrNoSMTPService},
		{"exchange 5.5", HostInfo{ComputerName: "A", ExchangeVersion: "5.5 or older", ExchangeBuild: "2653", Services: svc("SMTPSVC", "MSExchangeSA")}, "", ErrUnsupportedPlatform},
		{"exchange 2003 without smtpsvc", HostInfo{ComputerName: "A", ExchangeVersion: "2003", ExchangeBuild: "6.5.6944"}, "", ErrNoSMTPService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, _, err := Detect(context.Background(), fixedRunner{recs: EncodeHostInfo(tt.h)})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if info.Platform != tt.want {
				t.Errorf("platform = %q, want %q", info.Platform, tt.want)
			}
			if errors.Is(err, ErrNoSMTPService) && !strings.Contains(err.Error(), "no SMTP service found on A") ||
				errors.Is(err, ErrUnsupportedPlatform) && !strings.Contains(err.Error(), "build 2653, Exchange 4.0-5.5") {
				t.Errorf("err = %q", err)
			}
		})
	}
	if _, _, err := Detect(context.Background(), fixedRunner{err: ErrAuth}); !errors.Is(err, ErrAuth) {
		t.Errorf("runner error lost: %v", err)
	}
	if _, _, err := Detect(context.Background(), fixedRunner{}); !errors.Is(err, psframe.ErrFrame) {
		t.Errorf("missing host record: %v", err)
	}
}

func TestExchangeVersion(t *testing.T) {
	rec := func(gen string, kv ...string) psframe.Record {
		r := psframe.NewRecord("exchange").Set("generation", gen)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Set(kv[i], kv[i+1])
		}
		return *r
	}
	tests := []struct {
		r          psframe.Record
		ver, build string
		wantErr    bool
	}{
		{rec("v8", "major", "8", "minor", "3", "build_major", "83", "build_minor", "6"), "2007", "8.3.83.6", false},
		{rec("v14", "major", "14", "minor", "3"), "2010", "14.3", false},
		{rec("v15", "major", "15", "minor", "0", "build_major", "1497", "build_minor", "2"), "2013", "15.0.1497.2", false},
		{rec("v15", "major", "15", "minor", "1", "build_major", "2507", "build_minor", "6"), "2016", "15.1.2507.6", false},
		{rec("v15", "major", "15", "minor", "2", "build_major", "2561", "build_minor", "0"), "2019", "15.2.2561.0", false},
		{rec("v15", "major", "15", "minor", "2", "build_major", "2562", "build_minor", "17"), "SE", "15.2.2562.17", false},
		{rec("v6", "build_major", "4417"), "2000", "6.0.4417", false},
		{rec("v6"), "2003", "", false},
		{rec("v15", "major", "fifteen"), "", "", true},
		{rec("v99"), "", "", true},
	}
	for _, tt := range tests {
		ver, build, err := exchangeVersion(tt.r)
		if (err != nil) != tt.wantErr || ver != tt.ver || build != tt.build {
			t.Errorf("exchangeVersion(%v) = %q, %q, %v; want %q, %q, err %v", tt.r, ver, build, err, tt.ver, tt.build, tt.wantErr)
		}
	}
}

var (
	reRLRec       = regexp.MustCompile(`RL-Rec\s+'([A-Za-z0-9_]+)'\s+@\((.*)\)\s*$`)
	reRecFieldLit = regexp.MustCompile(`'([a-z][a-z0-9_]*)'\s*,`)
)

// scriptRecords extracts, per record type, the field names of every
// RL-Rec call in a script (calls are one line each; field names are
// single-quoted literals followed by a comma, values never are).
func scriptRecords(t *testing.T, src string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i, line := range strings.Split(src, "\n") {
		if !strings.Contains(line, "RL-Rec ") || strings.HasPrefix(strings.TrimSpace(line), "#") || strings.Contains(line, "function RL-Rec") {
			continue
		}
		m := reRLRec.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			t.Fatalf("line %d: RL-Rec call not in the one-line form: %s", i+1, line)
		}
		var names []string
		for _, f := range reRecFieldLit.FindAllStringSubmatch(m[2], -1) {
			names = append(names, f[1])
		}
		out[m[1]] = mergeSorted(out[m[1]], names)
	}
	return out
}

func mergeSorted(a, b []string) []string {
	set := map[string]bool{}
	for _, s := range append(a, b...) {
		set[s] = true
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestDetectScriptMatchesEncodeHostInfo(t *testing.T) {
	src, err := templates.Script(DetectScript)
	if err != nil {
		t.Fatal(err)
	}
	fromScript := scriptRecords(t, src)
	fromGo := map[string][]string{}
	for _, h := range detectHosts {
		for _, r := range EncodeHostInfo(h) {
			var names []string
			for _, f := range r.Fields {
				names = append(names, f.Name)
			}
			fromGo[r.Type] = mergeSorted(fromGo[r.Type], names)
		}
	}
	if !reflect.DeepEqual(fromScript, fromGo) {
		t.Errorf("detect.ps1 and EncodeHostInfo disagree:\n script: %v\n     go: %v", fromScript, fromGo)
	}
	// Every service of interest is asked for by the script.
	for _, s := range ServicesOfInterest {
		if !strings.Contains(src, "'"+s+"'") {
			t.Errorf("detect.ps1 does not query service %s", s)
		}
	}
}
