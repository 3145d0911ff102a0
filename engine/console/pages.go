package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/delivery"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policywatch"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// noRole is how a teammate without a role is shown.
const noRole = "(none)"

// overviewData is the overview page.
type overviewData struct {
	Teammates, WithAccess, Excluded int
	Roles                           []roleBar
	RoleChart, HourChart            any
	HourTotal                       int
	HourFilled                      bool
	GroupsActive, GroupsInactive    int
	GroupErrors                     int
	Policy                          policywatch.Status
	Pending                         []changeSummary
	Webhooks                        []webhookHealth
	FeedHead                        uint64
	Backlog                         float64
	HasBacklog                      bool
	Chain                           chainState
	AuditHead                       uint64
}

type webhookHealth struct {
	ID, URL, State, LastError string
	Lag                       uint64
	Delivered                 uint64
	LastDeliveredAt           time.Time
}

func (c *Console) overview(r *http.Request, _ *session) (string, *view, error) {
	snap := c.opts.Store.Read()
	d := overviewData{FeedHead: snap.FeedSeq}
	byRole := map[string]*roleBar{}
	snap.Records(reconcile.TableTeammates, func(_ string, v any) bool {
		t := v.(*reconcile.Teammate)
		d.Teammates++
		role := t.Role
		if role == "" {
			role = noRole
		}
		b := byRole[role]
		if b == nil {
			b = &roleBar{Role: role}
			byRole[role] = b
		}
		if t.Access {
			d.WithAccess++
			b.Access++
		} else {
			b.NoAccess++
		}
		if t.Excluded {
			d.Excluded++
		}
		return true
	})
	var order []string
	if set := c.opts.Policies.Active(); set != nil {
		order = set.Roles()
	}

	for _, role := range order {
		if b := byRole[role]; b != nil {
			d.Roles = append(d.Roles, *b)
			delete(byRole, role)
		} else {
			d.Roles = append(d.Roles, roleBar{Role: role})
		}
	}
	var rest []string
	for role := range byRole {
		rest = append(rest, role)
	}
	slices.Sort(rest)
	for _, role := range rest {
		d.Roles = append(d.Roles, *byRole[role])
	}
	d.RoleChart = roleChart(d.Roles)
	counts, first, filled := c.hourly.series()
	for _, n := range counts {
		d.HourTotal += n
	}
	d.HourChart, d.HourFilled = hourChart(counts, first), filled
	set := c.opts.Policies.Active()
	snap.Resources(store.KindGroup, func(g *store.Resource) bool {
		e := c.groupEvals.eval(r.Context(), set, g)
		if e.active {
			d.GroupsActive++
		} else {
			d.GroupsInactive++
		}
		if e.err != "" {
			d.GroupErrors++
		}
		return true
	})
	d.Policy = c.opts.Policies.Status()
	for _, ch := range c.opts.Reconciler.Changes(reconcile.ChangePending) {
		d.Pending = append(d.Pending, summarize(ch))
	}
	d.Webhooks = webhooks(snap)
	d.Backlog, d.HasBacklog = c.backlog()
	d.Chain, d.AuditHead = c.hourly.state()
	return "overview", &view{Title: "Overview", Nav: "overview", Data: d}, nil
}

func webhooks(snap *store.Snapshot) []webhookHealth {
	var out []webhookHealth
	snap.Records(delivery.TableWebhooks, func(_ string, v any) bool {
		e, ok := v.(*delivery.Endpoint)
		if !ok {
			return true
		}
		h := webhookHealth{ID: e.ID, URL: e.URL, LastError: e.LastError, Delivered: e.Delivered, LastDeliveredAt: e.LastDeliveredAt, State: "healthy"}
		if snap.FeedSeq > e.Cursor {
			h.Lag = snap.FeedSeq - e.Cursor
		}
		switch {
		case e.Paused:
			h.State = "paused"
		case e.Failures > 0:
			h.State = fmt.Sprintf("failing (%d in a row)", e.Failures)
		}
		out = append(out, h)
		return true
	})
	return out
}

