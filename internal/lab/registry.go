package lab

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// The platform registry: each platform simulation (iis.go,
// exchange*.go) registers itself from init(), and `relaylock lab` and
// `relaylock demo` choose one by name with --platform.
var (
	registryMu sync.RWMutex
	registry   = map[string]func() Host{}
)

// Register makes a platform available under name (lower case, e.g. "iis",
// "exchange2016"). newHost returns a fresh host in its default state, an
// open relay. Register panics on an empty or duplicate name or a nil
// constructor: both are programming errors found at start-up.
func Register(name string, newHost func() Host) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || name != strings.ToLower(name) || newHost == nil {
		panic(fmt.Sprintf("lab: bad platform registration %q", name))
	}
	if _, dup := registry[name]; dup {
		panic("lab: platform registered twice: " + name)
	}
	registry[name] = newHost
}

// ErrUnknownPlatform is returned by NewHost for an unregistered name.
var ErrUnknownPlatform = fmt.Errorf("unknown lab platform")

// NewHost returns a fresh host of the named platform.
func NewHost(name string) (Host, error) {
	registryMu.RLock()
	f := registry[strings.ToLower(strings.TrimSpace(name))]
	registryMu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownPlatform, name, strings.Join(Platforms(), ", "))
	}
	return f(), nil
}

// Platforms lists the registered platform names, sorted.
func Platforms() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
