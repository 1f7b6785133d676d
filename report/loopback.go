package report

import (
	"strings"

	"github.com/relaylock/relaylock/remediate"
)

// loopbackPhrase is how an inspection's fix text (written before any
// plan) says that remediate adds 127.0.0.1 to the allowed clients, which
// it does unless --no-loopback.
const loopbackPhrase = remediate.FixTextLoopback

// fixText is a cause's fix text as the report prints it: its loopback
// phrase follows the relay list that was actually applied (the change in
// effect) or else planned for the host (the latest change or plan), and
// with neither it says that the default can be turned off.
func (r *renderer) fixText(f *finding, text string) string {
	if !strings.Contains(text, loopbackPhrase) {
		return text
	}
	list, ok := r.relayListFor(f)
	switch {
	case !ok:
		return strings.Replace(text, loopbackPhrase, "(and 127.0.0.1, unless --no-loopback)", 1)
	case strings.Contains(list, "127.0.0.1"):
		return text
	default:
		return strings.Replace(text, loopbackPhrase, "(without 127.0.0.1: the change was made with --no-loopback)", 1)
	}
}

// relayListFor is the relay list (RelayIpList, as decoded) that was
// applied to the finding's host by the change in effect, or else planned
// by its latest change or plan; ok is false when none was.
func (r *renderer) relayListFor(f *finding) (string, bool) {
	find := func(cs []remediate.Change) (string, bool) {
		for _, c := range cs {
			if c.Setting == remediate.SettingRelayIpList {
				return c.New, true
			}
		}
		return "", false
	}
	if rec, _ := inEffect(f.Changes); rec != nil {
		if v, ok := find(rec.Applied); ok {
			return v, true
		}
	}
	for i := len(f.Changes) - 1; i >= 0; i-- {
		if c := f.Changes[i]; c.Kind == remediate.ChangeRemediate {
			if v, ok := find(c.Planned); ok {
				return v, true
			}
		}
	}
	if f.Host == "" {
		return "", false
	}
	plans := r.m.b.Plans
	for i := len(plans) - 1; i >= 0; i-- {
		if plans[i].Host == f.Host {
			if v, ok := find(plans[i].Changes); ok {
				return v, true
			}
		}
	}
	return "", false
}
