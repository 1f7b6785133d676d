package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0c6fe98"}, {Key: "vcs.modified", Value: "false"}}}
	dirty := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0c6fe98"}, {Key: "vcs.modified", Value: "true"}}}
	unstamped := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	tests := []struct {
		name             string
		bi               *debug.BuildInfo
		ok               bool
		ver, rev         string
		wantVer, wantRev string
	}{
		{"from the build info", stamped, true, "dev", "", "v1.4.0", "0c6fe98"},
		{"link-time values win", stamped, true, "v2.0.0", "abc123", "v2.0.0", "abc123"},
		{"a modified tree", dirty, true, "dev", "", "dev", "0c6fe98-dirty"},
		{"no VCS stamp", unstamped, true, "dev", "", "dev", "unknown"},
		{"no build info", nil, false, "dev", "", "dev", "unknown"},
		{"no build info, link-time values", nil, false, "v2.0.0", "abc123", "v2.0.0", "abc123"},
	}
	for _, tc := range tests {
		ver, rev := fromBuildInfo(tc.bi, tc.ok, tc.ver, tc.rev)
		if ver != tc.wantVer || rev != tc.wantRev {
			t.Errorf("%s: got %q, %q; want %q, %q", tc.name, ver, rev, tc.wantVer, tc.wantRev)
		}
	}
}

// TestVersionReadsThisBinary: the test binary has build info, so a
// link-time version is kept and a revision is always named.
func TestVersionReadsThisBinary(t *testing.T) {
	ver, rev := Version("v9.9.9", "")
	if ver != "v9.9.9" || rev == "" {
		t.Errorf("Version = %q, %q", ver, rev)
	}
}
