package remediate

import (
	"strings"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// Windows translates error messages into the host's language, so relaylock
// never reads them: the scripts report every caught exception with its
// HRESULT, exception types and PowerShell FullyQualifiedErrorId
// (RL-ErrRec in templates/powershell/prologue.ps1), and errors are
// classified by those. The HRESULTs relaylock knows:
const (
	// HResultAccessDenied is E_ACCESSDENIED (HRESULT_FROM_WIN32(5)), also
	// the HResult of System.UnauthorizedAccessException.
	HResultAccessDenied = "0x80070005"
	// HResultWBEMAccessDenied is WBEM_E_ACCESS_DENIED (WMI).
	HResultWBEMAccessDenied = "0x80041003"
	// hresultInvalidNamespace is WBEM_E_INVALID_NAMESPACE: a WMI namespace
	// such as root\MicrosoftIISv2 (Web-WMI) does not exist.
	hresultInvalidNamespace = "0x8004100E"
	// hresultInsufficientRights is HRESULT_FROM_WIN32
	// (ERROR_DS_INSUFF_ACCESS_RIGHTS), LDAP result 50.
	hresultInsufficientRights = "0x80072098"
	// HResultServerDown is HRESULT_FROM_WIN32(ERROR_DS_SERVER_DOWN), "The
	// server is not operational.": an LDAP bind to a server (a named
	// domain controller) that does not exist or does not answer.
	HResultServerDown = "0x8007203A"
	// HResultLogonFailure is HRESULT_FROM_WIN32(ERROR_LOGON_FAILURE): the
	// server refused the credentials.
	HResultLogonFailure = "0x8007052E"
)

// fqidSnapinMissing starts the FullyQualifiedErrorId of Add-PSSnapin for a
// snap-in that is not installed (PowerShell's
// AddPSSnapinCommand; the id is not translated).
const fqidSnapinMissing = "AddPSSnapInRead,"

// ScriptError is one "error" record of a script, decoded.
type ScriptError struct {
	Message string `json:"message"`
	// Type is the exception's .NET type, Inner the innermost exception's.
	Type  string `json:"type,omitempty"`
	Inner string `json:"inner,omitempty"`
	// HResult is "0x" and eight upper-case hex digits.
	HResult string `json:"hresult,omitempty"`
	// FQID is PowerShell's FullyQualifiedErrorId.
	FQID string `json:"fqid,omitempty"`
	// Kind is the script's own classification (feature-missing,
	// not-found, ad-unavailable, ...) and Feature the missing feature.
	Kind    string `json:"kind,omitempty"`
	Feature string `json:"feature,omitempty"`
}

// ScriptErrors decodes the error records of an output (nil-safe).
func ScriptErrors(out *psframe.Output) []ScriptError {
	if out == nil {
		return nil
	}
	var es []ScriptError
	for _, r := range out.Of(psframe.ErrorRecord) {
		es = append(es, ScriptError{Message: strings.TrimSpace(r.Str("message")), Type: r.Str("type"), Inner: r.Str("inner"),
			HResult: normHResult(r.Str("hresult")), FQID: r.Str("fqid"), Kind: r.Str("kind"), Feature: r.Str("feature")})
	}
	return es
}

// normHResult writes an HRESULT as 0xXXXXXXXX (upper-case digits).
func normHResult(s string) string {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return "0x" + strings.ToUpper(h)
	}
	return s
}

// String is the message with what identifies the error in any language.
func (e ScriptError) String() string {
	var id []string
	if e.HResult != "" {
		id = append(id, "HRESULT "+e.HResult)
	}
	switch {
	case e.Inner != "" && e.Inner != e.Type:
		id = append(id, e.Inner)
	case e.Type != "":
		id = append(id, e.Type)
	}
	if len(id) == 0 {
		return e.Message
	}
	return e.Message + " [" + strings.Join(id, ", ") + "]"
}

// AccessDenied reports an error that means "not allowed", by number or
// exception type.
func (e ScriptError) AccessDenied() bool {
	switch e.HResult {
	case HResultAccessDenied, HResultWBEMAccessDenied, hresultInsufficientRights:
		return true
	}
	return e.Type == "System.UnauthorizedAccessException" || e.Inner == "System.UnauthorizedAccessException"
}

// webWMIMissing reports a missing Web-WMI: named as the feature, or the
// WMI namespace it provides (root\MicrosoftIISv2) is not there.
func (e ScriptError) webWMIMissing() bool {
	return (e.Kind == errorKindFeatureMissing && e.Feature == "Web-WMI") || e.HResult == hresultInvalidNamespace
}

// FeatureMissing reports a missing Windows feature or snap-in, and names it.
func (e ScriptError) FeatureMissing() (string, bool) {
	switch {
	case e.Kind == errorKindFeatureMissing:
		return featureText(e.Feature), true
	case e.HResult == hresultInvalidNamespace:
		return "a WMI namespace (for IIS: Web-WMI, IIS 6 WMI Compatibility)", true
	case strings.HasPrefix(e.FQID, fqidSnapinMissing):
		return "the Exchange management tools (PowerShell snap-in)", true
	}
	return "", false
}
