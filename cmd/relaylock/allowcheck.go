package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/relaylock/relaylock/remediate"
)

// allowFrom parses --allow (repeatable, comma-separated) and refuses,
// before anything is probed or read, what remediate.CheckAllowList
// refuses and CIDR entries with host bits set, naming entries as typed.
func allowFrom(c *cli.Context) ([]remediate.AddrRange, error) {
	var allow []remediate.AddrRange
	var typed []string
	for _, s := range c.StringSlice("allow") {
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			r, err := remediate.ParseAllowEntry(f)
			if err != nil {
				return nil, usagef("--allow: %v", err)
			}
			allow = append(allow, r)
			typed = append(typed, f)
		}
	}
	if len(allow) == 0 {
		return nil, usagef("name the clients allowed to relay with --allow (an IP, CIDR or range; repeatable)")
	}
	v4, v6 := c.Int("max-prefix"), c.Int("max-prefix6")
	if v4 < 0 || v4 > 32 {
		return nil, usagef("--max-prefix %d: want a prefix length from 0 to 32", v4)
	}
	if v6 < 0 || v6 > 128 {
		return nil, usagef("--max-prefix6 %d: want a prefix length from 0 to 128", v6)
	}
	err := remediate.CheckAllowList(allow, v4, v6, c.Bool("force"))
	var ae *remediate.AllowError
	var ue *remediate.AllowUnionError
	switch {
	case errors.As(err, &ae):
		msg := ae.Describe(typed[ae.Index])
		if canon := ae.Entry.String(); canon != typed[ae.Index] {
			msg += fmt.Sprintf(" (as a network: %s)", canon)
		}
		return nil, usagef("--allow: %s; %s", msg, allowLimitAdvice(ae.All, ae.Entry.From.Is6()))
	case errors.As(err, &ue):
		return nil, usagef("--allow: %s; %s", ue.Describe(typed), allowLimitAdvice(ue.All, ue.IPv6))
	case err != nil:
		return nil, usagef("--allow: %v", err)
	}
	return allow, nil
}
