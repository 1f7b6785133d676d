#!/usr/bin/python3
"""Writes the framed script outputs in this directory.

These files are what relaylock's scripts print on a real host, written by
hand from Microsoft's documented object shapes, NOT produced by relaylock's
Go encoders (psframe.EncodeOutput, remediate.EncodeHostInfo, the lab): the
decoders are tested against them, and the lab replays them, so a decoder
bug cannot hide behind a matching encoder bug. This script only does the
mechanical part the way prologue.ps1 does it: RL-Rec prints
"R <type> <field>=<base64 of the UTF-8 value, or ~ for $null> ...", framed by
"BEGIN <nonce>" and "END <nonce> <code>", CRLF line ends
([Console]::Out.WriteLine on Windows). Values are strings exactly as
PowerShell stringifies them ([string]$true is "True", an Int32 is decimal,
lists are joined with "`n").

Run it with /usr/bin/python3 after editing; commit both.
"""
import base64

NONCE = "00112233445566778899aabbccddeeff"
NULL = None


def frame(records, code=0):
    out = ["BEGIN " + NONCE]
    for typ, fields in records:
        line = "R " + typ
        for name, value in fields:
            enc = "~" if value is None else base64.b64encode(value.encode("utf-8")).decode("ascii")
            line += " " + name + "=" + enc
        out.append(line)
    out.append("END %s %d" % (NONCE, code))
    return ("\r\n".join(out) + "\r\n").encode("ascii")


FILES = {}

# detect on Exchange Server 2003 SP2, Windows Server 2003 SP2 (32-bit),
# PowerShell 2.0 (WMF 2.0, KB 968929). Win32_OperatingSystem.Caption of
# 2003 R2 era hosts carries the (R) marks; Version 5.2.3790.
# HKLM\SOFTWARE\Microsoft\Exchange\Setup: NewestBuild 7638 (2003 SP2),
# ExchangeServerAdmin = the install path (KB 149205 shape for 5.5 has no
# such value). Services per Win32_Service: State/StartMode strings.
FILES["detect-exchange2003.txt"] = frame([
    ("host", [("computer", "EXCH03"), ("domain", "corp.example.com"),
              ("os_caption", "Microsoft(R) Windows(R) Server 2003, Standard Edition"),
              ("os_version", "5.2.3790"), ("ps_version", "2.0"), ("is64", "False")]),
    ("exchange", [("generation", "v6"), ("major", NULL), ("minor", NULL), ("build_major", "7638"),
                  ("build_minor", NULL), ("roles", ""), ("server_admin", "C:\\Program Files\\Exchsrvr")]),
    ("service", [("name", "SMTPSVC"), ("present", "True"), ("state", "Running"), ("start_mode", "Auto")]),
    ("service", [("name", "MSExchangeTransport"), ("present", "False"), ("state", NULL), ("start_mode", NULL)]),
    ("service", [("name", "MSExchangeFrontEndTransport"), ("present", "False"), ("state", NULL), ("start_mode", NULL)]),
    ("service", [("name", "MSExchangeSA"), ("present", "True"), ("state", "Running"), ("start_mode", "Auto")]),
])

# detect on a German Exchange Server 2016 CU23 (15.1.2507.6), Windows
# Server 2016 German: the caption is translated, the registry values are
# not (MsiProductMajor 15, MsiProductMinor 1, MsiBuildMajor 2507,
# MsiBuildMinor 6; role subkeys ...Role). ServerManager's feature records.
FILES["detect-exchange2016-de.txt"] = frame([
    ("host", [("computer", "EX16"), ("domain", "firma.example.de"),
              ("os_caption", "Microsoft Windows Server 2016 Standard"), ("os_version", "10.0.14393"),
              ("ps_version", "5.1.14393.5582"), ("is64", "True")]),
    ("exchange", [("generation", "v15"), ("major", "15"), ("minor", "1"), ("build_major", "2507"),
                  ("build_minor", "6"), ("roles", "AdminTools\nCafe\nClientAccess\nFrontendTransport\nHubTransport\nMailbox\nUnifiedMessaging")]),
    ("service", [("name", "SMTPSVC"), ("present", "False"), ("state", NULL), ("start_mode", NULL)]),
    ("service", [("name", "MSExchangeTransport"), ("present", "True"), ("state", "Running"), ("start_mode", "Auto")]),
    ("service", [("name", "MSExchangeFrontEndTransport"), ("present", "True"), ("state", "Running"), ("start_mode", "Auto")]),
    ("service", [("name", "MSExchangeSA"), ("present", "False"), ("state", NULL), ("start_mode", NULL)]),
    ("feature", [("name", "SMTP-Server"), ("installed", "False")]),
    ("feature", [("name", "Web-WMI"), ("installed", "True")]),
])

