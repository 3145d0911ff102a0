package policywatch

import (
	"fmt"
	"maps"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
)

// Details values are restricted to strings, numbers, bools, []any, []string
// and map[string]any so that an event hashes the same after a round trip
// through JSON.

// activatedEvent is the policy.activated record of s replacing prev. plan,
// when not nil, is the revision's latest plan (policy.planned): the event
// names it and says whether it was made against the revision now
// replaced; the activation's decision.summary says whether the changes
// applied are the plan's.
func activatedEvent(now time.Time, trigger string, s, prev *policy.Set, plan map[string]any) audit.Event {
	files := s.Files()
	d := map[string]any{
		"revision": s.Revision(),
		"digest":   s.Digest(),
		"files":    files,
		"trigger":  trigger,
		"tests":    len(s.Tests()),
		"roles":    s.Roles(),
	}
	if s.Commit() != "" {
		d["commit"] = s.Commit()
	}
	change := &audit.Change{To: s.Revision()}
	prevRev := ""
	if prev != nil {
		d["previousRevision"] = prev.Revision()
		change.From = prev.Revision()
		prevRev = prev.Revision()
	}
	if plan != nil {
		p := maps.Clone(plan)
		p["againstReplacedRevision"] = fmt.Sprint(p["liveRevision"]) == prevRev
		d["plan"] = p
	}
	return audit.Event{
		Time:           now,
		Type:           audit.TypePolicyActivated,
		Actor:          audit.Actor{Kind: "policy", Name: trigger},
		Target:         audit.Target{Type: "Policy", ID: s.Revision()},
		Change:         change,
		Reasons:        []string{fmt.Sprintf("policy revision %s passed %d tests and the contract checks (%s)", s.Revision(), len(s.Tests()), trigger)},
		PolicyRevision: s.Revision(),
		Details:        d,
	}
}

func refusedEvent(now time.Time, trigger, dir string, re *policy.RefusedError, active *policy.Set) audit.Event {
	problems := make([]any, len(re.Problems))
	for i, p := range re.Problems {
		m := map[string]any{"message": p.Message}
		if p.File != "" {
			m["file"] = p.File
		}
		if p.Row > 0 {
			m["row"] = p.Row
			m["location"] = p.Location()
		}
		problems[i] = m
	}
	d := map[string]any{
		"stage":    string(re.Stage),
		"error":    re.Error(),
		"trigger":  trigger,
		"dir":      dir,
		"problems": problems,
	}
	if re.Revision != "" {
		d["revision"] = re.Revision
	}
	var failed []string
	for _, t := range re.Tests {
		if t.Failed() {
			failed = append(failed, fmt.Sprintf("%s:%d: %s.%s", t.File, t.Row, t.Package, t.Name))
		}
	}
	if len(failed) > 0 {
		d["failedTests"] = failed
	}
	activeRev := ""
	if active != nil {
		activeRev = active.Revision()
		d["activeRevision"] = activeRev
	}
	return audit.Event{
		Time:           now,
		Type:           audit.TypePolicyRefused,
		Actor:          audit.Actor{Kind: "policy", Name: trigger},
		Target:         audit.Target{Type: "Policy", ID: re.Revision},
		Reasons:        re.Reasons(),
		PolicyRevision: activeRev,
		Details:        d,
	}
}
