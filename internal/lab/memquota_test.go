package lab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaylock/relaylock/remediate"
)

// TestShellMemoryQuota: a script that loads the Exchange shell is ended
// when its cost exceeds MaxMemoryPerShellMB, the host's WinRM default
// included; other scripts and a large enough quota run (the process as
// the client sees it, end to end: cmd/relaylock
// TestExchangeShellMemoryQuota).
func TestShellMemoryQuota(t *testing.T) {
	ex2010, ex2007, ex2016, iis, ex2003 := Exchange2010OpenDefault(), Exchange2007OpenDefault(), Exchange2016OpenCustomConnector(), NewIIS(IISAllExceptEmpty), NewExchange2003(Ex2003Open)
	for _, tc := range []struct {
		name   string
		host   Host
		mb     int
		script string
		ended  bool
	}{
		{"2010 hop check at 150", ex2010, 150, remediate.HopCheckScript, true},
		{"2010 detect at 150", ex2010, 150, remediate.DetectScript, false},
		{"2010 hop check at 1024", ex2010, 1024, remediate.HopCheckScript, false},
		{"2016 hop check at 300", ex2016, 300, remediate.HopCheckScript, true},
		{"2016 hop check at 1024", ex2016, 1024, remediate.HopCheckScript, false},
		{"IIS at 100", iis, 100, remediate.HopCheckScript, false},
		{"2010 at WinRM 2.0's default", ex2010, 0, remediate.HopCheckScript, true},
		{"2010 read at WinRM 2.0's default", ex2010, 0, remediate.ExchangeReadScript, true},
		{"2007 at WinRM 2.0's default", ex2007, 0, remediate.ExchangeWriteScript, true},
		{"2016 at WinRM 3.0's default", ex2016, 0, remediate.ExchangeReadScript, false},
		{"2003 (WinRM 2.0, no Exchange shell) at the default", ex2003, 0, remediate.ScriptEx2003ReadAD, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := HostConditions{MaxMemoryPerShellMB: tc.mb}
			if got := overQuota(hostInfo(tc.host, c), c, tc.script); got != tc.ended {
				t.Fatalf("overQuota = %v, want %v", got, tc.ended)
			}
		})
	}
	// detect.ps1 reads the quota from the WSMan: drive, as doctor.ps1
	// does; only where that drive cannot be read does it fall back to
	// the registry (an administrator's value) or WinRM's default.
	for _, tc := range []struct {
		name string
		c    HostConditions
		mb   int
		src  string
	}{
		{"default, readable", HostConditions{}, 150, "wsman"},
		{"raised, readable", HostConditions{MaxMemoryPerShellMB: 1024}, 1024, "wsman"},
		{"default, unreadable", HostConditions{QuotasUnreadable: true}, 150, "default"},
		{"raised, unreadable", HostConditions{MaxMemoryPerShellMB: 1024, QuotasUnreadable: true}, 1024, "registry"},
	} {
		if info := hostInfo(ex2010, tc.c); info.WinRSMaxMemoryMB != tc.mb || info.WinRSMaxMemorySource != tc.src {
			t.Errorf("%s: detect reports %d (%s), want %d (%s)", tc.name, info.WinRSMaxMemoryMB, info.WinRSMaxMemorySource, tc.mb, tc.src)
		}
	}
}

