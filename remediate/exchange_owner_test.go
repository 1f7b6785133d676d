package remediate_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/relaylock/relaylock/internal/lab"
	"github.com/relaylock/relaylock/remediate"
)

// TestExchangePlanRefusesForeignConnector: --connector-name naming an
// existing connector relaylock did not create (Exchange's default
// connectors, or any other without relaylock's mark) is refused by the
// plan, naming the connector and why; nothing is planned.
func TestExchangePlanRefusesForeignConnector(t *testing.T) {
	tests := []struct {
		host func() *lab.ExchangeHost
		name string
		why  string
	}{
		{lab.Exchange2016OpenCustomConnector, "Default Frontend EX1", "Internet"},
		{lab.Exchange2016OpenCustomConnector, "default frontend ex1", "Internet"},
		{lab.Exchange2016OpenCustomConnector, "Client Frontend EX1", "client submission"},
		{lab.Exchange2016OpenCustomConnector, "Outbound Proxy Frontend EX1", "717"},
		{lab.Exchange2016OpenCustomConnector, "Client Proxy EX1", "465"},
		{lab.Exchange2016OpenCustomConnector, "Default EX1", "default receive connector"},
		{lab.Exchange2016OpenCustomConnector, "App Relay", "[relaylock]"},
		{lab.Exchange2019Closed, "Default Frontend EX1", "Internet"},
		{lab.Exchange2010OpenDefault, "Default EX1", "default receive connector"},
		{lab.Exchange2010OpenDefault, "Client EX1", "client submission"},
		{lab.Exchange2007OpenDefault, "Default EX1", "default receive connector"},
	}
	for _, tc := range tests {
		h := tc.host()
		req := exRequest(false)
		req.ConnectorName = tc.name
		plan, err := exDriver(t).Plan(exInspect(t, h), req)
		if !errors.Is(err, remediate.ErrForeignConnector) || plan != nil {
			t.Errorf("%s on %s: plan %v, err %v; want ErrForeignConnector", tc.name, h.HostInfo().ExchangeVersion, plan, err)
			continue
		}
		for _, want := range []string{`EX1\`, "relaylock did not create", tc.why, "nothing was changed"} {
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
				t.Errorf("%s: error does not say %q: %v", tc.name, want, err)
			}
		}
	}
}

// TestExchangeOwnConnectorMarked: the connector relaylock creates carries
// relaylock's Comment, so a later run with the same custom name
// reconfigures it instead of refusing it; a default connector is never
// relaylock's, whatever its Comment says.
func TestExchangeOwnConnectorMarked(t *testing.T) {
	ctx := context.Background()
	d := exDriver(t)
	h := lab.Exchange2016OpenCustomConnector()
	req := exRequest(false)
	req.ConnectorName = "Scanner Relay"
	plan, err := d.Plan(exInspect(t, h), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(ctx, &lab.DirectRunner{Host: h}, plan); err != nil {
		t.Fatal(err)
	}
	var own *remediate.ExchangeConnector
	for _, c := range h.State().Connectors {
		if c.Name == "Scanner Relay" {
			own = &c
		}
	}
	if own == nil || own.Comment != remediate.RelayConnectorComment || !remediate.IsRelaylockConnector(*own) {
		t.Fatalf("created connector = %+v, want Comment %q", own, remediate.RelayConnectorComment)
	}
	// The read script's comment field reaches the state.
	if insp := exInspect(t, h); !strings.Contains(string(insp.State), remediate.RelayConnectorMarker) {
		t.Error("exchange-read did not carry the Comment into the inspection")
	}
	// A second run with another allow list changes the connector.
	wide, _ := remediate.ParseAddrRange("10.9.0.0/16")
	req.Allow = append(req.Allow, wide)
	again, err := d.Plan(exInspect(t, h), req)
	if err != nil {
		t.Fatalf("re-plan on relaylock's own connector: %v", err)
	}
	if len(again.Created) != 0 {
		t.Errorf("Created = %q, want the existing connector changed", again.Created)
	}
	changed := false
	for _, c := range again.Changes {
		changed = changed || (c.Object == `Receive connector EX1\Scanner Relay` && c.Setting == remediate.SetRemoteIPRanges)
	}
	if !changed {
		t.Errorf("re-plan does not widen the connector's ranges: %+v", again.Changes)
	}
	for _, c := range []remediate.ExchangeConnector{
		{Identity: `EX1\Default Frontend EX1`, Name: "Default Frontend EX1", Server: "EX1", Comment: remediate.RelayConnectorComment},
		{Identity: `EX1\Client EX1`, Name: "Client EX1", Comment: remediate.RelayConnectorComment},
		{Identity: `EX1\App Relay`, Name: "App Relay", Server: "EX1", Comment: "relay for the scanners [relaylock]"},
	} {
		if remediate.IsRelaylockConnector(c) {
			t.Errorf("%s counted as relaylock's", c.Identity)
		}
	}
	// Before the mark existed, relaylock's connector had the default name.
	if !remediate.IsRelaylockConnector(remediate.ExchangeConnector{Identity: `EX1\relaylock Relay`, Name: remediate.DefaultRelayConnectorName, Server: "EX1"}) {
		t.Error("the unmarked default dedicated connector is not relaylock's")
	}
}

// The comment travels as data through exchange-write and is decoded as
// it was sent.
func TestExchangeOpsCarryComment(t *testing.T) {
	op := remediate.ExchangeOp{Kind: remediate.OpNewConnector, Name: "n", Comment: remediate.RelayConnectorComment + " '; whoami"}
	got, err := remediate.DecodeExchangeOps(remediate.EncodeExchangeOps([]remediate.ExchangeOp{op}))
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Comment, op.Comment) {
		t.Errorf("round trip: %+v %v", got, err)
	}
}
