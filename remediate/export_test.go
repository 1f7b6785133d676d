package remediate

// Names the external tests (package remediate_test) use and the package
// does not export: exchange-write's operations, for tests that drive the
// Exchange lab directly or check what the driver sent.

type ExchangeOp = exchangeOp

const (
	OpNewConnector    = opNewConnector
	OpSetConnector    = opSetConnector
	OpRemoveConnector = opRemoveConnector
	OpAddACE          = opAddACE
	OpRemoveACE       = opRemoveACE
	OpSetDomain       = opSetDomain
	OpNewDomain       = opNewDomain
	OpRemoveDomain    = opRemoveDomain

	FieldRanges = fieldRanges
)

// Microsoft's values the external tests write into lab state or expect.
const (
	AnonymousLogonSID       = anonymousLogonSID
	HResultInvalidNamespace = hresultInvalidNamespace
	RelayForAuthEnabled     = relayForAuthEnabled
	RouteActionDomainRelay  = routeActionDomainRelay
)

// The dedicated relay connector relaylock creates and recognises.
const (
	DefaultRelayConnectorName = defaultRelayConnectorName
	RelayConnectorComment     = relayConnectorComment
	RelayConnectorMarker      = relayConnectorMarker
)

var (
	IsRelaylockConnector = isRelaylockConnector
	EncodeExchangeOps    = encodeExchangeOps
	DecodeExchangeOps    = decodeExchangeOps
)
