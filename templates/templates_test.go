package templates

import (
	"strings"
	"testing"
)

func TestIncludesExpand(t *testing.T) {
	for _, n := range ScriptNames() {
		s, err := Script(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if strings.Contains(s, IncludePrefix) {
			t.Errorf("%s: include left unexpanded", n)
		}
	}
	// The Exchange scripts share one loader, expanded in place.
	for _, n := range []string{"exchange-read", "exchange-write"} {
		s, err := Script(n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, "# BEGIN exchange-loader") || !strings.Contains(s, "Connect-ExchangeServer") {
			t.Errorf("%s: the Exchange loader is not expanded", n)
		}
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"missing fragment", "a\n" + IncludePrefix + "no-such-fragment\n", "no-such-fragment"},
		{"bad name", IncludePrefix + "../prologue\n", "bad include"},
		{"empty name", IncludePrefix + "\n", "bad include"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := expand("t", tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	got, err := expand("t", "a\r\n"+IncludePrefix+"exchange-loader\r\nb\r\n")
	if err != nil || !strings.HasPrefix(got, "a\r\n# BEGIN exchange-loader") || !strings.HasSuffix(got, "# END exchange-loader\nb\r\n") {
		t.Errorf("CRLF expansion: %v\n%q", err, got)
	}
}
