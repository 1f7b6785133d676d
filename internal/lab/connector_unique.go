package lab

// partlyOverlap reports whether two RemoteIPRanges entries share an
// address while neither contains the other: Exchange refuses that
// between receive connectors with a common binding ("Multiple Receive
// connectors on the same server can have overlapping remote IP address
// ranges as long as one IP address range is completely overlapped by
// another", New-ReceiveConnector).
func partlyOverlap(x, y exIPRange) bool {
	if x.lo.BitLen() != y.lo.BitLen() || x.hi.Less(y.lo) || y.hi.Less(x.lo) {
		return false
	}
	xInY := !x.lo.Less(y.lo) && !y.hi.Less(x.hi)
	yInX := !y.lo.Less(x.lo) && !x.hi.Less(y.hi)
	return !xInY && !yInX
}
