package engagement

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []targetEntry
		err  string // substring of the error; "" = no error
	}{
		{"one per line", "example.com\nmx.example.org:587\n192.0.2.1\n[2001:db8::1]:2525\n",
			[]targetEntry{{1, "example.com", "", ""}, {2, "mx.example.org:587", "", ""}, {3, "192.0.2.1", "", ""}, {4, "[2001:db8::1]:2525", "", ""}}, ""},
		{"comments and blanks", "# audit list\n\n  example.com   # main domain\n\t\nexample.net\n",
			[]targetEntry{{3, "example.com", "", ""}, {5, "example.net", "", ""}}, ""},
		{"CRLF and BOM", "\ufeffexample.com\r\nexample.net\r\n", []targetEntry{{1, "example.com", "", ""}, {2, "example.net", "", ""}}, ""},
		{"no final newline", "example.com", []targetEntry{{1, "example.com", "", ""}}, ""},
		{"CSV with header", "client,domain,winrm\nAcme, acme.example , mail01.acme.example\nGlobex,globex.example\n",
			[]targetEntry{{2, "acme.example", "Acme", "mail01.acme.example"}, {3, "globex.example", "Globex", ""}}, ""},
		{"CSV without header, quoted", "# clients\n\"Acme Ltd\",\"acme.example\",\"10.0.0.5\"\n",
			[]targetEntry{{2, "acme.example", "Acme Ltd", "10.0.0.5"}}, ""},
		{"CSV header only", "client,domain\n", nil, "no targets"},
		{"empty", "\n# nothing\n", nil, "no targets"},
		{"CSV too many fields", "Acme,acme.example,h,extra\n", nil, "line 1: want client,domain[,winrm-host], got 4 fields"},
		{"CSV one field later", "Acme,acme.example\nglobex.example\n", nil, "line 2: want client,domain"},
		{"CSV empty client", ",acme.example\n", nil, "line 1: empty client"},
		{"CSV empty domain", "Acme,\n", nil, "line 1: empty target"},
		{"CSV bad WinRM host", "Acme,acme.example,admin@host\n", nil, "line 1: bad WinRM host"},
		{"comma in plain list", "example.com\nexample.net,x\n", nil, "line 2: a comma"},
		{"mail address", "example.com\nuser@example.com\n", nil, "line 2: bad target"},
		{"bad port", "\n\nexample.com:0\n", nil, "line 3: bad target"},
		{"not qualified", "mailhost\n", nil, "line 1: bad target"},
		{"duplicate", "example.com\nEXAMPLE.com.\n", nil, "line 2: target EXAMPLE.com. already on line 1"},
		{"too long", strings.Repeat("a", maxTargetLine+1) + "\n", nil, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTargets(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errTargetsFile) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseTargets(f *testing.F) {
	f.Add("example.com\n# c\n\nmx.example.org:587\n")
	f.Add("client,domain,winrm\nAcme,acme.example,mail01\n")
	f.Add("\"A\",\"b.example\"\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseTargets(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, errTargetsFile) {
				t.Fatalf("error %v does not wrap errTargetsFile", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no error and no targets")
		}
		last := 0
		for _, e := range got {
			if e.Line <= last || e.Target == "" || strings.ContainsAny(e.Target, ",#\n") {
				t.Fatalf("bad entry %+v after line %d", e, last)
			}
			last = e.Line
		}
	})
}
