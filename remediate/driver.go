package remediate

import (
	"fmt"
	"sort"
	"sync"
)

var (
	driversMu sync.Mutex
	drivers   = map[Platform]Driver{}
)

// RegisterDriver makes a platform's driver available; each platform file
// calls it from init.
func RegisterDriver(d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[d.Platform()]; dup {
		panic("remediate: driver registered twice: " + string(d.Platform()))
	}
	drivers[d.Platform()] = d
}

// DriverFor returns the driver for a platform.
func DriverFor(p Platform) (Driver, error) {
	driversMu.Lock()
	defer driversMu.Unlock()
	d, ok := drivers[p]
	if !ok {
		return nil, fmt.Errorf("no driver for platform %q", p)
	}
	return d, nil
}

// Platforms lists the registered platforms, sorted.
func Platforms() []Platform {
	driversMu.Lock()
	defer driversMu.Unlock()
	ps := make([]Platform, 0, len(drivers))
	for p := range drivers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}
