// Package buildinfo says which version and commit a binary was built
// from: the values set at link time, else the module version and the
// version-control stamp the Go toolchain writes into the binary.
package buildinfo

import "runtime/debug"

// Version returns ver and rev, the version and commit set at link time
// (-ldflags "-X ..."; "dev" and "" when not set), completed from the
// binary's build info: the module version when ver is "dev", the VCS
// revision (with "-dirty" for a modified tree) when rev is empty, and
// "unknown" for a revision nobody recorded.
func Version(ver, rev string) (string, string) {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok, ver, rev)
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool, ver, rev string) (string, string) {
	if ok {
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		if rev == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
				if s.Key == "vcs.modified" && s.Value == "true" && rev != "" {
					rev += "-dirty"
				}
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}
