package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/remediate/psframe"
)

// DoctorScript is the script `relaylock doctor` runs (doctor.ps1).
const DoctorScript = "doctor"

// HostConditions are host-wide conditions behind the lab's answer to
// doctor.ps1; the zero value is a healthy host. Tests switch them on to
// show that `relaylock doctor` names each fault.
type HostConditions struct {
	// NoSecondHop: the WinRS process has no network credentials (an NTLM
	// logon, or Kerberos without delegation), so reading the domain over
	// LDAP fails (0x80072020, "An operations error occurred").
	NoSecondHop bool
	// NotDomainJoined: the host is in a workgroup.
	NotDomainJoined bool
	// MaxMemoryPerShellMB is the host's WinRS memory quota, reported by
	// doctor.ps1 and detect.ps1 and enforced on every script
	// (memquota.go); 0 means WinRM's default for the host's OS: 150
	// (WinRM 2.0, Windows before 6.2), else 1024. Apply sets it as an
	// administrator's command on the host does.
	MaxMemoryPerShellMB int
	// QuotasUnreadable: WSMan:\localhost cannot be read (not an
	// administrator: E_ACCESSDENIED).
	QuotasUnreadable bool
	// NoWebWMI and NoMetabase: the IIS 6 WMI / Metabase Compatibility
	// features are missing (they are also missing where SMTPSVC is).
	NoWebWMI, NoMetabase bool
	// Process32Bit: scripts run in a 32-bit powershell.exe (detect and
	// doctor report it).
	Process32Bit bool
}

// hostInfo is h's HostInfo as the host's conditions change it.
func hostInfo(h Host, c HostConditions) remediate.HostInfo {
	info := h.HostInfo()
	if c.Process32Bit {
		info.Is64BitProcess = false
	}
	if info.WinRSMaxMemoryMB > 0 {
		// detect.ps1 reads the quota from the WSMan: drive, as doctor.ps1
		// does (one answer for both); where that drive cannot be read, an
		// administrator's value from the registry, else WinRM's default,
		// reported as assumed.
		switch {
		case !c.QuotasUnreadable:
			info.WinRSMaxMemoryMB, info.WinRSMaxMemorySource = shellQuotaMB(info, c), "wsman"
		case c.MaxMemoryPerShellMB > 0:
			info.WinRSMaxMemoryMB, info.WinRSMaxMemorySource = c.MaxMemoryPerShellMB, "registry"
		default:
			info.WinRSMaxMemoryMB, info.WinRSMaxMemorySource = shellQuotaMB(info, c), "default"
		}
	}
	return info
}

// doctorAnswer answers doctor.ps1 from the host and its conditions.
func doctorAnswer(h Host, p Process, params map[string]string) []psframe.Record {
	info := hostInfo(h, p.Conditions)
	c := p.Conditions
	blob := params["blob"]
	sum := sha256.Sum256([]byte(blob))
	recs := []psframe.Record{
		*psframe.NewRecord("echo").Set("length", strconv.Itoa(utf8.RuneCountInString(blob))).Set("sha256", hex.EncodeToString(sum[:])),
	}
	ps := psframe.NewRecord("ps")
	if info.PSVersion == "" {
		ps.SetNull("version")
	} else {
		ps.Set("version", info.PSVersion)
	}
	clr := "4.0.30319.42000"
	if psMajor(h) < 3 {
		clr = "2.0.50727.8806"
	}
	cp := p.CodePage
	if cp == "" {
		cp = "437"
	}
	ps.Set("clr", clr).Set("is64", detectBoolText(info.Is64BitProcess)).Set("codepage", cp).Set("os_version", info.OSVersion+".0")
	recs = append(recs, *ps)

	mem := shellQuotaMB(info, c)
	for _, q := range []struct{ name, value string }{
		{"MaxMemoryPerShellMB", strconv.Itoa(mem)},
		{"MaxEnvelopeSizekb", strconv.Itoa(p.EnvelopeKB)},
	} {
		r := psframe.NewRecord("quota").Set("name", q.name)
		if c.QuotasUnreadable {
			r.SetNull("value").Set("hresult", hresultAccessDenied)
		} else {
			r.Set("value", q.value).SetNull("hresult")
		}
		recs = append(recs, *r)
	}

	smtp, webWMI := false, true
	for _, s := range info.Services {
		if strings.EqualFold(s.Name, "SMTPSVC") && s.Present {
			smtp = true
		}
	}
	for _, f := range info.Features {
		if f.Name == "Web-WMI" && !f.Installed {
			webWMI = false
		}
	}
	feature := func(name string, present bool, missing string) psframe.Record {
		r := psframe.NewRecord("feature").Set("name", name).Set("present", detectBoolText(present))
		if present {
			r.SetNull("hresult")
		} else {
			r.Set("hresult", missing)
		}
		return *r
	}
	// Without Web-WMI the __NAMESPACE query succeeds and finds no
	// MicrosoftIISv2; without the metabase the IIS:// bind fails
	// (0x80005000, E_ADS_BAD_PATHNAME).
	recs = append(recs, *psframe.NewRecord("feature").Set("name", "Web-WMI").Set("present", detectBoolText(smtp && webWMI && !c.NoWebWMI)).SetNull("hresult"),
		feature("Web-Metabase", smtp && !c.NoMetabase, "0x80005000"))

	ad := psframe.NewRecord("ad")
	switch {
	case c.NotDomainJoined:
		ad.Set("joined", "False").Set("ok", "False").SetNull("dn").SetNull("hresult").SetNull("message")
	case c.NoSecondHop:
		ad.Set("joined", "True").Set("ok", "False").SetNull("dn").Set("hresult", hresultOperationsError).
			Set("message", "An operations error occurred.\r\n")
	default:
		dn := "DC=" + strings.Join(strings.Split(firstNonEmpty(info.Domain, "lab.relaylock.test"), "."), ",DC=")
		ad.Set("joined", "True").Set("ok", "True").Set("dn", dn).SetNull("hresult").SetNull("message")
	}
	return append(recs, *ad)
}

// detectBoolText is [string] of a PowerShell boolean.
func detectBoolText(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// osBefore62 reports Windows older than 6.2 (2012), whose WinRM is 2.0.
func osBefore62(v string) bool {
	f := strings.Split(v, ".")
	if len(f) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(f[0])
	min, err2 := strconv.Atoi(f[1])
	return err1 == nil && err2 == nil && (maj < 6 || maj == 6 && min < 2)
}
