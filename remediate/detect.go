package remediate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// DetectScript is the embedded script Detect runs.
const DetectScript = "detect"

// Record types and fields printed by templates/powershell/detect.ps1.
// EncodeHostInfo and decodeHostInfo are its Go mirror; a test checks that
// the three agree.
const (
	detRecHost     = "host"
	detRecExchange = "exchange"
	detRecService  = "service"
	detRecFeature  = "feature"
	detRecWinRS    = "winrs"
)

// ServicesOfInterest are the services detect.ps1 reports, in its order.
var ServicesOfInterest = []string{"SMTPSVC", "MSExchangeTransport", "MSExchangeFrontEndTransport", "MSExchangeSA"}

// ErrNoSMTPService: the host runs neither Exchange nor the IIS SMTP service.
var ErrNoSMTPService = errors.New("no SMTP service found")

// Detect runs the detect script and decides the platform: Exchange 2007
// and later → PlatformExchange; Exchange 2000/2003 → PlatformExchange2003;
// the IIS SMTP service (SMTPSVC) without Exchange → PlatformIIS. A host
// with none of them is an ErrNoSMTPService error (the HostInfo is still
// returned, for the report).
func Detect(ctx context.Context, r Runner) (HostInfo, *ScriptRun, error) {
	run, err := r.Run(ctx, DetectScript, nil)
	if err != nil {
		return HostInfo{}, run, fmt.Errorf("detect: %w", err)
	}
	if run == nil || run.Output == nil {
		return HostInfo{}, run, fmt.Errorf("detect: %w: no decoded output", psframe.ErrFrame)
	}
	h, err := decodeHostInfo(run.Output.Records)
	if err != nil {
		return h, run, fmt.Errorf("detect: %w", err)
	}
	return h, run, nil
}

// decodeHostInfo turns detect.ps1's records into a HostInfo and decides
// the platform.
func decodeHostInfo(recs []psframe.Record) (HostInfo, error) {
	var h HostInfo
	out := psframe.Output{Records: recs}
	hr, ok := out.First(detRecHost)
	if !ok {
		return h, fmt.Errorf("%w: detect printed no %q record", psframe.ErrFrame, detRecHost)
	}
	h.ComputerName = hr.Str("computer")
	h.Domain = hr.Str("domain")
	h.OSCaption = hr.Str("os_caption")
	h.OSVersion = hr.Str("os_version")
	h.PSVersion = hr.Str("ps_version")
	if hr.Has("is64") {
		b, err := hr.Bool("is64")
		if err != nil {
			return h, err
		}
		h.Is64BitProcess = b
	}
	var gen string
	if er, ok := out.First(detRecExchange); ok {
		gen = er.Str("generation")
		ver, build, err := exchangeVersion(er)
		if err != nil {
			return h, err
		}
		h.ExchangeVersion, h.ExchangeBuild = ver, build
		h.ExchangeRoles = er.List("roles")
		sort.Strings(h.ExchangeRoles)
		h.ExchangeServerAdmin = er.Str("server_admin")
	}
	for _, sr := range out.Of(detRecService) {
		s := ServiceInfo{Name: sr.Str("name"), State: sr.Str("state"), StartMode: sr.Str("start_mode")}
		p, err := sr.Bool("present")
		if err != nil {
			return h, err
		}
		s.Present = p
		h.Services = append(h.Services, s)
	}
	for _, fr := range out.Of(detRecFeature) {
		in, err := fr.Bool("installed")
		if err != nil {
			return h, err
		}
		h.Features = append(h.Features, FeatureInfo{Name: fr.Str("name"), Installed: in})
	}
	if wr, ok := out.First(detRecWinRS); ok {
		if _, has := wr.Get("max_memory_mb"); has {
			n, err := wr.Int("max_memory_mb")
			if err != nil {
				return h, err
			}
			h.WinRSMaxMemoryMB = int(n)
		}
		h.WinRSMaxMemorySource = wr.Str("source")
	}
	p, err := decidePlatform(h, gen)
	h.Platform = p
	return h, err
}

