package main

import (
	"errors"

	"github.com/relaylock/relaylock/remediate"
)

// hintFor returns advice for errors whose fix is known. Packages return
// typed errors; only cmd/ turns them into advice.
func hintFor(err error) string {
	if h := winrmHint(err); h != "" {
		return h
	}
	switch {
	case errors.Is(err, remediate.ErrUnsupportedShell):
		return "to write through the snap-in anyway, pass --force"
	case errors.Is(err, remediate.ErrRefusedUnlessForced):
		return "check the decoded list against IIS Manager; to write anyway, pass --force"
	}
	return ""
}

// allowLimitAdvice names the flags that lift a refused --allow list: the
// library words the refusal without flag names ("refused unless forced or
// the limit is raised") because its text is stored in the evidence.
func allowLimitAdvice(all, ipv6 bool) string {
	if all {
		return "pass --force only if you really mean it"
	}
	if ipv6 {
		return "pass --force, or raise the limit with --max-prefix6"
	}
	return "pass --force, or raise the limit with --max-prefix"
}
