package lab

import "github.com/relaylock/relaylock/remediate"

// partlyOverlap reports whether two RemoteIPRanges entries share an
// address while neither contains the other: Exchange refuses that
// between receive connectors with a common binding ("Multiple Receive
// connectors on the same server can have overlapping remote IP address
// ranges as long as one IP address range is completely overlapped by
// another", New-ReceiveConnector).
func partlyOverlap(x, y remediate.AddrRange) bool {
	if x.From.BitLen() != y.From.BitLen() || x.To.Less(y.From) || y.To.Less(x.From) {
		return false
	}
	xInY := !x.From.Less(y.From) && !y.To.Less(x.To)
	yInX := !y.From.Less(x.From) && !x.To.Less(y.To)
	return !xInY && !yInX
}
