package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/relaylock/relaylock/audit"
	"github.com/relaylock/relaylock/remediate"
	"github.com/relaylock/relaylock/report/evidence"
)

// Fixture evidence built from the Go types: an engagement on example.com
// with an open IIS SMTP host remediated and re-tested closed, an open
// Exchange 2019 host on IPv6 (hostile banner) remediated and re-tested
// closed, a closed host, an inconclusive (greylisting) host, and a host
// inspected over WinRM that no probe explained (a config finding).

var base = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

// hostile holds what a server or an admin may put in a string.
const hostile = "😀 bell\x07 nul\x00 bad\xff\xfe rtl\u202Eevil\u202C zwsp\u200B שלום مرحبا 中文 tab\tend\r"

// transcript builds one connection's lines for a relay attempt.
func transcript(conn int, remote string, start time.Time, banner string, rcptCode string, extra ...string) audit.Transcript {
	lines := []audit.TranscriptLine{
		{T: start, Dir: "*", Text: "connected to " + remote},
		{T: start.Add(12 * time.Millisecond), Dir: "S", Text: banner},
		{T: start.Add(13 * time.Millisecond), Dir: "C", Text: "EHLO probe.relaylock.test"},
		{T: start.Add(20 * time.Millisecond), Dir: "S", Text: "250-" + strings.Fields(banner + " x")[1]},
		{T: start.Add(20 * time.Millisecond), Dir: "S", Text: "250-PIPELINING"},
		{T: start.Add(20 * time.Millisecond), Dir: "S", Text: "250 8BITMIME"},
		{T: start.Add(21 * time.Millisecond), Dir: "C", Text: "MAIL FROM:<probe@relaylock.test>"},
		{T: start.Add(30 * time.Millisecond), Dir: "S", Text: "250 2.1.0 Sender OK"},
		{T: start.Add(31 * time.Millisecond), Dir: "C", Text: "RCPT TO:<sink@outside.example>"},
		{T: start.Add(45 * time.Millisecond), Dir: "S", Text: rcptCode},
	}
	for i, e := range extra {
		lines = append(lines, audit.TranscriptLine{T: start.Add(time.Duration(50+i) * time.Millisecond), Dir: "S", Text: e})
	}
	lines = append(lines,
		audit.TranscriptLine{T: start.Add(60 * time.Millisecond), Dir: "C", Text: "RSET"},
		audit.TranscriptLine{T: start.Add(61 * time.Millisecond), Dir: "S", Text: "250 2.0.0 Reset OK"},
		audit.TranscriptLine{T: start.Add(62 * time.Millisecond), Dir: "C", Text: "QUIT"},
		audit.TranscriptLine{T: start.Add(70 * time.Millisecond), Dir: "S", Text: "221 2.0.0 Bye"},
		audit.TranscriptLine{T: start.Add(71 * time.Millisecond), Dir: "*", Text: "connection closed"})
	return audit.Transcript{Conn: conn, Local: "198.51.100.200:40001", Remote: remote, Start: start, End: start.Add(71 * time.Millisecond), Lines: lines}
}

func tests(open bool) []audit.TestResult {
	out := audit.OutcomeDenied
	reply := &audit.Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"Unable to relay"}}
	if open {
		out = audit.OutcomeOpenPotential
		reply = &audit.Reply{Code: 250, Enhanced: "2.1.5", Lines: []string{"Recipient OK"}}
	}
	a41 := audit.TestResult{ID: "A41b", Title: "relay after AUTH LOGIN with a made-up account", Kind: "session", Auth: "login-made-up",
		AuthReply: &audit.Reply{Code: 535, Enhanced: "5.7.8", Lines: []string{"5.7.8 Authentication credentials invalid"}},
		MailFrom:  "<probe@relaylock.test>", RcptTo: "<sink@outside.example>", Outcome: audit.OutcomeDenied, Reply: reply}
	if open {
		// A Guest logon: the login that must fail is taken, and relays.
		a41.AuthReply = &audit.Reply{Code: 235, Enhanced: "2.7.0", Lines: []string{"2.7.0 Authentication successful"}}
		a41.Outcome = audit.OutcomeOpenPotential
	}
	return []audit.TestResult{
		{ID: "C1", Title: "local recipient (control)", Kind: "control", MailFrom: "<probe@relaylock.test>", RcptTo: "<postmaster@example.com>", Outcome: audit.OutcomeAccepted, Reply: &audit.Reply{Code: 250, Enhanced: "2.1.5", Lines: []string{"Recipient OK"}}},
		{ID: "R1", Title: "outside sender to outside recipient", Kind: "recipient", MailFrom: "<probe@relaylock.test>", RcptTo: "<sink@outside.example>", Outcome: out, Reply: reply},
		{ID: "R7", Title: "percent hack", Kind: "recipient", MailFrom: "<probe@relaylock.test>", RcptTo: "<sink%outside.example@example.com>", Outcome: audit.OutcomeDenied, Reply: &audit.Reply{Code: 550, Lines: []string{"5.7.1 Unable to relay"}}},
		a41,
	}
}