// exchangeVersion names the Exchange release from the Setup registry
// values (docs/windows-relay.md §4): v8.0 = 2007, v14 = 2010, v15 with
// MsiProductMinor 0 = 2013, 1 = 2016, 2 = 2019 (MsiBuildMajor < 2562) or
// Subscription Edition (>= 2562, CSS-Exchange
// Get-ExchangeBuildVersionInformation.ps1); Exchange\Setup = 2000/2003.
func exchangeVersion(r psframe.Record) (version, build string, err error) {
	num := func(name string) (int64, bool, error) {
		if _, ok := r.Get(name); !ok {
			return 0, false, nil
		}
		n, err := r.Int(name)
		return n, err == nil, err
	}
	major, hasMajor, err := num("major")
	if err != nil {
		return "", "", err
	}
	minor, hasMinor, err := num("minor")
	if err != nil {
		return "", "", err
	}
	bmaj, hasBmaj, err := num("build_major")
	if err != nil {
		return "", "", err
	}
	bmin, hasBmin, err := num("build_minor")
	if err != nil {
		return "", "", err
	}
	gen := r.Str("generation")
	switch gen {
	case "v6":
		// NewestBuild 6944 and later is Exchange 2003 (6.5), 4417 and later
		// 2000 (6.0); below is Exchange 4.0-5.5, whose Setup key is the same
		// (KB 149205).
		if !hasBmaj {
			return "2003", "", nil
		}
		switch {
		case bmaj >= 6944:
			return "2003", fmt.Sprintf("6.5.%d", bmaj), nil
		case bmaj >= exchange2000Build:
			return "2000", fmt.Sprintf("6.0.%d", bmaj), nil
		}
		return exchange55, fmt.Sprintf("%d", bmaj), nil
	case "v8", "v14", "v15":
	default:
		return "", "", fmt.Errorf("%w: detect: unknown Exchange generation %q", psframe.ErrFrame, gen)
	}
	if hasMajor && hasMinor && hasBmaj && hasBmin {
		build = fmt.Sprintf("%d.%d.%d.%d", major, minor, bmaj, bmin)
	} else if hasMajor && hasMinor {
		build = fmt.Sprintf("%d.%d", major, minor)
	}
	switch gen {
	case "v8":
		return "2007", build, nil
	case "v14":
		return "2010", build, nil
	}
	switch {
	case !hasMinor:
		return "2013+", build, nil
	case minor == 0:
		return "2013", build, nil
	case minor == 1:
		return "2016", build, nil
	case minor == 2 && hasBmaj && bmaj >= 2562:
		return "SE", build, nil
	case minor == 2:
		return "2019", build, nil
	}
	return "2019+", build, nil
}

// exchange2000Build is the first Exchange 2000 build (6.0.4417); Exchange
// 4.0-5.5 builds are lower.
const exchange2000Build = 4417

// exchange55 is the ExchangeVersion of an Exchange 4.0-5.5 Setup key.
const exchange55 = "5.5 or older"

// ErrUnsupportedPlatform: the host runs a mail server relaylock cannot
// manage (Exchange 5.5 and older).
var ErrUnsupportedPlatform = errors.New("unsupported mail platform")

func decidePlatform(h HostInfo, gen string) (Platform, error) {
	svc := func(name string) bool {
		for _, s := range h.Services {
			if strings.EqualFold(s.Name, name) {
				return s.Present
			}
		}
		return false
	}
	if gen == "v6" {
		switch {
		case h.ExchangeVersion == exchange55:
			return "", fmt.Errorf("%w on %s: HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup names build %s, Exchange 4.0-5.5; relaylock manages Exchange 2000 and later", ErrUnsupportedPlatform, h.ComputerName, h.ExchangeBuild)
		case h.ExchangeServerAdmin == "" && !svc("MSExchangeSA"):
			// The Setup key alone is no Exchange 2000/2003: 4.0-5.5 have
			// it too, and an uninstall may leave it. Without the
			// ExchangeServerAdmin value and the System Attendant this is
			// not an Exchange 2000/2003 server: judge by the services.
			gen = ""
			h.ExchangeVersion = ""
		}
	}
	switch {
	case gen == "v6" && svc("SMTPSVC"):
		return PlatformExchange2003, nil
	case gen == "v6":
		return "", fmt.Errorf("%w on %s: Exchange %s is installed but its SMTP service (SMTPSVC) is not", ErrNoSMTPService, h.ComputerName, h.ExchangeVersion)
	case gen != "" && (svc("MSExchangeTransport") || svc("MSExchangeFrontEndTransport")):
		return PlatformExchange, nil
	case svc("SMTPSVC"):
		return PlatformIIS, nil
	case gen != "":
		return "", fmt.Errorf("%w on %s: Exchange %s is installed without a transport service (management tools only?)", ErrNoSMTPService, h.ComputerName, h.ExchangeVersion)
	}
	return "", fmt.Errorf("%w on %s: neither Exchange nor the IIS SMTP service (SMTPSVC) is installed", ErrNoSMTPService, h.ComputerName)
}

