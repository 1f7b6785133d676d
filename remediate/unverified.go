package remediate

// UnverifiedFact is something relaylock relies on that no public source
// confirms and no real host here could show: named, with what happens if
// it is wrong.
type UnverifiedFact struct {
	// ID names the fact in the README's "Unverified facts" list, which
	// mirrors this table (a test keeps them equal).
	ID string
	// Fact is the assumption; Consequence what goes wrong if it is false,
	// and how relaylock fails then; Where the code that relies on it.
	Fact, Consequence, Where string
}

// UnverifiedFacts is the one list of relaylock's unverified assumptions
// about Windows hosts. Each is either designed to fail safely or shown by
// `relaylock doctor`; the README lists the same IDs.
var UnverifiedFacts = []UnverifiedFact{
	{ID: "ps2-stdin-input",
		Fact:        "powershell.exe 2.0 hands a redirected (pipe) stdin to the -EncodedCommand bootstrap as $input; Ansible, whose pattern this is, supports PowerShell 3.0 and later only",
		Consequence: "scripts on a PowerShell 2.0 host get an empty payload: every run ends with 'no complete result frame', nothing is changed, and doctor's stdin check fails",
		Where:       "remediate/psframe (Bootstrap), internal/lab/console.go"},
	{ID: "codepage-437",
		Fact:        "every Windows version that hosts IIS SMTP or Exchange accepts WINRS_CODEPAGE=437 (WinRb/WinRM #232 reports 65001 fails before 6.1; Nano Server refuses 437)",
		Consequence: "shell creation fails with a WS-Management fault, reported as such; nothing is changed",
		Where:       "remediate/shellopts.go, remediate/psframe (ShellCodePage)"},
	{ID: "console-input-empty",
		Fact:        "with WINRS_CONSOLEMODE_STDIN=TRUE powershell.exe does not fill $input from stdin (a console is not redirected input)",
		Consequence: "none for relaylock, which always sends FALSE; the lab applies it to PowerShell 2.0 only",
		Where:       "internal/lab/console.go"},
	{ID: "exchange2003-setup-values",
		Fact:        "HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup holds NewestBuild (4417+ = 2000, 6944+ = 2003) and ExchangeServerAdmin (the install path) on Exchange 2000/2003, and neither on 4.0-5.5 (seen in public tools only)",
		Consequence: "a 2000/2003 host without these values is still recognised by its MSExchangeSA service; a missing build shows as 2003; a 5.5 host with MSExchangeSA and no build would be taken for 2003 and then fail at its Active Directory read",
		Where:       "templates/powershell/detect.ps1, remediate/detect.go"},
	{ID: "ex2003-relay-attribute",
		Fact:        "the Exchange 2003 relay list lives in the AD attribute msExchSmtpRelayIpList of protocolCfgSMTPServer (no public source names it)",
		Consequence: "ex2003-read-ad looks the name up (lDAPDisplayName) in the schema naming context first; if it is absent, inspect and remediate stop with ErrSchemaAttribute and nothing is read or written",
		Where:       "remediate/exchange2003.go (Ex2003RelayIpListAttr), templates/powershell/ex2003-read-ad.ps1"},
	{ID: "ipseclist-order",
		Fact:        "IIS looks addresses of one mask up in ascending order (relaylock writes them sorted); the order IIS itself writes is not documented",
		Consequence: "an allowed host could be refused relaying: the change fails closed, and the re-test and IIS's own ADSI reading show it; inspect reports a stored list out of order (RELAY-LIST-UNSORTED) and remediate rewrites it sorted",
		Where:       "remediate/relayiplist.go (relayListSorted)"},
	{ID: "iis-relayiplist-inheritance",
		Fact:        "whether WMI reports a virtual server's inherited RelayIpList (from /LM/SmtpSvc) or only its own, and whether ADSI's Properties[] does; relaylock asks IIS ADSI GetDataPaths (MD_ERROR_DATA_NOT_FOUND 0x800CC801: set nowhere below) whether the server holds its own value",
		Consequence: "none when ADSI answers: both readings are compared on effective values. Without ADSI, a value equal to the service level's is marked unknown, and a rollback writes it onto the server (which then stops following the service level)",
		Where:       "remediate/iis.go (resolveOwn), templates/powershell/lib/iis-adsi.ps1"},
	{ID: "dsaccess-config-dc",
		Fact:        "DS2MB reads the DSAccess configuration domain controller (Exchange_DSAccessDC Type 0, per the Metabase Update Service page), and that instance's Name binds as an LDAP server name",
		Consequence: "if DS2MB reads another DC, the change is reported pending (DS2MB) until AD replication, never rolled back; if the Name does not bind, the read fails as ad-unavailable: name the domain controller explicitly",
		Where:       "templates/powershell/ex2003-read-ad.ps1, remediate/exchange2003.go (ex2003DC)"},
	{ID: "ipseclist-masks",
		Fact:        "the IPSECLIST encoding of masks other than /32 (cFullBytes/LastByte) and of deny lists",
		Consequence: "such lists are flagged in the plan; the ADSI cross-check and the re-test show a wrong encoding",
		Where:       "remediate/relayiplist.go"},
	{ID: "exchange-shell-memory",
		Fact:        "how much memory loading the Exchange Management Shell takes in a WinRS process (WinRM 2.0's MaxMemoryPerShellMB default is 150); the lab charges ~200 MB for the Exchange 2007/2010 shell under PowerShell 2.0, ~400 MB under 3.0+ and ~60 MB for any other script, and relaylock names the quota when the hop check ends without a result below 512 MB",
		Consequence: "WinRM ends the script while the shell loads: relaylock stops before any read or change, naming MaxMemoryPerShellMB and the fix (ErrShellMemoryQuota); doctor asks for 1024 MB before it matters. If the real cost is lower, a host between 150 and 512 MB may work and only the warning is needless",
		Where:       "remediate/doctor (MinMemoryPerShellMBExchange), remediate/hop.go (ExchangeShellMinMemoryMB, shellQuotaError), internal/lab/memquota.go"},
	{ID: "winrs-memory-quota-exceeded",
		Fact:        "how a WinRS process that exceeds MaxMemoryPerShellMB ends: Microsoft documents only that \"the remote operation is terminated when a new allocation exceeds the specified quota\" (Group Policy text) and no WS-Management fault for it; public reports (ansible/ansible#39327) show allocations failing inside the process (\"The paging file is too small for this operation to complete.\", ERROR_COMMITMENT_LIMIT) and a non-zero exit. The lab ends the script with an OutOfMemoryException text on stderr, exit code 1 and no result frame",
		Consequence: "relaylock recognises the quota by the missing result frame of the Exchange hop check on a host whose detected quota is below 512 MB, never by the error text; if Windows instead answered with a WS-Management fault, the run fails as a WinRM error (nothing read or changed) and doctor's quota check still names the cause",
		Where:       "internal/lab/memquota.go, remediate/hop.go (shellQuotaError)"},
	{ID: "ldap-no-credentials-hresult",
		Fact:        "an LDAP read from a WinRS process without network credentials fails with 0x80072020 (operations error) rather than an access-denied code",
		Consequence: "none for the verdict: any failure of that read is reported as the second hop; only the lab's simulated code depends on it",
		Where:       "internal/lab/messages.go, internal/lab/doctor.go"},
	{ID: "kerberos-replay-key",
		Fact:        "Windows' Kerberos replay detection tells two different authenticators of one client with the same time and microsecond apart (MIT keys its replay cache on the authenticator ciphertext since krb5 1.18; RFC 4120 §3.2.3 describes a cache by client and time). relaylock's Kerberos transport (masterzen/winrm) sends a Send and a Receive concurrently, each with a new authenticator, and the lab saw two of them carry the same microsecond",
		Consequence: "if Windows keyed on client and time, such a request would get 401 (KRB_AP_ERR_REPEAT) now and then: the run fails as an authentication error, and a change under way is rolled back from its backup; NTLM and HTTPS with NTLM are not affected",
		Where:       "remediate/winrm.go (libTransport, Kerberos), internal/lab/kerberos.go (krbAcceptor.replayed)"},
	{ID: "hresult-extraction",
		Fact:        "RL-HResult finds the HRESULT of WMI (ManagementException.ErrorCode), ADSI/LDAP (COMException.ErrorCode) and .NET exceptions (HResult by reflection) under PowerShell 2.0's CLR 2, behind 2.0's ActionPreferenceStopException (through its ErrorRecord)",
		Consequence: "an error is classified as a plain script failure (exit code and message shown) instead of 'feature missing' or 'access denied'; nothing else changes",
		Where:       "templates/powershell/prologue.ps1, remediate/hresult.go"},
	{ID: "exchange-binding-precedence",
		Fact: "which receive connector takes a connection when one listens on the specific local address the client connected to (e.g. 192.0.2.25:25) and the relay connector on 0.0.0.0:25 " +
			"with RemoteIPRanges that match the client more narrowly: Microsoft documents \"the most specific match\" of remote ranges, not how it weighs a specific local binding. " +
			"relaylock creates the relay connector in the documented form (-Bindings 0.0.0.0:25 -RemoteIPRanges <allowed>, one address per family) and predicts by remote range, the specific binding breaking ties",
		Consequence: "if Exchange prefers the specific binding, allowed clients that send to that address land on the other connector and are refused relay: fails closed (nothing opens, the re-test from the prober is unaffected); " +
			"the plan names each such connector and the fix (send to another address of the server, or add the clients to that connector)",
		Where: "remediate/exchange_bindings.go (relayConnectorBindings, specificBindingNotes), remediate/exchange.go (EffectiveConnector)"},
}