// backlog reads the reconciler's queue depth from the metrics registry.
func (c *Console) backlog() (float64, bool) {
	if c.opts.Gatherer == nil {
		return 0, false
	}
	mfs, err := c.opts.Gatherer.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() == "scimd_reconcile_queue_depth" && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// teammateRow is one row of the teammates list.
type teammateRow struct {
	ID, UserName, Email, Role string
	Access, Excluded          bool
}

type teammatesData struct {
	Q, Role, Group, Access string
	Roles                  []string
	Rows                   []teammateRow
	Total, Page, Pages     int
	From, To               int
	PrevURL, NextURL       string
}

// teammates lists teammates matching the search, one page at a time. The
// search matches userName and e-mail addresses (case-insensitive
// substrings); role, group and access filter exactly.
func (c *Console) teammates(r *http.Request, s *session) (string, *view, error) {
	q := r.URL.Query()
	d := teammatesData{Q: strings.TrimSpace(q.Get("q")), Role: q.Get("role"), Group: strings.TrimSpace(q.Get("group")), Access: q.Get("access")}
	if len(d.Q) > 256 || len(d.Group) > 256 {
		return "", nil, errorStatus(http.StatusBadRequest, "search terms are limited to 256 characters")
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	if set := c.opts.Policies.Active(); set != nil {
		d.Roles = set.Roles()
	}
	snap := c.opts.Store.Read()
	needle := strings.ToLower(d.Q)
	size := c.opts.PageSize
	skip := (page - 1) * size
	// add counts a match and keeps it when it is on the page.
	add := func(id string, t *reconcile.Teammate, u *store.Resource, email string) {
		d.Total++
		if d.Total <= skip || d.Total > skip+size {
			return
		}
		if email == "" && u != nil {
			email = primaryEmail(u)
		}
		d.Rows = append(d.Rows, teammateRow{ID: id, UserName: t.UserName, Email: email, Role: t.Role, Access: t.Access, Excluded: t.Excluded})
	}
	keep := func(t *reconcile.Teammate) bool {
		switch {
		case d.Role == noRole && t.Role != "":
			return false
		case d.Role != "" && d.Role != noRole && t.Role != d.Role:
			return false
		case d.Access == "yes" && !t.Access, d.Access == "no" && t.Access:
			return false
		}
		return true
	}
	// search matches a user by userName or e-mail; it returns whether it
	// matched and the matching address.
	search := func(u *store.Resource) (bool, string) {
		if needle == "" || containsFold(u.Name, needle) {
			return true, ""
		}
		if email := matchingEmail(u, needle); email != "" {
			return true, email
		}
		return false, ""
	}
	switch {
	case d.Group != "":
		// Only the group's members, in id order.
		g, ok := snap.Resource(store.KindGroup, d.Group)
		if !ok {
			g, ok = snap.ResourceByName(store.KindGroup, d.Group)
		}
		if ok {
			for _, m := range snap.Members(g.ID) {
				v, ok := snap.Record(reconcile.TableTeammates, m.MemberID)
				if !ok {
					continue
				}
				t := v.(*reconcile.Teammate)
				if !keep(t) {
					continue
				}
				u, _ := snap.Resource(store.KindUser, m.MemberID)
				if u == nil {
					if needle == "" || containsFold(t.UserName, needle) {
						add(m.MemberID, t, nil, "")
					}
					continue
				}
				if ok, email := search(u); ok {
					add(m.MemberID, t, u, email)
				}
			}
		}
	case needle != "":
		// Users first (the match is on their attributes), then the
		// teammates whose user is gone (excluded teammates outlive it).
		snap.Resources(store.KindUser, func(u *store.Resource) bool {
			ok, email := search(u)
			if !ok {
				return true
			}
			if v, found := snap.Record(reconcile.TableTeammates, u.ID); found && keep(v.(*reconcile.Teammate)) {
				add(u.ID, v.(*reconcile.Teammate), u, email)
			}
			return true
		})
		snap.Records(reconcile.TableTeammates, func(id string, v any) bool {
			if t := v.(*reconcile.Teammate); t.UserDeleted && keep(t) && containsFold(t.UserName, needle) {
				add(id, t, nil, "")
			}
			return true
		})
	default:
		snap.Records(reconcile.TableTeammates, func(id string, v any) bool {
			t := v.(*reconcile.Teammate)
			if !keep(t) {
				return true
			}
			d.Total++
			if d.Total > skip && d.Total <= skip+size {
				d.Total--
				u, _ := snap.Resource(store.KindUser, id)
				add(id, t, u, "")
			}
			return true
		})
	}
	d.Pages = max(1, (d.Total+size-1)/size)
	if page > d.Pages && d.Total > 0 {
		// Past the end (the list shrank, or a hand-made link): show the
		// last page.
		r2 := r.Clone(r.Context())
		q.Set("page", strconv.Itoa(d.Pages))
		r2.URL.RawQuery = q.Encode()
		return c.teammates(r2, s)
	}
	d.Page = page
	if len(d.Rows) > 0 {
		d.From, d.To = skip+1, skip+len(d.Rows)
	}
	link := func(p int) string {
		v := url.Values{}
		for k, val := range map[string]string{"q": d.Q, "role": d.Role, "group": d.Group, "access": d.Access} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("page", strconv.Itoa(p))
		return Prefix + "teammates?" + v.Encode()
	}
	if page > 1 {
		d.PrevURL = link(min(page-1, d.Pages))
	}
	if page < d.Pages {
		d.NextURL = link(page + 1)
	}
	return "teammates", &view{Title: "Teammates", Nav: "teammates", Data: d}, nil
}

// containsFold reports whether s contains lowered (already lower case),
// ignoring case; ASCII text is compared without allocating.
func containsFold(s, lowered string) bool {
	n := len(lowered)
	if n == 0 {
		return true
	}
	if !isASCII(s) || !isASCII(lowered) {
		return strings.Contains(strings.ToLower(s), lowered)
	}
	first := lowered[0]
outer:
	for i := 0; i+n <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		for j := 1; j < n; j++ {
			if lowerASCII(s[i+j]) != lowered[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func emails(u *store.Resource) []map[string]any {
	list, _ := u.Attrs["emails"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func matchingEmail(u *store.Resource, needle string) string {
	list, _ := u.Attrs["emails"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if v, _ := m["value"].(string); v != "" && containsFold(v, needle) {
				return v
			}
		}
	}
	return ""
}

func primaryEmail(u *store.Resource) string {
	first := ""
	for _, e := range emails(u) {
		v, _ := e["value"].(string)
		if p, _ := e["primary"].(bool); p && v != "" {
			return v
		}
		if first == "" {
			first = v
		}
	}
	return first
}

// groupRow is a group as the teammate and groups pages show it.
type groupRow struct {
	ID, DisplayName, ExternalID, Role, Error string
	Active                                   bool
	Members                                  int
	// Warning is set when the policy maps the group by its display name
	// although it has an externalId (a rename in the IdP would unmap it).
	Warning string
}

type teammateData struct {
	T          reconcile.TeammateView
	User       *store.Resource
	Emails     []string
	Active     string
	Groups     []groupRow
	History    []review.HistoryEntry
	Explain    *explainView
	ExplainErr string
}

// explainView is the active policy's explanation of a teammate's decision.
type explainView struct {
	*policy.Explanation
	Rules []ruleRow
}

type ruleRow struct {
	Rule, Where, Args, Value string
}

// explainTimeout bounds the explanation of one decision (a traced
// evaluation, several times the cost of a decision).
const explainTimeout = 2 * time.Second

// maxValueText bounds a value shown in the explanation.
const maxValueText = 300

func compactJSON(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprint(v)
	}
	if len(s) > maxValueText {
		s = s[:maxValueText] + "…"
	}
	return s
}

func (c *Console) explain(ctx context.Context, id string) (*explainView, string) {
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	ex, _, err := c.opts.Reconciler.Explain(ctx, id)
	if err != nil {
		return nil, "The active policy could not explain this decision: " + err.Error()
	}
	v := &explainView{Explanation: ex}
	for _, r := range ex.Rules {
		row := ruleRow{Rule: r.Rule, Where: fmt.Sprintf("%s:%d", r.File, r.Row), Value: compactJSON(r.Value)}
		if len(r.Args) > 0 {
			row.Args = compactJSON(r.Args)
		}
		v.Rules = append(v.Rules, row)
	}
	return v, ""
}

func (c *Console) teammate(r *http.Request, _ *session) (string, *view, error) {
	id := r.PathValue("id")
	t, ok := c.opts.Reconciler.Teammate(id)
	if !ok {
		return "", nil, errorStatus(http.StatusNotFound, "There is no teammate %q.", id)
	}
	snap := c.opts.Store.Read()
	d := teammateData{T: t}
	if u, ok := snap.Resource(store.KindUser, id); ok {
		d.User = u
		for _, e := range emails(u) {
			if v, _ := e["value"].(string); v != "" {
				d.Emails = append(d.Emails, v)
			}
		}
		if a, ok := u.Attrs["active"].(bool); ok {
			d.Active = strconv.FormatBool(a)
		}
	}
	set := c.opts.Policies.Active()
	for _, m := range snap.GroupsOf(id) {
		if g, ok := snap.Resource(store.KindGroup, m.GroupID); ok {
			d.Groups = append(d.Groups, c.groupRow(r.Context(), snap, set, g, false))
		}
	}
	slices.SortFunc(d.Groups, func(a, b groupRow) int { return strings.Compare(a.DisplayName, b.DisplayName) })
	events, err := c.scanAll(r.Context(), store.AuditQuery{TargetID: id, Types: []string{"teammate"}}, 10000)
	if err != nil {
		return "", nil, err
	}
	d.History, err = review.History(r.Context(), id, events, c.lookup)
	if err != nil {
		return "", nil, err
	}
	slices.Reverse(d.History)
	if !t.UserDeleted {
		d.Explain, d.ExplainErr = c.explain(r.Context(), id)
	}
	return "teammate", &view{Title: t.UserName, Nav: "teammates", Data: d}, nil
}

// scanAll reads the events matching q, at most limit of them.
func (c *Console) scanAll(ctx context.Context, q store.AuditQuery, limit int) ([]audit.Event, error) {
	var out []audit.Event
	q.Limit = 1000
	for len(out) < limit {
		events, err := c.opts.Store.AuditEvents(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, events...)
		if len(events) < q.Limit {
			break
		}
		q.AfterSeq = events[len(events)-1].Seq
	}
	return out, nil
}

func (c *Console) lookup(ctx context.Context, seq uint64) (*audit.Event, error) {
	if seq == 0 {
		return nil, nil
	}
	events, err := c.opts.Store.AuditEvents(ctx, store.AuditQuery{AfterSeq: seq - 1, Limit: 1})
	if err != nil || len(events) == 0 || events[0].Seq != seq {
		return nil, err
	}
	return &events[0], nil
}

func (c *Console) groupRow(ctx context.Context, snap *store.Snapshot, set *policy.Set, g *store.Resource, count bool) groupRow {
	row := groupRow{ID: g.ID, DisplayName: g.Name, ExternalID: g.ExternalID}
	if count {
		row.Members = len(snap.Members(g.ID))
	}
	e := c.groupEvals.eval(ctx, set, g)
	row.Role, row.Active, row.Error, row.Warning = e.role, e.active, e.err, e.warning
	return row
}

type groupsData struct {
	Mapped, Unmapped []groupRow
	Warnings         int
	Filter           string
}

func (c *Console) groups(r *http.Request, _ *session) (string, *view, error) {
	snap := c.opts.Store.Read()
	set := c.opts.Policies.Active()
	d := groupsData{Filter: r.URL.Query().Get("show")}
	snap.Resources(store.KindGroup, func(g *store.Resource) bool {
		row := c.groupRow(r.Context(), snap, set, g, true)
		if row.Warning != "" {
			d.Warnings++
		}
		if row.Active {
			d.Mapped = append(d.Mapped, row)
		} else {
			d.Unmapped = append(d.Unmapped, row)
		}
		return true
	})
	byName := func(a, b groupRow) int {
		return strings.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName))
	}
	slices.SortFunc(d.Mapped, byName)
	slices.SortFunc(d.Unmapped, byName)
	return "groups", &view{Title: "Groups", Nav: "groups", Data: d}, nil
}

// changeSummary is a held change with its counts.
type changeSummary struct {
	reconcile.PendingChange
	Removals, Demotions, Grants, Other int
	// Confirm is the text an approver confirms.
	Confirm string
}

func summarize(ch reconcile.PendingChange) changeSummary {
	s := changeSummary{PendingChange: ch}
	for _, d := range ch.Changes {
		switch {
		case d.From.Access && !d.To.Access:
			s.Removals++
		case d.Demotion:
			s.Demotions++
		case !d.From.Access && d.To.Access:
			s.Grants++
		default:
			s.Other++
		}
	}
	s.Confirm = fmt.Sprintf("%d teammates: %d lose access, %d demoted, %d granted access, %d other changes",
		len(ch.Changes), s.Removals, s.Demotions, s.Grants, s.Other)
	if ch.Escalations > 0 || ch.Exclusions > 0 {
		s.Confirm += fmt.Sprintf("; %d escalations, %d newly excluded", ch.Escalations, ch.Exclusions)
	}
	return s
}

type changesData struct {
	Pending, Decided []changeSummary
}

func (c *Console) changes(_ *http.Request, _ *session) (string, *view, error) {
	var d changesData
	for _, ch := range c.opts.Reconciler.Changes("") {
		if ch.State == reconcile.ChangePending {
			d.Pending = append(d.Pending, summarize(ch))
		} else if len(d.Decided) < 50 {
			d.Decided = append(d.Decided, summarize(ch))
		}
	}
	return "changes", &view{Title: "Pending changes", Nav: "changes", Data: d}, nil
}

type changeData struct {
	C       changeSummary
	Rows    []diffRow
	More    int
	Message string
}

type diffRow struct {
	reconcile.Diff
	Kind string
}

// maxDiffRows bounds the rows of a change's page.
const maxDiffRows = 2000

func (c *Console) change(r *http.Request, _ *session) (string, *view, error) {
	ch, ok := c.opts.Reconciler.Change(r.PathValue("id"))
	if !ok {
		return "", nil, errorStatus(http.StatusNotFound, "There is no change %q.", r.PathValue("id"))
	}
	d := changeData{C: summarize(ch)}
	for i, diff := range ch.Changes {
		if i == maxDiffRows {
			d.More = len(ch.Changes) - maxDiffRows
			break
		}
		kind := "change"
		switch {
		case diff.From.Access && !diff.To.Access:
			kind = "removal"
		case diff.Demotion:
			kind = "demotion"
		case !diff.From.Access && diff.To.Access:
			kind = "grant"
		}
		d.Rows = append(d.Rows, diffRow{Diff: diff, Kind: kind})
	}
	v := &view{Title: "Change " + ch.ID, Nav: "changes", Data: d}
	switch r.URL.Query().Get("done") {
	case "approved":
		v.Message = "Approved. The teammates' new roles are being applied."
	case "rejected":
		v.Message = "Rejected. The teammates keep their current roles."
	}
	return "change", v, nil
}

// decide approves or rejects a held change. The session must have the
// approve scope and the form must confirm the change's numbers, so that
// what was approved is what was shown.
func (c *Console) decide(approve bool) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		if !s.grant.Approve {
			c.log.Warn("console: approval refused: token lacks the approve scope", "actor", s.grant.Name)
			c.fail(w, r, s, errorStatus(http.StatusForbidden, "The token %q may not approve or reject changes (scopes: %s). Nothing was changed.",
				s.grant.Name, strings.Join(s.grant.Scopes, ", ")))
			return
		}
		id := r.PathValue("id")
		ch, ok := c.opts.Reconciler.Change(id)
		if !ok {
			c.fail(w, r, s, errorStatus(http.StatusNotFound, "There is no change %q.", id))
			return
		}
		if want := summarize(ch).Confirm; r.PostForm.Get("confirm") != want {
			c.fail(w, r, s, errorStatus(http.StatusBadRequest, "Confirm the numbers of the change (%s) to decide it. Nothing was changed.", want))
			return
		}
		actor := audit.Actor{Kind: s.grant.Kind, Name: s.grant.Name}
		reqID := "ui-" + randomString(9)
		ctx := server.WithActor(r.Context(), actor)
		var err error
		done := "approved"
		if approve {
			err = c.opts.Reconciler.Approve(ctx, id, actor, reqID)
		} else {
			done = "rejected"
			err = c.opts.Reconciler.Reject(ctx, id, actor, reqID)
		}
		switch {
		case err == nil:
		case errors.Is(err, reconcile.ErrNotPending):
			c.fail(w, r, s, errorStatus(http.StatusConflict, "The change %s is no longer pending: %v", id, err))
			return
		default:
			c.fail(w, r, s, err)
			return
		}
		c.log.Info("console: change decided", "change", id, "outcome", done, "actor", actor.Name, "requestId", reqID)
		http.Redirect(w, r, Prefix+"changes/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	}
}

type auditData struct {
	Type, Teammate, Actor, Since, Until string
	Events                              []auditRow
	NextURL, LatestURL                  string
	Chain                               chainState
	Head                                uint64
}

type auditRow struct {
	audit.Event
	Text string
}

const timeInput = "2006-01-02T15:04"

func (c *Console) auditList(r *http.Request, _ *session) (string, *view, error) {
	q := r.URL.Query()
	d := auditData{Type: strings.TrimSpace(q.Get("type")), Teammate: strings.TrimSpace(q.Get("teammate")),
		Actor: strings.TrimSpace(q.Get("actor")), Since: q.Get("since"), Until: q.Get("until")}
	d.Chain, d.Head = c.hourly.state()
	aq := store.AuditQuery{Actor: d.Actor, Limit: c.opts.PageSize}
	if d.Type != "" {
		aq.Types = strings.Split(d.Type, ",")
	}
	if d.Teammate != "" {
		aq.TargetID = c.resolveUser(d.Teammate)
	}
	for _, p := range []struct {
		v   string
		dst *time.Time
	}{{d.Since, &aq.Since}, {d.Until, &aq.Until}} {
		if p.v == "" {
			continue
		}
		t, err := time.Parse(timeInput, p.v)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, p.v); err != nil {
				return "", nil, errorStatus(http.StatusBadRequest, "times must look like 2026-01-31T14:00 (UTC)")
			}
		}
		*p.dst = t.UTC()
	}
	filtered := d.Type != "" || d.Teammate != "" || d.Actor != "" || d.Since != "" || d.Until != ""
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return "", nil, errorStatus(http.StatusBadRequest, "after must be a sequence number")
		}
		aq.AfterSeq = n
	} else if !filtered && d.Head > uint64(aq.Limit) {
		aq.AfterSeq = d.Head - uint64(aq.Limit) // the newest page
	}
	events, err := c.opts.Store.AuditEvents(r.Context(), aq)
	if err != nil {
		return "", nil, err
	}
	for i := len(events) - 1; i >= 0; i-- {
		d.Events = append(d.Events, auditRow{Event: events[i], Text: review.Describe(events[i])})
	}
	if len(events) == aq.Limit {
		v := url.Values{}
		for k, val := range map[string]string{"type": d.Type, "teammate": d.Teammate, "actor": d.Actor, "since": d.Since, "until": d.Until} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("after", strconv.FormatUint(events[len(events)-1].Seq, 10))
		d.NextURL = Prefix + "audit?" + v.Encode()
	}
	if aq.AfterSeq > 0 {
		d.LatestURL = Prefix + "audit"
	}
	return "audit", &view{Title: "Audit", Nav: "audit", Data: d}, nil
}