// EncodeHostInfo produces exactly the records detect.ps1 prints on a host
// described by h (the lab answers the detect script with them). h.Platform
// is not encoded: Detect derives it. ExchangeVersion/ExchangeBuild must be
// consistent (as Detect produces them).
func EncodeHostInfo(h HostInfo) []psframe.Record {
	var recs []psframe.Record
	host := psframe.NewRecord(detRecHost).Set("computer", h.ComputerName).Set("domain", h.Domain).
		Set("os_caption", h.OSCaption).Set("os_version", h.OSVersion)
	if h.PSVersion == "" {
		host.SetNull("ps_version")
	} else {
		host.Set("ps_version", h.PSVersion)
	}
	host.Set("is64", detectBool(h.Is64BitProcess))
	recs = append(recs, *host)
	if h.ExchangeVersion != "" {
		recs = append(recs, encodeExchange(h))
	}
	for _, s := range h.Services {
		r := psframe.NewRecord(detRecService).Set("name", s.Name).Set("present", detectBool(s.Present))
		if s.Present {
			r.Set("state", s.State).Set("start_mode", s.StartMode)
		} else {
			r.SetNull("state").SetNull("start_mode")
		}
		recs = append(recs, *r)
	}
	for _, f := range h.Features {
		recs = append(recs, *psframe.NewRecord(detRecFeature).Set("name", f.Name).Set("installed", detectBool(f.Installed)))
	}
	if h.WinRSMaxMemoryMB > 0 {
		recs = append(recs, *psframe.NewRecord(detRecWinRS).Set("max_memory_mb", strconv.Itoa(h.WinRSMaxMemoryMB)).
			Set("source", h.WinRSMaxMemorySource))
	}
	return recs
}

func encodeExchange(h HostInfo) psframe.Record {
	r := psframe.NewRecord(detRecExchange)
	parts := strings.Split(h.ExchangeBuild, ".")
	num := func(i int) (string, bool) {
		if i < len(parts) && h.ExchangeBuild != "" {
			if _, err := strconv.Atoi(parts[i]); err == nil {
				return parts[i], true
			}
		}
		return "", false
	}
	setNum := func(name string, i int) {
		if v, ok := num(i); ok {
			r.Set(name, v)
		} else {
			r.SetNull(name)
		}
	}
	switch h.ExchangeVersion {
	case "2000", "2003", exchange55:
		r.Set("generation", "v6").SetNull("major").SetNull("minor")
		setNum("build_major", len(parts)-1) // 6.5.7638, 6.0.4417, 2653
		r.SetNull("build_minor")
	default:
		gen := "v15"
		switch h.ExchangeVersion {
		case "2007":
			gen = "v8"
		case "2010":
			gen = "v14"
		}
		r.Set("generation", gen)
		setNum("major", 0)
		setNum("minor", 1)
		setNum("build_major", 2)
		setNum("build_minor", 3)
	}
	roles := append([]string(nil), h.ExchangeRoles...)
	sort.Strings(roles)
	r.SetList("roles", roles)
	if r.Str("generation") == "v6" {
		if h.ExchangeServerAdmin == "" {
			r.SetNull("server_admin")
		} else {
			r.Set("server_admin", h.ExchangeServerAdmin)
		}
	}
	return *r
}

// detectBool is how PowerShell stringifies a boolean ([string]$true).
func detectBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
