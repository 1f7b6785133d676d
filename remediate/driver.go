package remediate

import (
	"errors"
	"fmt"
)

// ErrUnknownPlatform is returned by DriverFor for a platform that has no
// driver.
var ErrUnknownPlatform = errors.New("no driver for platform")

// DriverFor returns the driver for a platform. The switch is the only place
// that maps a platform to its driver: from here a reader follows Plan and
// Apply into iis_*.go, exchange2003*.go or exchange_*.go.
func DriverFor(p Platform) (Driver, error) {
	switch p {
	case PlatformIIS:
		return IISDriver{}, nil
	case PlatformExchange2003:
		return &Exchange2003Driver{}, nil
	case PlatformExchange:
		return exchangeDriver{}, nil
	}
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownPlatform, p, Platforms())
}

// Platforms lists every platform that has a driver, sorted.
func Platforms() []Platform {
	return []Platform{PlatformExchange, PlatformExchange2003, PlatformIIS}
}