// Every registered platform that models WinRM 2.0 (Windows before 6.2)
// enforces the 150 MB default: over the real WinRM client, unprepared,
// the Exchange 2007/2010 hosts end the hop check out of memory and
// relaylock stops with ErrShellMemoryQuota before any read; prepared as
// the README asks, the same hosts are inspected. Hosts at WinRM 3.0+
// need no preparation.
func TestShellMemoryQuotaByDefault(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	winrm2 := 0
	for _, platform := range Platforms() {
		h, err := NewHost(platform)
		if err != nil {
			t.Fatal(err)
		}
		info := h.HostInfo()
		if info.Platform != remediate.PlatformExchange {
			continue
		}
		prep := HostPreparation(h)
		if osBefore62(info.OSVersion) != (len(prep) == 1) {
			t.Fatalf("%s (%s): preparation %q", platform, info.OSVersion, prep)
		}
		if len(prep) == 0 {
			continue
		}
		winrm2++
		if prep[0] != remediate.ShellMemoryQuotaFixWinRM2 || !strings.Contains(string(readme), "`"+prep[0]+"`") {
			t.Errorf("%s: preparation %q, want the README's %q", platform, prep, remediate.ShellMemoryQuotaFixWinRM2)
		}
		for _, prepared := range []bool{false, true} {
			t.Run(platform+map[bool]string{false: "/default", true: "/prepared"}[prepared], func(t *testing.T) {
				l := startLab(t, Config{Platform: platform, SealedHTTP: true, PrepareHost: prepared, WinRM: WSManConfig{MaxOperationTimeout: 5 * time.Second}})
				r, _, err := remediate.NewWinRMRunner(remediate.WinRMConfig{Host: l.WinRMHost, Port: l.WinRMPort, Auth: remediate.AuthNTLM,
					User: l.User, Password: l.Password, OperationTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				insp, err := remediate.InspectHost(context.Background(), r, l.WinRMHost, []netip.Addr{netip.MustParseAddr("203.0.113.9")})
				if !prepared {
					if !errors.Is(err, remediate.ErrShellMemoryQuota) || !strings.Contains(err.Error(), remediate.ShellMemoryQuotaFixWinRM2) {
						t.Fatalf("unprepared: %v, want ErrShellMemoryQuota naming the fix", err)
					}
					if insp == nil || !strings.Contains(strings.Join(insp.Warnings, "\n"), "150 MB") {
						t.Errorf("no warning before the shell loads: %+v", insp)
					}
					for _, run := range l.WinRM.Runs() {
						if run.Script == remediate.ExchangeReadScript || run.Script == remediate.ExchangeWriteScript {
							t.Errorf("ran %s after the quota ended the hop check", run.Script)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("prepared (%q): %v", l.HostCommands, err)
				}
				if insp.HostInfo.WinRSMaxMemoryMB != 1024 || len(insp.Warnings) != 0 {
					t.Errorf("prepared: detect reports %d MB, warnings %q", insp.HostInfo.WinRSMaxMemoryMB, insp.Warnings)
				}
			})
		}
	}
	if winrm2 < 2 {
		t.Errorf("%d WinRM 2.0 Exchange platforms, want exchange2007 and exchange2010", winrm2)
	}
}

// HostConditions.Apply takes the commands relaylock and the README give,
// as typed in cmd.exe or PowerShell, and nothing else.
func TestHostConditionsApply(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want int // 0: refused
	}{
		{remediate.ShellMemoryQuotaFixWinRM2, 1024},
		{remediate.ShellMemoryQuotaFix, 1024},
		{`winrm set winrm/config/winrs '@{MaxMemoryPerShellMB="2048"}'`, 2048},
		{`WinRM s winrm/config/winrs @{MaxMemoryPerShellMB = "512"}`, 512},
		{`Set-Item -Path WSMan:\localhost\Shell\MaxMemoryPerShellMB -Value 300 -Force`, 300},
		{`winrm set winrm/config/winrs '@{MaxMemoryPerShellMB="2048"}`, 0}, // unbalanced quote
		{`winrm set winrm/config/winrs @{MaxMemoryPerShellMB="0"}`, 0},     // unlimited: not modelled
		{`winrm set winrm/config/winrs @{MaxShellsPerUser="50"}`, 0},
		{`winrm set winrm/config @{MaxMemoryPerShellMB="1024"}`, 0},
		{`Set-Item WSMan:\localhost\Plugin\microsoft.powershell\Quotas\MaxMemoryPerShellMB 1024`, 0},
		{`winrm set winrm/config/winrs @{MaxMemoryPerShellMB="1024"}; format c:`, 0},
	} {
		c, err := HostConditions{}.Apply(tc.cmd)
		switch {
		case tc.want == 0 && !errors.Is(err, ErrHostCommand):
			t.Errorf("%q: %+v, %v; want ErrHostCommand", tc.cmd, c, err)
		case tc.want != 0 && (err != nil || c.MaxMemoryPerShellMB != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.cmd, c.MaxMemoryPerShellMB, err, tc.want)
		}
	}
}
