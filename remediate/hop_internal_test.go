package remediate

import (
	"context"
	"testing"
)

func TestHopTarget(t *testing.T) {
	tests := []struct {
		info HostInfo
		want string
	}{
		{HostInfo{Platform: PlatformIIS}, ""},
		{HostInfo{Platform: PlatformExchange2003, ExchangeVersion: "2003"}, "ad"},
		{HostInfo{Platform: PlatformExchange, ExchangeVersion: "2007", ExchangeRoles: []string{"HubTransport"}}, "exchange2007"},
		{HostInfo{Platform: PlatformExchange, ExchangeVersion: "2010"}, "exchange"},
		{HostInfo{Platform: PlatformExchange, ExchangeVersion: "SE", ExchangeRoles: []string{"Mailbox"}}, "exchange"},
		{HostInfo{Platform: PlatformExchange, ExchangeVersion: "2016", ExchangeRoles: []string{"EdgeTransport"}}, "edge"},
	}
	for _, tc := range tests {
		if got := hopTarget(tc.info); got != tc.want {
			t.Errorf("%s %s %v: %q, want %q", tc.info.Platform, tc.info.ExchangeVersion, tc.info.ExchangeRoles, got, tc.want)
		}
	}
}

func TestDomainControllerPin(t *testing.T) {
	ctx := context.Background()
	for _, bad := range []string{"", "dc1 corp", "dc1;rm", "-dc", "a/b"} {
		if got := DomainControllerFrom(WithDomainController(ctx, bad)); got != "" {
			t.Errorf("%q pinned as %q", bad, got)
		}
	}
	ctx = WithDomainController(ctx, "DC1.corp.example")
	if got := DomainControllerFrom(ctx); got != "DC1.corp.example" {
		t.Errorf("pinned %q", got)
	}
	if p := exParams(ctx); p[DomainControllerParam] != "DC1.corp.example" {
		t.Errorf("exParams = %v", p)
	}
	if p := exParams(context.Background()); p != nil {
		t.Errorf("unpinned exParams = %v", p)
	}
}
