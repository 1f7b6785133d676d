package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// The library words refusals without flag names (its text is stored in
// the evidence); cmd/ adds the flags as advice.
func TestForceAdviceNamesFlags(t *testing.T) {
	r := func(s string) remediate.AddrRange {
		a, err := remediate.ParseAddrRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name  string
		allow []remediate.AddrRange
		want  string
	}{
		{"every IPv4 address", []remediate.AddrRange{r("0.0.0.0/0")}, "pass --force only if you really mean it"},
		{"wider than /8", []remediate.AddrRange{r("10.0.0.0/7")}, "pass --force, or raise the limit with --max-prefix"},
		{"wider than /32 (IPv6)", []remediate.AddrRange{r("2001:db8::/31")}, "pass --force, or raise the limit with --max-prefix6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := remediate.CheckAllowList(tc.allow, 8, 32, false)
			if err == nil {
				t.Fatal("not refused")
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("library message names a flag: %s", err)
			}
			ae, ok := err.(*remediate.AllowError)
			if !ok {
				t.Fatalf("err = %T, want *remediate.AllowError", err)
			}
			if got := allowLimitAdvice(ae.All, ae.Entry.From.Is6()); got != tc.want {
				t.Errorf("advice = %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("apply EX1: %w", remediate.ErrUnsupportedShell), "to write through the snap-in anyway, pass --force"},
		{fmt.Errorf("plan SMTP/1: %w: differs; not writing hand-built bytes: %w", remediate.ErrRelayList, remediate.ErrRefusedUnlessForced), "check the decoded list against IIS Manager; to write anyway, pass --force"},
	} {
		if strings.Contains(tc.err.Error(), "--") {
			t.Errorf("library message names a flag: %s", tc.err)
		}
		if got := hintFor(tc.err); got != tc.want {
			t.Errorf("hintFor(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Without a terminal and without --yes, the library says the change was
// not confirmed (ErrNoConfirmer) and cmd/ names the flag.
func TestNotConfirmedNamesYes(t *testing.T) {
	lr := startLab(t, lab.NewIIS(lab.IISAllExceptEmpty))
	args := append(append([]string{"remediate", "--allow", "192.0.2.10"}, lr.winrmArgs()...), lr.probeArgs()...)
	code, _, errOut := lr.run(labTestPassword, args...)
	if code != exitOpen || !strings.Contains(errOut, "stdin is not a terminal, and the change was not confirmed in advance; pass --yes to apply without asking") {
		t.Fatalf("exit %d, want %d with the --yes advice\n%s", code, exitOpen, errOut)
	}
}