func endpoint(host string, pref int, addr string, port int, tls string, v audit.Verdict, banner string, start time.Time) audit.EndpointResult {
	open := v == audit.VerdictOpen
	rcpt := "550 5.7.1 Unable to relay"
	switch v {
	case audit.VerdictOpen:
		rcpt = "250 2.1.5 Recipient OK"
	case audit.VerdictInconclusive:
		rcpt = "451 4.7.1 Greylisted, try again later"
	}
	remote := addr + ":" + fmt.Sprint(port)
	if strings.Contains(addr, ":") {
		remote = "[" + addr + "]:" + fmt.Sprint(port)
	}
	ep := audit.EndpointResult{
		MXHost: host, Preference: pref, Address: addr, Port: port, TLS: tls, Verdict: v,
		Banner: banner, BannerHost: host, Extensions: []string{"PIPELINING", "8BITMIME", "SIZE 10485760"},
		Tests:       tests(open),
		Transcripts: []audit.Transcript{transcript(1, remote, start, banner, rcpt)},
		Connections: 1, RoundTrips: 6, Commands: 5, Start: start, End: start.Add(time.Second),
	}
	if open {
		ep.Confirmation = audit.ConfirmPotential
		ep.Triggers = []string{"R1", "A41b"}
	}
	if v == audit.VerdictInconclusive {
		ep.Reason = "RCPT answered 451 (greylisting?)"
	}
	if tls == "starttls" {
		ep.TLSInfo = &audit.TLSInfo{Version: "TLS 1.2", CipherSuite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Verified: false, VerifyError: "x509: certificate signed by unknown authority"}
	}
	return ep
}

func vantage(t time.Time) audit.Vantage {
	return audit.Vantage{SourceAddrs: []string{"198.51.100.200", "2001:db8:ffff::200"}, Hostname: "consultant-laptop", UTC: t, LocalOffset: "+02:00"}
}

func options() audit.OptionsSummary {
	return audit.OptionsSummary{From: "probe@relaylock.test", To: "sink@outside.example", ProbeDomain: "relaylock.test", HeloName: "probe.relaylock.test", Depth: "rcpt", Ports: []int{25, 587}, DNSServers: []string{"192.0.2.53"}}
}

const exchangeBanner = "220 mx2.example.com Microsoft ESMTP MAIL Service ready " + hostile