# iis-read on Windows Server 2008 R2 with the SMTP Server feature.
# IIsSmtpServerSetting (IIS 6.0 SDK): RelayIpList uint8[] printed as hex,
# RelayForAuth sint32, AuthFlags sint32, AuthAnonymous/AuthBasic/AuthNTLM
# boolean, SmartHost string, SmartHostType sint32.
# RelayIpList of SmtpSvc/1 is "Sample A" of the GUI: "Only the list below"
# = {127.0.0.1} (84 bytes, Salt win_smtp_server docstring; the same bytes
# in a public PowerShell snippet). The service level (IIsSmtpServiceSetting
# "SmtpSvc") has a zero-length list. One remote domain, RouteAction 0.
# The Guest account is found by RID 501 and localized ("Gast").
SAMPLE_A = bytes([24, 0, 0, 128, 32, 0, 0, 128, 60, 0, 0, 128, 68, 0, 0, 128,
                  1, 0, 0, 0, 76, 0, 0, 0,
                  0, 0, 0, 0, 0, 0, 0, 0,
                  1, 0, 0, 0, 1, 0, 0, 0,
                  2, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0, 128,
                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                  255, 255, 255, 255, 127, 0, 0, 1])
assert len(SAMPLE_A) == 84
FILES["iis-read-sample-a.txt"] = frame([
    ("service", [("name", "SMTPSVC"), ("present", "True"), ("state", "Running"), ("startmode", "Auto")]),
    ("guest", [("name", "Gast"), ("enabled", "False")]),
    ("svc", [("name", "SmtpSvc"), ("relayiplist", ""), ("relayforauth", "0")]),
    ("vs", [("name", "SmtpSvc/1"), ("comment", "[SMTP Virtual Server #1]"),
            ("relayiplist", SAMPLE_A.hex().upper()), ("relayforauth", "-1"), ("authflags", "1"),
            ("authanonymous", "True"), ("authbasic", "False"), ("authntlm", "False"),
            ("smarthost", NULL), ("smarthosttype", "0")]),
    ("domain", [("name", "SmtpSvc/1/Domain/partner.example.net"), ("routeaction", "0"),
                ("relayforauth", NULL), ("relayiplist", NULL)]),
    ("adsi", [("name", "SmtpSvc/1"), ("present", "True"), ("grantbydefault", "False"),
              ("ipgrant", "127.0.0.1, 255.255.255.255"), ("ipdeny", "")]),
])

