package remediate

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// answerSlack is added to OperationTimeout to bound how long one WinRM
// answer may take: its headers (http.Transport.ResponseHeaderTimeout) and,
// separately, its body (readBody). A variable so tests can shorten it.
var answerSlack = 30 * time.Second

// errSlowAnswer is the cause when a body does not arrive in time.
var errSlowAnswer = fmt.Errorf("answer body not complete in time")

// readBody reads at most maxResponse+1 bytes of an answer body within
// limit. ResponseHeaderTimeout bounds only the wait for the headers: a
// host that sends headers and then trickles the body (or never ends it)
// would otherwise hold the run until the caller gives up. On timeout the
// body is closed, which ends the read.
func readBody(body io.ReadCloser, limit time.Duration, hostPort string) ([]byte, error) {
	var late atomic.Bool
	t := time.AfterFunc(limit, func() {
		late.Store(true)
		body.Close()
	})
	b, err := io.ReadAll(io.LimitReader(body, maxResponse+1))
	t.Stop()
	if late.Load() {
		return nil, kindErr(ErrWinRM, errSlowAnswer, "%s did not finish its answer within %s", hostPort, limit)
	}
	return b, err
}
