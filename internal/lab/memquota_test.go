package lab

import (
	"testing"

	"github.com/relaylock/relaylock/remediate"
)

// TestShellMemoryQuota: a script that loads the Exchange shell is ended
// when its cost exceeds a set MaxMemoryPerShellMB; other scripts and a
// large enough quota run (the process as the client sees it, end to end:
// cmd/relaylock TestExchangeShellMemoryQuota).
func TestShellMemoryQuota(t *testing.T) {
	ex2010, ex2016, iis := Exchange2010OpenDefault(), Exchange2016OpenCustomConnector(), NewIIS(IISAllExceptEmpty)
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
		{"2010 at the default (reported, not enforced)", ex2010, 0, remediate.HopCheckScript, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := HostConditions{MaxMemoryPerShellMB: tc.mb}
			if got := overQuota(hostInfo(tc.host, c), c, tc.script); got != tc.ended {
				t.Fatalf("overQuota = %v, want %v", got, tc.ended)
			}
		})
	}
	if info := hostInfo(ex2010, HostConditions{MaxMemoryPerShellMB: 1024}); info.WinRSMaxMemoryMB != 1024 || info.WinRSMaxMemorySource != "registry" {
		t.Fatalf("detect reports %d (%s), want 1024 (registry)", info.WinRSMaxMemoryMB, info.WinRSMaxMemorySource)
	}
}
