package lab

import (
	"strings"

	"github.com/relaylock/relaylock/remediate/psframe"
)

// Windows translates its error messages; the number (HRESULT) and the
// exception types stay. The lab answers in the language of
// WSManConfig.Language: error records that carry an HRESULT the catalogue
// knows get its message in that language, so a test can prove that
// relaylock classifies the same whatever the language. The German texts
// are the lab's renderings in the style of German Windows, not quotations;
// nothing in relaylock may depend on any of them.

// HRESULTs the lab's hosts report (winerror.h, wbemcli.h numbers).
const (
	// hresultOperationsError is HRESULT_FROM_WIN32(ERROR_DS_OPERATIONS_ERROR),
	// LDAP result 1: what an LDAP bind without credentials (the WinRM
	// second hop) typically ends with.
	hresultOperationsError = "0x80072020"
	// hresultNoAttributeOrValue is HRESULT_FROM_WIN32(ERROR_DS_NO_ATTRIBUTE_OR_VALUE).
	hresultNoAttributeOrValue = "0x8007200A"
	// hresultAccessDenied is E_ACCESSDENIED (HRESULT_FROM_WIN32(5)).
	hresultAccessDenied = "0x80070005"
	// hresultInvalidNamespace is WBEM_E_INVALID_NAMESPACE (WMI).
	hresultInvalidNamespace = "0x8004100E"
	// hresultNoSuchObject is HRESULT_FROM_WIN32(ERROR_DS_NO_SUCH_OBJECT),
	// LDAP result 32.
	hresultNoSuchObject = "0x80072030"
	// hresultInsufficientRights is
	// HRESULT_FROM_WIN32(ERROR_DS_INSUFF_ACCESS_RIGHTS), LDAP result 50.
	hresultInsufficientRights = "0x80072098"
)

var messageCatalogue = map[string]map[string]string{
	hresultInvalidNamespace: {
		"de-DE": "Ungültiger Namespace ",
	},
	hresultNoSuchObject: {
		"de-DE": "Auf dem Server ist kein solches Objekt vorhanden.\r\n",
	},
	hresultAccessDenied: {
		"de-DE": "Zugriff verweigert (Ausnahme von HRESULT: 0x80070005 (E_ACCESSDENIED))",
	},
	hresultInsufficientRights: {
		"de-DE": "Die Zugriffsrechte reichen nicht aus, um den Vorgang auszuführen.\r\n",
	},
	hresultOperationsError: {
		"de-DE": "Ein Vorgangsfehler ist aufgetreten.\r\n",
	},
	hresultNoAttributeOrValue: {
		"de-DE": "Das angegebene Verzeichnisdienstattribut oder der Wert ist nicht vorhanden.\r\n",
	},
	"0x80131509": { // ServiceCommandException (COR_E_INVALIDOPERATION)
		"de-DE": "Es wurde kein Dienst mit dem Dienstnamen gefunden.",
	},
}

// localize returns recs with the messages of error records in lang.
func localize(recs []psframe.Record, lang string) []psframe.Record {
	if lang == "" || strings.EqualFold(lang, "en-US") {
		return recs
	}
	out := make([]psframe.Record, len(recs))
	for i, r := range recs {
		out[i] = r
		if r.Type != psframe.ErrorRecord {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(r.Str("hresult")))
		msg, ok := messageCatalogue["0x"+strings.ToUpper(strings.TrimPrefix(h, "0x"))][lang]
		if !ok {
			continue
		}
		fields := append([]psframe.Field(nil), r.Fields...)
		for j := range fields {
			if fields[j].Name == "message" {
				fields[j] = psframe.Field{Name: "message", Value: msg}
			}
		}
		out[i].Fields = fields
	}
	return out
}
