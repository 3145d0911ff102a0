package review

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/reconcile"
)

// HistoryEntry is one change of a teammate's role, access or exclusion, as
// the audit log recorded it. One change can be recorded as several events
// (access granted and role changed); they are one entry.
type HistoryEntry struct {
	Time time.Time `json:"time"`
	// Seqs and Types are the audit events of the change.
	Seqs  []uint64        `json:"seqs"`
	Types []string        `json:"types"`
	From  reconcile.State `json:"from"`
	To    reconcile.State `json:"to"`
	// Reasons are the policy's reasons (or the manual change's).
	Reasons        []string    `json:"reasons,omitempty"`
	PolicyRevision string      `json:"policyRevision,omitempty"`
	DecisionID     string      `json:"decisionId,omitempty"`
	RequestID      string      `json:"requestId,omitempty"`
	Actor          audit.Actor `json:"actor"`
	// Cause is what triggered the change, with the events that caused it.
	Cause *Cause `json:"cause,omitempty"`
}

// Cause is what made the reconciler re-evaluate a teammate.
type Cause struct {
	// Kind is scim, policy, drift, startup, approval, rejection or manual.
	Kind      string `json:"kind"`
	Actor     string `json:"actor,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	Revision  string `json:"revision,omitempty"`
	// Events are the audit events of the write that caused it, resolved.
	Events []CauseEvent `json:"events,omitempty"`
	// Text says it in words.
	Text string `json:"text"`
}

// CauseEvent is one audit event behind a change.
type CauseEvent struct {
	Seq    uint64       `json:"seq"`
	Time   time.Time    `json:"time"`
	Type   string       `json:"type"`
	Actor  audit.Actor  `json:"actor"`
	Target audit.Target `json:"target"`
	// Text describes the event from the teammate's point of view ("added
	// to group Intercom Admins").
	Text string `json:"text"`
}

// LookupFunc returns the audit event with sequence number seq, or nil.
type LookupFunc func(ctx context.Context, seq uint64) (*audit.Event, error)

// IsChangeEvent reports whether an event type records a change of a
// teammate's state (as opposed to a decision that changed nothing).
func IsChangeEvent(typ string) bool {
	switch typ {
	case audit.TypeRoleManualRefused, audit.TypeDriftObserved:
		return false // nothing changed: a refusal, or an observation
	}
	return strings.HasPrefix(typ, "teammate.")
}

// History turns the audit events about one teammate (in sequence order)
// into its change history, oldest first, resolving each change's cause
// with lookup. Events that are not changes are skipped.
func History(ctx context.Context, subject string, events []audit.Event, lookup LookupFunc) ([]HistoryEntry, error) {
	out := []HistoryEntry{}
	cache := map[uint64]*audit.Event{}
	get := func(seq uint64) (*audit.Event, error) {
		if e, ok := cache[seq]; ok {
			return e, nil
		}
		e, err := lookup(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("look up audit event %d: %w", seq, err)
		}
		cache[seq] = e
		return e, nil
	}
	for _, e := range events {
		if !IsChangeEvent(e.Type) || (e.Target.ID != subject && subject != "") {
			continue
		}
		from, _ := asState(e.Change, true)
		to, _ := asState(e.Change, false)
		if n := len(out); n > 0 && sameChange(out[n-1], e, from, to) {
			out[n-1].Seqs = append(out[n-1].Seqs, e.Seq)
			out[n-1].Types = append(out[n-1].Types, e.Type)
			continue
		}
		h := HistoryEntry{Time: e.Time, Seqs: []uint64{e.Seq}, Types: []string{e.Type}, From: from, To: to,
			Reasons: e.Reasons, PolicyRevision: e.PolicyRevision, DecisionID: e.DecisionID, RequestID: e.RequestID, Actor: e.Actor}
		c, err := causeOf(e, subject, get)
		if err != nil {
			return nil, err
		}
		h.Cause = c
		out = append(out, h)
	}
	return out, nil
}

// sameChange reports whether e records the same change as h (the several
// events one change writes share the decision, the time and from → to).
func sameChange(h HistoryEntry, e audit.Event, from, to reconcile.State) bool {
	return h.DecisionID == e.DecisionID && h.Time.Equal(e.Time) && h.RequestID == e.RequestID &&
		reflect.DeepEqual(h.From, from) && reflect.DeepEqual(h.To, to) && h.Seqs[len(h.Seqs)-1]+1 == e.Seq
}

// causeOf reads the cause the reconciler recorded in e.Details["cause"].
func causeOf(e audit.Event, subject string, get func(uint64) (*audit.Event, error)) (*Cause, error) {
	if e.Type == audit.TypeRoleManual {
		return &Cause{Kind: "manual", Actor: e.Actor.Name, RequestID: e.RequestID,
			Text: fmt.Sprintf("set by hand by %s", e.Actor.Name)}, nil
	}
	raw, ok := e.Details["cause"].(map[string]any)
	if !ok {
		return nil, nil
	}
	c := &Cause{}
	c.Kind, _ = raw["kind"].(string)
	c.Actor, _ = raw["actor"].(string)
	c.RequestID, _ = raw["requestId"].(string)
	c.Revision, _ = raw["revision"].(string)
	var seqs []uint64
	if l, ok := raw["auditSeqs"].([]any); ok {
		for _, v := range l {
			if n, ok := asUint(v); ok {
				seqs = append(seqs, n)
			}
		}
	}
	if n, ok := asUint(e.Details["reverts"]); ok {
		seqs = append(seqs, n)
	}
	var texts []string
	for _, seq := range seqs {
		ce, err := get(seq)
		if err != nil {
			return nil, err
		}
		if ce == nil {
			continue
		}
		// A SCIM request writes one event per resource; keep those about
		// this teammate or its groups' membership.
		if ce.Target.ID != subject && strings.HasPrefix(ce.Type, "scim.group.") && !MentionsMember(*ce, subject) && len(seqs) > 1 {
			continue
		}
		text := DescribeFor(*ce, subject)
		c.Events = append(c.Events, CauseEvent{Seq: ce.Seq, Time: ce.Time, Type: ce.Type, Actor: ce.Actor, Target: ce.Target, Text: text})
		texts = append(texts, text)
	}
	switch c.Kind {
	case "scim":
		c.Text = fmt.Sprintf("identity provider (%s): %s", orNone(c.Actor), strings.Join(texts, "; "))
	case "drift":
		c.Text = "manual change reverted: " + strings.Join(texts, "; ")
	case "policy":
		c.Text = "policy revision " + c.Revision + " activated"
	case "startup":
		c.Text = "reconciliation at startup"
	case "approval":
		c.Text = "held change approved by " + c.Actor
	case "rejection":
		c.Text = "held change rejected by " + c.Actor
	default:
		c.Text = c.Kind
	}
	return c, nil
}

func asUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case float64:
		if n >= 0 {
			return uint64(n), true
		}
	case uint64:
		return n, true
	case int:
		if n >= 0 {
			return uint64(n), true
		}
	case json.Number:
		u, err := n.Int64()
		if err == nil && u >= 0 {
			return uint64(u), true
		}
	}
	return 0, false
}

// historyState describes one side of a history entry: "new" before a
// teammate existed, "deleted" after it was removed.
func historyState(s reconcile.State, from bool) string {
	if !s.Exists {
		if from {
			return "new"
		}
		return "deleted"
	}
	return stateText(s)
}

// WriteHistoryText writes entries for a terminal, oldest first: when,
// from → to, the audit events, the policy's reasons and the cause.
func WriteHistoryText(w io.Writer, entries []HistoryEntry) error {
	bw := bufio.NewWriter(w)
	if len(entries) == 0 {
		fmt.Fprintln(bw, "  (no role or access changes recorded)")
	}
	for _, h := range entries {
		seqs := fmt.Sprint(h.Seqs[0])
		if n := len(h.Seqs); n > 1 {
			seqs = fmt.Sprintf("%d-%d", h.Seqs[0], h.Seqs[n-1])
		}
		fmt.Fprintf(bw, "  %s  %s → %s  (%s; audit %s)\n", h.Time.UTC().Format(time.RFC3339), historyState(h.From, true),
			historyState(h.To, false), strings.Join(h.Types, ", "), seqs)
		if len(h.Reasons) > 0 {
			fmt.Fprintf(bw, "      why:   %s\n", joinReasons(h.Reasons))
		}
		if h.PolicyRevision != "" {
			fmt.Fprintf(bw, "      policy %s", h.PolicyRevision)
			if h.DecisionID != "" {
				fmt.Fprintf(bw, ", decision %s", h.DecisionID)
			}
			fmt.Fprintln(bw)
		}
		if h.Cause != nil {
			fmt.Fprintf(bw, "      cause: %s", h.Cause.Text)
			if h.Cause.RequestID != "" {
				fmt.Fprintf(bw, " (request %s)", h.Cause.RequestID)
			}
			fmt.Fprintln(bw)
		}
	}
	return bw.Flush()
}
