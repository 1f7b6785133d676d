package audit

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// TestDiff is one test's outcome before and after a change, on one
// endpoint, as shown by remediate's re-test.
type TestDiff struct {
	Endpoint string  `json:"endpoint"` // "address:port/tls"
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Before   Outcome `json:"before"`
	After    Outcome `json:"after"`
}

// EndpointKey is an endpoint's identity, "address:port/tls", the one
// function that says whether two results are of the same endpoint: the
// first audit, its re-tests, diffs and the report meet on it. The address
// is in canonical form (an IPv4-mapped IPv6 address as IPv4, IPv6 in
// RFC 5952 form and in brackets; anything else lower case, without a
// trailing dot), then the port and the TLS mode. The MX host name is not
// part of it: a re-test of one host is usually run against its address.
func EndpointKey(e EndpointResult) string {
	return joinHostPortString(canonicalAddr(e.Address), e.Port) + "/" + e.TLS
}

// canonicalAddr is an address in canonical form, anything else in lower
// case without surrounding space or a trailing dot.
func canonicalAddr(s string) string {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap().String()
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

func joinHostPortString(addr string, port int) string {
	for i := 0; i < len(addr); i++ {
		if addr[i] == ':' {
			return fmt.Sprintf("[%s]:%d", addr, port)
		}
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// Compare pairs the tests of two runs by endpoint and test ID. Tests that
// ran in only one run appear with an empty outcome on the other side.
// The result is sorted by endpoint, then by test order of the first run.
func Compare(before, after *Result) []TestDiff {
	type key struct{ ep, id string }
	order := map[key]int{}
	diffs := map[key]*TestDiff{}
	n := 0
	add := func(r *Result, isAfter bool) {
		if r == nil {
			return
		}
		for _, t := range r.Targets {
			for _, e := range t.Endpoints {
				ep := EndpointKey(e)
				for _, tr := range e.Tests {
					k := key{ep, tr.ID}
					d, ok := diffs[k]
					if !ok {
						d = &TestDiff{Endpoint: ep, ID: tr.ID, Title: tr.Title}
						diffs[k] = d
						order[k] = n
						n++
					}
					if isAfter {
						d.After = tr.Outcome
					} else {
						d.Before = tr.Outcome
					}
				}
			}
		}
	}
	add(before, false)
	add(after, true)
	keys := make([]key, 0, len(diffs))
	for k := range diffs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].ep != keys[j].ep {
			return keys[i].ep < keys[j].ep
		}
		return order[keys[i]] < order[keys[j]]
	})
	out := make([]TestDiff, 0, len(keys))
	for _, k := range keys {
		out = append(out, *diffs[k])
	}
	return out
}

// IsOpen reports whether an outcome counts as relaying.
func (o Outcome) IsOpen() bool {
	switch o {
	case OutcomeOpenConfirmed, OutcomeOpenLikely, OutcomeOpenPotential, OutcomeSubmitted:
		return true
	}
	return false
}