func fixtureBundle() *evidence.Bundle {
	b := &evidence.Bundle{Schema: evidence.Schema, ID: "RL-20260506-0badc0de", Created: base, Updated: at(4000)}
	b.Engagement = evidence.Engagement{Client: "Example Industries GmbH", Authorization: "AUTH-2026-017 (signed 2026-05-01)", Operator: "alice", Scope: []string{"example.com", "closed.example.net", "flaky.example.org"}, Ticket: "CHG-4711"}
	b.Tool = evidence.Tool{Name: "relaylock", Version: "1.0.0", Commit: "0123456789ab", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"}

	first := &audit.Result{Start: at(10), End: at(40), Vantage: vantage(at(10)), Options: options(), Verdict: audit.VerdictOpen}
	first.Targets = []audit.TargetResult{
		{Target: "example.com", Domain: "example.com", Kind: "domain", Verdict: audit.VerdictOpen,
			MX: []audit.MXHost{{Host: "mx1.example.com", Preference: 10, Addresses: []string{"192.0.2.10"}}, {Host: "mx2.example.com", Preference: 20, Addresses: []string{"2001:db8::25"}}},
			DNS: []audit.DNSQuery{
				{Time: at(10), Server: "192.0.2.53:53", Transport: "udp", Name: "example.com.", Type: "MX", Rcode: "NOERROR", Answers: []string{"example.com.\t3600\tIN\tMX\t10 mx1.example.com.", "example.com.\t3600\tIN\tMX\t20 mx2.example.com."}, RTT: audit.Duration(12 * time.Millisecond)},
				{Time: at(10), Server: "192.0.2.53:53", Transport: "udp", Name: "mx2.example.com.", Type: "AAAA", Rcode: "NOERROR", Answers: []string{"mx2.example.com.\t300\tIN\tAAAA\t2001:db8::25"}},
			},
			Endpoints: []audit.EndpointResult{
				endpoint("mx1.example.com", 10, "192.0.2.10", 25, "none", audit.VerdictOpen, "220 mx1.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready", at(11)),
				endpoint("mx2.example.com", 20, "2001:db8::25", 25, "none", audit.VerdictOpen, exchangeBanner, at(15)),
				endpoint("mx2.example.com", 20, "2001:db8::25", 587, "starttls", audit.VerdictClosed, "220 mx2.example.com ready", at(18)),
			},
			Triggers: []string{"mx1.example.com 192.0.2.10:25/none R1", "mx2.example.com [2001:db8::25]:25/none R1"}},
		{Target: "closed.example.net", Kind: "host", Verdict: audit.VerdictClosed,
			Endpoints: []audit.EndpointResult{endpoint("closed.example.net", 0, "198.51.100.7", 25, "none", audit.VerdictClosed, "220 closed.example.net ESMTP Postfix", at(25))}},
		{Target: "flaky.example.org", Kind: "host", Verdict: audit.VerdictInconclusive, Reason: "every endpoint answered 4xx",
			Endpoints: []audit.EndpointResult{endpoint("flaky.example.org", 0, "203.0.113.5", 25, "none", audit.VerdictInconclusive, "220 flaky.example.org ESMTP", at(30))}},
	}
	// A 10 kB line without spaces and one with spaces, from the server.
	ep := &first.Targets[0].Endpoints[1]
	ep.Transcripts[0].Lines = append(ep.Transcripts[0].Lines,
		audit.TranscriptLine{T: at(16), Dir: "S", Text: "250-" + strings.Repeat("X", 10240)},
		audit.TranscriptLine{T: at(16), Dir: "S", Text: "250 " + strings.Repeat("word ", 2048)})
	ep.Transcripts[0].Truncated = 3

	b.Audits = append(b.Audits, evidence.AuditRun{Purpose: "audit", Result: first})

	iisState, _ := json.Marshal(map[string]any{"RelayIpList": map[string]any{"GrantByDefault": true}})
	iis := remediate.Inspection{
		Host: "mx1.example.com", Time: at(100), Platform: remediate.PlatformIIS, Prober: []string{"198.51.100.200"},
		HostInfo: remediate.HostInfo{ComputerName: "MX1", Domain: "example.com", OSCaption: "Microsoft Windows Server 2003 R2", OSVersion: "5.2.3790", PSVersion: "2.0", Platform: remediate.PlatformIIS,
			Services: []remediate.ServiceInfo{{Name: "SMTPSVC", Present: true, State: "Running", StartMode: "Auto"}}},
		Settings: []remediate.Setting{
			{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "all except: (empty)"},
			{Object: "SmtpSvc/1", Name: "AuthFlags", Value: "anonymous"},
		},
		Findings: []remediate.Finding{{ID: "IIS-RELAY-ALL-EXCEPT-EMPTY", Title: "Relay allowed for every host", Severity: remediate.SeverityHigh, Object: "SmtpSvc/1", Setting: "RelayIpList", Value: "all except: (empty)", Explains: true,
			Detail: "GrantByDefault is true and the exception list is empty: every client may relay.", Remediation: "Relay only for the listed internal addresses."}},
		State: iisState,
		Runs: []remediate.ScriptRun{{Script: "iis-read", SHA256: strings.Repeat("ab", 32), Params: map[string]string{"Site": "1", "Instance": "SmtpSvc/1"}, Start: at(100), End: at(102),
			Stdout: "BEGIN 1a2b\r\nR setting object=U210cFN2Yy8x name=UmVsYXlJcExpc3Q=\r\nEND 1a2b 0\r\n" + hostile}},
	}
	exch := remediate.Inspection{
		Host: "mx2.example.com", Time: at(110), Platform: remediate.PlatformExchange, Prober: []string{"2001:db8:ffff::200"},
		HostInfo: remediate.HostInfo{ComputerName: "MX2", OSCaption: "Microsoft Windows Server 2019 Standard", OSVersion: "10.0.17763", PSVersion: "5.1", ExchangeVersion: "2019", ExchangeBuild: "15.2.1544.4", ExchangeRoles: []string{"Mailbox"}, Platform: remediate.PlatformExchange},
		Settings: []remediate.Setting{{Object: `Receive connector MX2\Default Frontend MX2`, Name: "PermissionGroups", Value: "AnonymousUsers, ExchangeServers"},
			{Object: `Receive connector MX2\Default Frontend MX2`, Name: "AnonymousUsers rights", Value: "ms-Exch-SMTP-Accept-Any-Recipient " + hostile}},
		Findings: []remediate.Finding{{ID: "EXCH-ANON-ACCEPT-ANY-RECIPIENT", Title: "Anonymous users may relay", Severity: remediate.SeverityHigh, Object: `Receive connector MX2\Default Frontend MX2`, Setting: "AnonymousUsers rights", Value: "ms-Exch-SMTP-Accept-Any-Recipient", Explains: true,
			Detail: "ms-Exch-SMTP-Accept-Any-Recipient granted to ANONYMOUS LOGON.", Remediation: "Remove the permission; relay through a dedicated connector limited by RemoteIPRanges."}},
		State: json.RawMessage(`{}`),
		Runs:  []remediate.ScriptRun{{Script: "exchange-read", SHA256: strings.Repeat("cd", 32), Start: at(110), End: at(115), ExitCode: 0, Stdout: "BEGIN 9f\nR connector name=" + hostile + "\nEND 9f 0\n", Stderr: "WARNING: " + hostile, Errors: []string{"non-terminating: " + hostile}}},
	}
	cfgOnly := remediate.Inspection{
		Host: "mail3.example.com", Time: at(120), Platform: remediate.PlatformIIS,
		HostInfo: remediate.HostInfo{ComputerName: "MAIL3", OSCaption: "Microsoft Windows Server 2008 R2", OSVersion: "6.1.7601", PSVersion: "2.0", Platform: remediate.PlatformIIS},
		Settings: []remediate.Setting{{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "only: 10.0.0.0/8"}},
		Findings: []remediate.Finding{{ID: "IIS-RELAY-BROAD-RANGE", Title: "Relay allowed for a whole private network", Severity: remediate.SeverityMedium, Object: "SmtpSvc/1", Setting: "RelayIpList", Value: "only: 10.0.0.0/8", Detail: "Every host in 10.0.0.0/8 may relay.", Remediation: "Narrow the list to the application servers that send mail."}},
		State:    json.RawMessage(`{}`),
	}
	b.Inspections = []remediate.Inspection{iis, exch, cfgOnly}

	iisChange := remediate.Change{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only: 127.0.0.1, 10.1.2.3", Why: "IIS-RELAY-ALL-EXCEPT-EMPTY"}
	exChange := remediate.Change{Object: `Receive connector MX2\Default Frontend MX2`, Setting: "AnonymousUsers rights", Current: "ms-Exch-SMTP-Accept-Any-Recipient", New: "(none)", Why: "EXCH-ANON-ACCEPT-ANY-RECIPIENT"}
	b.Plans = []remediate.Plan{
		{Host: "mx1.example.com", Platform: remediate.PlatformIIS, Changes: []remediate.Change{iisChange}, Desired: json.RawMessage(`{"relay":"only"}`)},
		{Host: "mx2.example.com", Platform: remediate.PlatformExchange, Changes: []remediate.Change{exChange}, Notes: []string{"accepted domain *: reported, not changed without --fix-domains"}, Desired: json.RawMessage(`{}`)},
	}
	b.Backups = []evidence.BackupRef{
		{File: "backup-mx1.json", SHA256: strings.Repeat("11", 32), Backup: &remediate.Backup{Schema: remediate.BackupSchema, Tool: "relaylock 1.0.0", Host: "mx1.example.com", Platform: remediate.PlatformIIS, Taken: at(200), Plan: &b.Plans[0]}},
		{File: "backup-mx2.json", SHA256: strings.Repeat("22", 32), Backup: &remediate.Backup{Schema: remediate.BackupSchema, Tool: "relaylock 1.0.0", Host: "mx2.example.com", Platform: remediate.PlatformExchange, Taken: at(300), Plan: &b.Plans[1]}},
	}
	b.Changes = []remediate.ChangeRecord{
		{ID: "RL-CHG-0001", Kind: "remediate", Host: "mx1.example.com", Platform: remediate.PlatformIIS, OSUser: "alice", WinRMUser: `EXAMPLE\svc-relaylock`, Ticket: "CHG-4711", Start: at(201), End: at(205),
			Scripts: []string{strings.Repeat("ab", 32), strings.Repeat("ef", 32)},
			Before:  iis.Settings, After: []remediate.Setting{{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "only: 127.0.0.1, 10.1.2.3"}, {Object: "SmtpSvc/1", Name: "AuthFlags", Value: "anonymous"}},
			Planned: []remediate.Change{iisChange}, Applied: []remediate.Change{iisChange}, Result: "applied", BackupFile: "backup-mx1.json", BackupSHA256: strings.Repeat("11", 32)},
		{ID: "RL-CHG-0002", Kind: "remediate", Host: "mx2.example.com", Platform: remediate.PlatformExchange, OSUser: "alice", WinRMUser: `EXAMPLE\svc-relaylock`, Ticket: "CHG-4711", Start: at(301), End: at(309),
			Scripts: []string{strings.Repeat("cd", 32)},
			Before:  exch.Settings, After: []remediate.Setting{{Object: `Receive connector MX2\Default Frontend MX2`, Name: "PermissionGroups", Value: "AnonymousUsers, ExchangeServers"}, {Object: `Receive connector MX2\Default Frontend MX2`, Name: "AnonymousUsers rights", Value: "ms-Exch-SMTP-Accept-Authoritative-Domain-Sender"}},
			Planned: []remediate.Change{exChange}, Applied: []remediate.Change{exChange}, Result: "applied", BackupFile: "backup-mx2.json", BackupSHA256: strings.Repeat("22", 32)},
	}
	re1 := &audit.Result{Start: at(400), End: at(410), Vantage: vantage(at(400)), Options: options(), Verdict: audit.VerdictClosed,
		// Re-tested by address, as remediate does: the MX host is the address.
		Targets: []audit.TargetResult{{Target: "192.0.2.10:25", Kind: "address", Verdict: audit.VerdictClosed,
			Endpoints: []audit.EndpointResult{endpoint("192.0.2.10", 0, "192.0.2.10", 25, "none", audit.VerdictClosed, "220 mx1.example.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready", at(401))}}}}
	re2 := &audit.Result{Start: at(500), End: at(510), Vantage: vantage(at(500)), Options: options(), Verdict: audit.VerdictClosed,
		Targets: []audit.TargetResult{{Target: "mx2.example.com", Kind: "host", Verdict: audit.VerdictClosed,
			Endpoints: []audit.EndpointResult{
				endpoint("mx2.example.com", 0, "2001:db8::25", 25, "none", audit.VerdictClosed, exchangeBanner, at(501)),
				endpoint("mx2.example.com", 0, "2001:db8::25", 587, "starttls", audit.VerdictClosed, "220 mx2.example.com ready", at(505)),
			}}}}
	b.Audits = append(b.Audits, evidence.AuditRun{Purpose: "retest", Host: "mx1.example.com", Result: re1}, evidence.AuditRun{Purpose: "retest", Host: "mx2.example.com", Result: re2})
	b.Log = []evidence.LogEntry{{Time: at(10), Step: "audit", Message: "audit of 3 targets"}}
	return b
}

// scaleBundle is an engagement of n open hosts, each remediated and
// re-tested closed, for the benchmark.
func scaleBundle(n int) *evidence.Bundle {
	b := &evidence.Bundle{Schema: evidence.Schema, ID: "RL-20260506-5ca1ab1e", Created: base, Updated: at(9000)}
	b.Engagement = evidence.Engagement{Client: "Scale Corp", Authorization: "AUTH-1", Operator: "bob", Scope: []string{"scale.example"}}
	b.Tool = evidence.Tool{Name: "relaylock", Version: "1.0.0", Commit: "0123456789ab"}
	first := &audit.Result{Start: at(1), End: at(2000), Vantage: vantage(at(1)), Options: options(), Verdict: audit.VerdictOpen}
	re := &audit.Result{Start: at(5000), End: at(7000), Vantage: vantage(at(5000)), Options: options(), Verdict: audit.VerdictClosed}
	t := audit.TargetResult{Target: "scale.example", Kind: "domain", Verdict: audit.VerdictOpen}
	rt := audit.TargetResult{Target: "scale.example", Kind: "domain", Verdict: audit.VerdictClosed}
	for i := range n {
		host := fmt.Sprintf("mx%03d.scale.example", i)
		addr := fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256)
		banner := "220 " + host + " Microsoft ESMTP MAIL Service ready"
		ep := endpoint(host, 10, addr, 25, "none", audit.VerdictOpen, banner, at(10+i))
		// Three connections per endpoint, as a real matrix makes.
		ep.Transcripts = append(ep.Transcripts, transcript(2, addr+":25", at(10+i), banner, "550 5.7.1 Unable to relay"), transcript(3, addr+":25", at(10+i), banner, "550 5.7.1 Unable to relay"))
		t.Endpoints = append(t.Endpoints, ep)
		rt.Endpoints = append(rt.Endpoints, endpoint(host, 10, addr, 25, "none", audit.VerdictClosed, banner, at(5000+i)))
		t.MX = append(t.MX, audit.MXHost{Host: host, Preference: 10, Addresses: []string{addr}})
		in := remediate.Inspection{Host: host, Time: at(3000 + i), Platform: remediate.PlatformIIS,
			Settings: []remediate.Setting{{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "all except: (empty)"}},
			Findings: []remediate.Finding{{ID: "IIS-RELAY-ALL-EXCEPT-EMPTY", Title: "Relay allowed for every host", Severity: remediate.SeverityHigh, Object: "SmtpSvc/1", Setting: "RelayIpList", Value: "all except: (empty)", Explains: true}},
			Runs:     []remediate.ScriptRun{{Script: "iis-read", SHA256: strings.Repeat("ab", 32), Start: at(3000 + i), End: at(3001 + i), Stdout: "BEGIN 1\nR setting x=y\nEND 1 0\n"}},
			State:    json.RawMessage(`{}`)}
		b.Inspections = append(b.Inspections, in)
		c := remediate.Change{Object: "SmtpSvc/1", Setting: "RelayIpList", Current: "all except: (empty)", New: "only: 10.0.0.1"}
		b.Changes = append(b.Changes, remediate.ChangeRecord{ID: fmt.Sprintf("RL-CHG-%04d", i+1), Kind: "remediate", Host: host, Platform: remediate.PlatformIIS, Start: at(4000 + i), End: at(4001 + i),
			Before: in.Settings, After: []remediate.Setting{{Object: "SmtpSvc/1", Name: "RelayIpList", Value: "only: 10.0.0.1"}}, Planned: []remediate.Change{c}, Applied: []remediate.Change{c}, Result: "applied"})
	}
	first.Targets = []audit.TargetResult{t}
	re.Targets = []audit.TargetResult{rt}
	b.Audits = []evidence.AuditRun{{Purpose: "audit", Result: first}, {Purpose: "retest", Result: re}}
	return b
}