func (c *Console) resolveUser(v string) string {
	snap := c.opts.Store.Read()
	if _, ok := snap.Resource(store.KindUser, v); ok {
		return v
	}
	if u, ok := snap.ResourceByName(store.KindUser, v); ok {
		return u.ID
	}
	return v
}

type eventData struct {
	E          audit.Event
	Prev, Next uint64
	Text       string
	JSON       string
}

func (c *Console) auditEvent(r *http.Request, _ *session) (string, *view, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		return "", nil, errorStatus(http.StatusBadRequest, "not a sequence number: %q", r.PathValue("seq"))
	}
	e, err := c.lookup(r.Context(), seq)
	if err != nil {
		return "", nil, err
	}
	if e == nil {
		return "", nil, errorStatus(http.StatusNotFound, "There is no audit event %d.", seq)
	}
	return "event", &view{Title: fmt.Sprintf("Audit event %d", seq), Nav: "audit",
		Data: eventData{E: *e, Prev: seq - 1, Next: seq + 1, Text: review.Describe(*e), JSON: indentJSON(e)}}, nil
}

type policyFile struct {
	Name, Content, Error string
	Test                 bool
}

type policyData struct {
	Status   policywatch.Status
	Files    []policyFile
	Changed  bool
	Tests    []policy.TestResult
	Passed   int
	Failed   int
	Plans    []planView
	PlanNote string
}