# exchange-read on Exchange 2016: the connector of "Allow anonymous relay
# on Exchange servers" (Microsoft docs): New-ReceiveConnector -Name
# "Anonymous Relay" -TransportRole FrontendTransport -Custom -Bindings
# 0.0.0.0:25 -RemoteIpRanges 192.168.5.10,192.168.5.11; PermissionGroups
# AnonymousUsers; Add-ADPermission -User "NT AUTHORITY\ANONYMOUS LOGON"
# -ExtendedRights "Ms-Exch-SMTP-Accept-Any-Recipient". Get-ReceiveConnector
# prints Identity "EX16\Anonymous Relay", Server "EX16"; AuthMechanism and
# PermissionGroups are flags enums ("Tls", "AnonymousUsers"); the default
# frontend connector of receive-connectors.md with its ranges. The ACE's
# User prints as NT AUTHORITY\ANONYMOUS LOGON, IsInherited False.
# Accepted domain: Name, DomainName, DomainType Authoritative, Default True.
FILES["exchange-read-anonymous-relay.txt"] = frame([
    ("exinfo", [("server", "EX16"), ("loader", "remote"), ("anon_sid", "S-1-5-7"), ("anon_name", "NT AUTHORITY\\ANONYMOUS LOGON")]),
    ("connector", [("id", "EX16\\Default Frontend EX16"), ("name", "Default Frontend EX16"), ("server", "EX16"),
                   ("role", "FrontendTransport"), ("enabled", "True"), ("bindings", "[::]:25\n0.0.0.0:25"),
                   ("ranges", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n0.0.0.0-255.255.255.255"),
                   ("auth", "Tls\nIntegrated\nBasicAuth\nBasicAuthRequireTLS\nExchangeServer"),
                   ("groups", "AnonymousUsers\nExchangeServers\nExchangeLegacyServers")]),
    ("connector", [("id", "EX16\\Anonymous Relay"), ("name", "Anonymous Relay"), ("server", "EX16"),
                   ("role", "FrontendTransport"), ("enabled", "True"), ("bindings", "0.0.0.0:25"),
                   ("ranges", "192.168.5.10\n192.168.5.11"), ("auth", "Tls"), ("groups", "AnonymousUsers")]),
    ("ace", [("id", "EX16\\Anonymous Relay"), ("user", "NT AUTHORITY\\ANONYMOUS LOGON"), ("sid", "S-1-5-7"), ("inherited", "False")]),
    ("domain", [("name", "contoso.com"), ("domain", "contoso.com"), ("type", "Authoritative"), ("default", "True")]),
])

# iis-read where root\MicrosoftIISv2 is missing (no Web-WMI) on a German
# host: Get-WmiObject throws System.Management.ManagementException, its
# ErrorCode InvalidNamespace = 0x8004100E; the message is translated,
# FullyQualifiedErrorId is not (GetWMIManagementException,...).
FILES["iis-read-no-webwmi-de.txt"] = frame([
    ("service", [("name", "SMTPSVC"), ("present", "True"), ("state", "Running"), ("startmode", "Auto")]),
    ("guest", [("name", "Gast"), ("enabled", "False")]),
    ("error", [("message", "Ungültiger Namespace "), ("type", "System.Management.ManagementException"),
               ("inner", "System.Management.ManagementException"), ("hresult", "0x8004100E"),
               ("fqid", "GetWMIManagementException,Microsoft.PowerShell.Commands.GetWmiObjectCommand"),
               ("line", "48"), ("kind", "feature-missing"), ("feature", "Web-WMI"), ("namespace", "root\\MicrosoftIISv2")]),
], code=3)

# stderr of powershell.exe with redirected streams: "#< CLIXML" and an
# <Objs> document (MS-PSRP 2.2.5; the shape pywinrm #245, ansible #67964
# and inspec/train #153 show): a progress record first, then the error
# stream as <S S="Error"> lines, CR LF escaped as _x000D__x000A_
# (MS-PSRP 2.2.5.3.2). The host is German and the shell runs in code page
# 437 (WINRS_CODEPAGE=437): the bytes are code page 437 (u-umlaut 0x81,
# o-umlaut 0x94, sharp s 0xE1).
CLIXML_DE = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>'
    '<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Module werden f\u00fcr erstmalige Verwendung vorbereitet.</AV>'
    '<AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>'
    '<S S="Error">Get-WmiObject : Ung\u00fcltiger Namespace _x000D__x000A_</S>'
    '<S S="Error">In Zeile:1 Zeichen:14_x000D__x000A_</S>'
    '<S S="Error">+ Get-WmiObject &lt;&lt;&lt;&lt;  -Namespace root\\MicrosoftIISv2 -Class IIsSmtpServerSetting_x000D__x000A_</S>'
    '<S S="Error">    + CategoryInfo          : InvalidArgument: (:) [Get-WmiObject], ManagementException_x000D__x000A_</S>'
    '<S S="Error">    + FullyQualifiedErrorId : GetWMIManagementException,Microsoft.PowerShell.Commands.GetWmiObjectCommand_x000D__x000A_</S>'
    '<S S="Error"> _x000D__x000A_</S>'
    '<S S="Error">Gr\u00f6\u00dfe \u00fcberschritten_x000D__x000A_</S>'
    "</Objs>"
)
FILES["stderr-clixml-de.cp437"] = CLIXML_DE.encode("cp437")

for name, data in FILES.items():
    with open(name, "wb") as f:
        f.write(data)
