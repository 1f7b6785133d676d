package lab

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownPlatform is returned by NewHost for a name it does not know.
var ErrUnknownPlatform = errors.New("unknown lab platform")

// NewHost returns a fresh host of the named platform (case-insensitive) in
// its default state, an open relay. `relaylock lab` and `relaylock demo`
// choose one by name with --platform. The switch is the one place that
// maps a name to a simulation: iis.go, exchange2003.go, exchange.go.
func NewHost(name string) (Host, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "iis":
		return NewIIS(IISAllExceptEmpty), nil
	case "exchange2003":
		return NewExchange2003(Ex2003Open), nil
	case "exchange2007":
		return Exchange2007OpenDefault(), nil
	case "exchange2010":
		return Exchange2010OpenDefault(), nil
	case "exchange2016":
		return Exchange2016OpenCustomConnector(), nil
	case "exchange2019":
		return Exchange2019AnonDefaultFrontend(), nil
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownPlatform, name, strings.Join(Platforms(), ", "))
}

// Platforms lists the platform names NewHost knows, sorted.
func Platforms() []string {
	return []string{"exchange2003", "exchange2007", "exchange2010", "exchange2016", "exchange2019", "iis"}
}