type planView struct {
	E        audit.Event
	Markdown any
}

// maxPolicyFileBytes bounds a policy file shown on the policy page.
const maxPolicyFileBytes = 1 << 20

func (c *Console) policy(r *http.Request, _ *session) (string, *view, error) {
	d := policyData{Status: c.opts.Policies.Status()}
	if set := c.opts.Policies.Active(); set != nil {
		d.Tests = set.Tests()
		for _, t := range d.Tests {
			if t.Outcome == policy.OutcomePass {
				d.Passed++
			} else {
				d.Failed++
			}
		}
		src, err := policy.ReadDir(d.Status.Dir)
		d.Changed = err != nil || src.Digest() != set.Digest()
		d.Files = readPolicyFiles(d.Status.Dir, set.Files())
	}
	for _, seq := range c.hourly.recentPlans() {
		e, err := c.lookup(r.Context(), seq)
		if err != nil {
			return "", nil, err
		}
		if e != nil {
			d.Plans = append(d.Plans, planView{E: *e, Markdown: renderMarkdown(planMarkdown(*e))})
		}
	}
	return "policy", &view{Title: "Policy", Nav: "policy", Data: d}, nil
}

// readPolicyFiles reads the named files inside dir (and nowhere else).
func readPolicyFiles(dir string, names []string) []policyFile {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return []policyFile{{Name: dir, Error: err.Error()}}
	}
	defer root.Close()
	out := make([]policyFile, 0, len(names))
	for _, name := range names {
		f := policyFile{Name: name, Test: policy.IsTestFile(name)}
		b, err := readBounded(root, name)
		if err != nil {
			f.Error = err.Error()
		} else {
			f.Content = string(b)
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b policyFile) int {
		switch {
		case a.Test == b.Test:
			return 0
		case a.Test:
			return 1
		default:
			return -1
		}
	})
	return out
}

