package audit

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     int
		enhanced string
		lines    []string
		err      error
	}{
		{"single", "250 2.1.5 Ok\r\n", 250, "2.1.5", []string{"2.1.5 Ok"}, nil},
		{"multi-line", "250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 250, "", []string{"mx.example.com", "PIPELINING", "STARTTLS"}, nil},
		{"missing SP, no text", "250\r\n", 250, "", []string{""}, nil},
		{"missing SP before text", "250Ok\r\n", 250, "", []string{"Ok"}, nil},
		{"bare LF", "554 5.7.1 Relay access denied\n", 554, "5.7.1", []string{"5.7.1 Relay access denied"}, nil},
		{"enhanced class must match", "250 5.7.1 odd\r\n", 250, "", []string{"5.7.1 odd"}, nil},
		{"postfix 454", "454 4.7.1 <a@b>: Relay access denied\r\n", 454, "4.7.1", []string{"4.7.1 <a@b>: Relay access denied"}, nil},
		{"bad code letters", "2x0 hi\r\n", 0, "", nil, ErrProtocol},
		{"code out of range", "650 hi\r\n", 0, "", nil, ErrProtocol},
		{"second digit out of range", "260 hi\r\n", 0, "", nil, ErrProtocol},
		{"too short", "25\r\n", 0, "", nil, ErrProtocol},
		{"code changes mid-reply", "250-a\r\n550 b\r\n", 0, "", nil, ErrProtocol},
		{"closed mid-reply", "250-a\r\n", 0, "", nil, ErrDropped},
		{"empty", "", 0, "", nil, ErrDropped},
		{"oversized line", "250 " + strings.Repeat("x", MaxReplyLine+10) + "\r\n", 0, "", nil, ErrProtocol},
		{"600-byte line is fine", "250 " + strings.Repeat("x", 600) + "\r\n", 250, "", []string{strings.Repeat("x", 600)}, nil},
		{"too many lines", strings.Repeat("250-x\r\n", MaxReplyLines+1) + "250 x\r\n", 0, "", nil, ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseReply([]byte(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != tc.code || r.Enhanced != tc.enhanced || strings.Join(r.Lines, "|") != strings.Join(tc.lines, "|") {
				t.Fatalf("got %d %q %q", r.Code, r.Enhanced, r.Lines)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"250 Ok\r\n", "250-a\r\n250 b\r\n", "554 5.7.1 no\r\n", "250\r\n", "421-x\n421 y\n", "2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrDropped) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if r.Code < 200 || r.Code > 559 || len(r.Lines) == 0 || len(r.Lines) > MaxReplyLines {
			t.Fatalf("bad reply %+v", r)
		}
		if r.Enhanced != "" && int(r.Enhanced[0]-'0') != r.Code/100 {
			t.Fatalf("enhanced %q for %d", r.Enhanced, r.Code)
		}
	})
}
