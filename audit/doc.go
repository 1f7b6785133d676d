// Package audit finds open SMTP relays. Run resolves each target (every MX,
// every A and AAAA, RFC 5321 §5.1; null MX, RFC 7505, is "no-mail"),
// probes every (MX host, address, port) and, when STARTTLS is offered,
// the same endpoint again after STARTTLS (RFC 3207), and returns a Result
// with verdicts, the decisive replies and full transcripts.
//
// # Test matrix
//
// Matrix (cases.go) returns, as data, a copy of the tests of
// docs/relay-probes.md §8: controls C1 (postmaster, must be accepted for a "closed" verdict), C2
// (nonexistent local user) and C3 (.invalid domain), which flag servers
// that accept everything (EndpointResult.AcceptAll); sender variants
// S1-S12 (null sender, server names and literals, spoofed local sender,
// localhost, unqualified, bang path, random subdomain); recipient
// variants R13-R34 (percent hack, quoted forms, double @, source routes,
// bang paths, missing brackets, trailing @ or dot), each run with the
// sender {u}@[ip] and again ("b") with {u}@{target domain}; R35 is
// informational. The matrix is a strict superset of nmap's
// smtp-open-relay tests (TestMatrixCoversNmap). Options.HeloVariants adds
// E39a-d. Crafted addresses respect RFC 5321 §4.5.3.1 limits; a form that
// cannot fit is skipped with its reason. IPv6 literals carry the "IPv6:"
// tag (RFC 5321 §4.1.3).
//
// # Verdicts
//
// Per test (verdict.go): RCPT 250/251 → DATA; 354 → the connection is
// dropped without "." (open-likely, the default depth "data"); depth
// "rcpt" stops at RCPT (open-potential); depth "deliver" sends a marked
// message (BuildTestMessage) and, with a Catcher, waits for it
// (open-confirmed, bounced or accepted-not-delivered). RCPT 5xx is
// denied; a 4xx that speaks of greylisting, whatever its enhanced code,
// and other 450/451 are retried with the same triplet within
// Options.GreylistRetry, else inconclusive(greylisted); a 4xx whose own
// words refuse (echoed addresses excluded) is denied; 421 or a
// dropped connection is retried once on a new connection. MAIL 530/5.7.0
// is auth-required; other MAIL 5xx leaves the test untested.
//
// A recipient form that ends at one of the server's own names (percent
// hack, double @ or bang path at its literal, banner host or domain; an
// unqualified address) proves nothing where the server accepts a random
// local part at that same name (its own-name control C2, C2I, C2B or C2U
// accepted, as IIS SMTP does with its Drop folder): it is recorded as
// accepted-as-local, does not make the endpoint open, and the closed
// verdict says so. Catch mode delivers it and tells.
//
// Per endpoint: open if any test is open (Triggers list them); closed only
// if C1 was accepted and every applicable test was refused; otherwise
// inconclusive with the dominant reason (unreachable, timeout, refused at
// greeting, tls, helo-refused, greylisted, dropped, blocked, ...). A host
// that could not be tested is never closed. Per target: the worst
// endpoint (open > inconclusive > closed).
//
// # Speed
//
// An endpoint's tests go to its first connection as one batch, with RSET
// between them; with PIPELINING (RFC 2920) the whole batch of
// RSET/MAIL/RCPT goes in one write (written while the replies are read,
// so no batch size can deadlock), so an endpoint costs four round trips:
// greeting, EHLO, the batch, QUIT (EndpointResult.RoundTrips counts each
// wait for the server, the greeting included). If the batch is not
// answered within max(Options.SlowAfter, SlowRTTs EHLO round trips) - a
// server that delays every reply, tarpits every refusal, or sleeps after
// a few errors as Postfix does - relaylock closes that connection (the
// transcript says so) and spreads the unanswered tests over up to
// Options.PerHost connections, at most Options.TestsPerConn (8, below
// Postfix's soft error limit) on one; a server that hangs up gets the
// same. PerHost bounds the connections to one address across the whole
// run, also when several targets share a mail host; endpoints run
// concurrently under a global connection rate (Options.Rate). Once an
// endpoint is open, batches not yet started are skipped (not sent) and
// tests whose RCPT was accepted are recorded open-potential without their
// DATA step, unless Options.AllTests.
//
// How many endpoints run at once (Options.Concurrency) is, by default,
// chosen from the open-file limit and the memory available
// (AutoConcurrency, at most MaxAutoConcurrency), and adapted during the
// run as TCP adapts its window (inflight.go): halved when connects fail
// on this machine (EMFILE, EADDRNOTAVAIL: the connect is then retried,
// never reported as the server's failure) or when at least half of a
// window of connects time out, raised again by rounds of successful
// connects. An endpoint waiting out greylisting gives its slot back.
// Targets are fed in order to a bounded pool of resolvers, so
// goroutines follow the work in flight, not the number of targets.
//
// Options.OnTarget streams each target as it finishes, and
// Options.SummaryOnly (or VerdictOnly) then drops its detail from the
// returned Result, so memory grows with the work in flight, not with the
// number of targets. ResultWriter writes the JSON document (or JSON
// lines) from those callbacks, in target order; `relaylock audit
// --targets --evidence` journals each target to disk instead.
//
// # Notable divergences
//
//   - Controls and informational tests stop at RCPT; the DATA step reruns
//     the whole transaction for each candidate, as the pipelined batch
//     has moved on.
//   - An open-likely or open-confirmed test makes the endpoint open even
//     when C1 was refused: a relayed DATA is evidence on its own. C1
//     refusal only prevents "closed".
//   - Bogus AUTH (test 41), the MX-based relay test (36) and SMTPUTF8 IDN
//     recipients (37) are not implemented.
//   - TLS certificates are recorded and verified for the report, never
//     required.
//
// # JSON
//
// `relaylock audit --format json` writes Result (result.go) through a
// ResultWriter, as the audit runs (start and options first, the targets
// in order, end, vantage and verdict last; `--format jsonl` one target
// per line): verdict, vantage (source addresses), options, and per
// target its kind,
// verdict, reason, MX list, DNS queries and endpoints; per endpoint the
// banner, extensions, TLS info, tests (id, title, kind, MAIL FROM, RCPT
// TO, outcome, reason, decisive reply with enhanced code, connection
// index, token, catch evidence), transcripts (C/S/* lines with
// timestamps, bounded: Truncated counts dropped lines) and counters
// (connections, round trips, commands). Fields are added, never
// redefined.
package audit