func readBounded(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(f, maxPolicyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if n > maxPolicyFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: not shown", name, maxPolicyFileBytes)
	}
	return b.Bytes(), nil
}

// planMarkdown writes a plan's audit record as Markdown.
func planMarkdown(e audit.Event) string {
	var b strings.Builder
	outcome, _ := e.Details["outcome"].(string)
	rev, _ := e.Details["revision"].(string)
	live, _ := e.Details["liveRevision"].(string)
	fmt.Fprintf(&b, "#### %s `%s` against `%s`\n\n", orDash(strings.ToUpper(outcome[:min(1, len(outcome))])+outcome[min(1, len(outcome)):]), mdCode(orDash(rev)), mdCode(orDash(live)))
	fmt.Fprintf(&b, "%s by **%s**", e.Time.UTC().Format("2006-01-02 15:04 UTC"), mdText(e.Actor.Name))
	if commit, _ := e.Details["commit"].(string); commit != "" {
		fmt.Fprintf(&b, " at commit `%s`", mdCode(commit))
	}
	b.WriteString("\n\n")
	keys := []string{"summary", "teammates", "granted", "changed", "removed", "demotions", "wouldHold", "tests", "groups", "errors", "stage"}
	rows := 0
	for _, k := range keys {
		v, ok := e.Details[k]
		if !ok {
			continue
		}
		if rows == 0 {
			b.WriteString("| | |\n|---|---|\n")
		}
		rows++
		fmt.Fprintf(&b, "| %s | %s |\n", k, mdText(fmt.Sprint(v)))
	}
	if len(e.Reasons) > 0 {
		b.WriteString("\n")
		for _, r := range e.Reasons {
			fmt.Fprintf(&b, "- %s\n", mdText(r))
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// mdText escapes Markdown's punctuation in text that comes from outside.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\r' {
			b.WriteByte(' ')
			continue
		}
		if strings.ContainsRune("\\`*_{}[]()#+-.!|<>&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func mdCode(s string) string { return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s) }

// markdown renders without raw HTML (goldmark drops it unless told
// otherwise) and with GitHub's tables.
var markdown = goldmark.New(goldmark.WithExtensions(extension.Table))
