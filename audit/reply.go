package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Reply reading limits. RFC 5321 §4.5.3.1.5 caps a reply line at 512
// octets; real servers exceed it, so we accept up to MaxReplyLine and
// give up (ErrProtocol) beyond that, or beyond MaxReplyLines lines or
// MaxReplyBytes in one reply, so a hostile server cannot make us buffer
// without end.
const (
	MaxReplyLine  = 4096
	MaxReplyLines = 100
	MaxReplyBytes = 1 << 20
)

// ParseReply parses one complete SMTP reply from b (fuzzing and tests).
func ParseReply(b []byte) (*Reply, error) {
	return readReply(bufio.NewReaderSize(bytes.NewReader(b), MaxReplyLine+8), nil)
}

// readReply reads one reply (RFC 5321 §4.2.1): lines "code-text" ending
// with "code SP text". The SP may be missing ("clients MUST be prepared
// for it to be omitted"), and bare LF line ends are tolerated. onLine, if
// set, sees every raw line (for the transcript) before it is checked.
func readReply(r *bufio.Reader, onLine func(string)) (*Reply, error) {
	var rep Reply
	total := 0
	for n := 0; ; n++ {
		if n >= MaxReplyLines {
			return nil, fmt.Errorf("reply longer than %d lines: %w", MaxReplyLines, ErrProtocol)
		}
		line, err := readLine(r)
		if line != "" && onLine != nil {
			onLine(line)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if n == 0 && line == "" {
					return nil, fmt.Errorf("read reply: %w", ErrDropped)
				}
				return nil, fmt.Errorf("read reply: connection closed mid-reply: %w", ErrDropped)
			}
			return nil, err
		}
		total += len(line)
		if total > MaxReplyBytes {
			return nil, fmt.Errorf("reply larger than %d bytes: %w", MaxReplyBytes, ErrProtocol)
		}
		code, last, text, err := splitReplyLine(line)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			rep.Code = code
		} else if code != rep.Code {
			return nil, fmt.Errorf("reply line code %d inside a %d reply: %w", code, rep.Code, ErrProtocol)
		}
		rep.Lines = append(rep.Lines, text)
		if last {
			break
		}
	}
	rep.Enhanced = enhancedCode(rep.Code, rep.Lines[0])
	return &rep, nil
}

// readLine reads one line without its line end, at most MaxReplyLine
// bytes.
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(buf)+len(frag) > MaxReplyLine+2 {
			return "", fmt.Errorf("reply line longer than %d bytes: %w", MaxReplyLine, ErrProtocol)
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(buf) > 0 && err == io.EOF {
				return string(buf), io.ErrUnexpectedEOF
			}
			return string(buf), err
		}
		break
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	return string(buf), nil
}

// splitReplyLine splits "250-text" / "250 text" / "250" / "250text".
// RFC 5321 §4.2: the first digit is 2-5 and the second 0-5; anything else
// is ErrProtocol (we cannot tell success from failure).
func splitReplyLine(line string) (code int, last bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("reply line %q too short: %w", clip(line, 40), ErrProtocol)
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("reply line %q has no 3-digit code: %w", clip(line, 40), ErrProtocol)
		}
	}
	if line[0] < '2' || line[0] > '5' || line[1] > '5' {
		return 0, false, "", fmt.Errorf("reply code %s out of range: %w", line[:3], ErrProtocol)
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	rest := line[3:]
	switch {
	case rest == "":
		return code, true, "", nil
	case rest[0] == '-':
		return code, false, rest[1:], nil
	case rest[0] == ' ':
		return code, true, rest[1:], nil
	default:
		// Missing SP before the text: tolerated, treated as last line.
		return code, true, rest, nil
	}
}

// enhancedCode returns the RFC 3463 status code at the start of text
// ("class.subject.detail", class equal to the reply's first digit,
// subject and detail 1-3 digits), or "".
func enhancedCode(code int, text string) string {
	word, _, _ := strings.Cut(strings.TrimLeft(text, " "), " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || int(parts[0][0]-'0') != code/100 {
		return ""
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return ""
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return ""
			}
		}
	}
	return word
}

// Text is the reply's text lines joined with a space.
func (r *Reply) Text() string {
	if r == nil {
		return ""
	}
	return strings.Join(r.Lines, " ")
}

// String is the first reply line as sent ("554 5.7.1 Relay access denied").
func (r *Reply) String() string {
	if r == nil {
		return ""
	}
	if len(r.Lines) == 0 || r.Lines[0] == "" {
		return fmt.Sprintf("%d", r.Code)
	}
	s := fmt.Sprintf("%d %s", r.Code, r.Lines[0])
	if len(r.Lines) > 1 {
		s += fmt.Sprintf(" (+%d lines)", len(r.Lines)-1)
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
