package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policywatch"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// DefaultMaxPlanBytes bounds a plan request: the policy loader's 64 MiB
// limit per set, plus room for the JSON encoding.
const DefaultMaxPlanBytes = 72 << 20

// ReviewOptions configure the review endpoints.
type ReviewOptions struct {
	Store      *store.Store
	Reconciler *reconcile.Reconciler
	// Candidate compiles and tests in-memory policy files exactly as a
	// reload would, without activating them.
	Candidate func(ctx context.Context, files map[string][]byte) (*policy.Set, error)
	// Active returns the active policy set, nil while none is.
	Active func() *policy.Set
	// Shadow holds the shadow policy set (nil: the shadow endpoints
	// answer 404).
	Shadow *policywatch.Shadow
	// RequireAdmin wraps handlers with authentication and the check of
	// the route's scope (RouteScope).
	RequireAdmin func(http.Handler) http.Handler
	// MaxPlanBytes bounds a plan request body (0: DefaultMaxPlanBytes).
	MaxPlanBytes int64
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Review serves the review workflow's endpoints: policy plans, audit chain
// verification, single audit events, teammate histories and the access
// report.
type Review struct {
	opts ReviewOptions
}

// NewReview returns the review endpoints.
func NewReview(opts ReviewOptions) *Review {
	if opts.MaxPlanBytes <= 0 {
		opts.MaxPlanBytes = DefaultMaxPlanBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Review{opts: opts}
}

// Register mounts the endpoints on r under /api/v1:
//
//	POST /plan                     plan a candidate policy (review.PlanRequest)
//	GET  /audit/verify[?expect=SEQ:HASH]  walk the audit hash chain
//	GET  /audit/{seq}              one audit event
//	GET  /teammates/{id}/history   a teammate's role and access changes
//	GET  /report                   the access review report
//	GET  /settled[?timeout=5s]     wait until acknowledged writes are reconciled
//	GET  /teammates/{id}/explain   why the live policy decides a teammate as it does
//	POST /whatif                   a teammate's decision under a hypothetical change
//	GET|PUT|DELETE /policy/shadow  the shadow policy and its divergences; set; clear
func (rv *Review) Register(r *mux.Router) {
	sub := r.PathPrefix("/api/v1").Subrouter()
	h := func(path string, fn http.HandlerFunc, method string) {
		sub.Handle(path, rv.opts.RequireAdmin(withRequestID(fn))).Methods(method)
	}
	h("/plan", rv.plan, http.MethodPost)
	h("/audit/verify", rv.verify, http.MethodGet)
	h("/audit/{seq:[0-9]+}", rv.auditEvent, http.MethodGet)
	h("/teammates/{id}/history", rv.history, http.MethodGet)
	h("/report", rv.report, http.MethodGet)
	h("/settled", rv.settled, http.MethodGet)
	h("/teammates/{id}/explain", rv.explain, http.MethodGet)
	h("/whatif", rv.whatIf, http.MethodPost)
	h("/policy/shadow", rv.shadowReport, http.MethodGet)
	h("/policy/shadow", rv.setShadow, http.MethodPut)
	h("/policy/shadow", rv.clearShadow, http.MethodDelete)
}

// maxSettle bounds how long GET /settled waits.
const maxSettle = time.Minute

// settled waits until the reconciler has processed every change
// acknowledged before the request (SCIM writes, approvals, activated
// policies), or until timeout (default 5s, at most a minute), and answers
// {"settled": bool}. Scripts call it before reading teammates so that they
// read their own writes; roles change asynchronously after a SCIM write.
func (rv *Review) settled(w http.ResponseWriter, r *http.Request) {
	timeout := 5 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxSettle {
			httpjson.Error(w, http.StatusBadRequest, "timeout must be a duration between 1ns and 1m")
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	err := rv.opts.Reconciler.WaitIdle(ctx)
	httpjson.Write(w, http.StatusOK, map[string]any{"settled": err == nil})
}

// plan compiles and tests the candidate files as a reload would, plans
// them against live state with the reconciler, records one policy.planned
// audit event and answers the plan (200) or the refusal (422). Nothing is
// applied. The plan is answered only once its audit event is durable.
func (rv *Review) plan(w http.ResponseWriter, r *http.Request) {
	var req review.PlanRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, rv.opts.MaxPlanBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("plan request exceeds %d bytes", tooBig.Limit))
			return
		}
		httpjson.DecodeError(w, err, `body must be {"files": {"<path>": "<content>", …}, "commit": "<sha>"}`)
		return
	}
	if len(req.Files) == 0 {
		httpjson.Error(w, http.StatusBadRequest, "no policy files in the request")
		return
	}
	files := make(map[string][]byte, len(req.Files))
	for name, content := range req.Files {
		files[name] = []byte(content)
	}
	ctx := r.Context()
	actor, reqID := server.ActorFrom(ctx), requestID(r)
	live := rv.opts.Active()

	set, err := rv.opts.Candidate(ctx, files)
	var refused *policy.RefusedError
	switch {
	case errors.As(err, &refused):
		ref := review.NewRefusal(refused, live, req.Commit)
		ref.RequestID = reqID
		if err := rv.audit(ctx, refusedPlanEvent(ref, actor, reqID)); err != nil {
			httpjson.Error(w, httpjson.StatusOf(err), err.Error())
			return
		}
		httpjson.Write(w, http.StatusUnprocessableEntity, ref)
		return
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, "plan: "+err.Error())
		return
	}
	p, err := rv.opts.Reconciler.Plan(ctx, set)
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), "plan: "+err.Error())
		return
	}
	if live != nil && live.Revision() != p.LiveRevision {
		live = nil // a reload happened meanwhile; the plan's own revision counts
	}
	res := review.NewPlanResult(p, set, live, req.Commit, rv.opts.Now())
	res.RequestID = reqID
	if err := rv.audit(ctx, plannedEvent(res, actor, reqID)); err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (rv *Review) audit(ctx context.Context, e audit.Event) error {
	err := rv.opts.Store.Write(ctx, func(tx *store.WriteTxn) error { tx.Audit(e); return nil })
	if err != nil {
		return fmt.Errorf("record %s audit event: %w", e.Type, err)
	}
	return nil
}

// plannedEvent is the policy.planned record of a plan.
func plannedEvent(res *review.PlanResult, actor audit.Actor, reqID string) audit.Event {
	d := map[string]any{
		"outcome": "planned", "revision": res.Revision, "liveRevision": res.LiveRevision, "digest": res.Digest,
		"files": len(res.Files), "tests": res.Tests, "teammates": res.Teammates, "summary": res.Summary,
		"granted": res.Granted, "changed": res.Changed, "removed": res.Removed, "demotions": res.Demotions,
		"wouldHold": res.WouldHold, "groups": len(res.Groups), "errors": len(res.Errors), "identical": res.Identical,
	}
	if res.Commit != "" {
		d["commit"] = res.Commit
	}
	guard := "the mass-change guard would not hold it"
	if res.WouldHold {
		guard = "the mass-change guard would hold it"
	}
	return audit.Event{
		Type: audit.TypePolicyPlanned, Actor: actor, RequestID: reqID,
		Target:         audit.Target{Type: "Policy", ID: res.Revision},
		Change:         &audit.Change{From: nilIfEmpty(res.LiveRevision), To: res.Revision},
		PolicyRevision: res.LiveRevision,
		Reasons: []string{fmt.Sprintf("planned candidate %s against live %s: %s, %d demotions of %d teammates; %s; nothing applied",
			res.Revision, orNone(res.LiveRevision), res.Summary, res.Demotions, res.Teammates, guard)},
		Details: d,
	}
}

// refusedPlanEvent is the policy.planned record of a candidate the gate
// refused.
func refusedPlanEvent(ref *review.Refusal, actor audit.Actor, reqID string) audit.Event {
	d := map[string]any{"outcome": "refused", "stage": ref.Stage, "liveRevision": ref.LiveRevision, "tests": ref.Tests}
	if ref.Revision != "" {
		d["revision"] = ref.Revision
	}
	if ref.Commit != "" {
		d["commit"] = ref.Commit
	}
	reasons := make([]string, len(ref.Problems))
	for i, p := range ref.Problems {
		reasons[i] = p.String()
	}
	return audit.Event{
		Type: audit.TypePolicyPlanned, Actor: actor, RequestID: reqID,
		Target:         audit.Target{Type: "Policy", ID: ref.Revision},
		PolicyRevision: ref.LiveRevision,
		Reasons:        reasons,
		Details:        d,
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (rv *Review) page(ctx context.Context, after uint64, limit int) ([]audit.Event, error) {
	return rv.opts.Store.AuditEvents(ctx, store.AuditQuery{AfterSeq: after, Limit: limit})
}

// verify walks the whole audit chain and answers a review.VerifyResult
// (200 whether or not the chain is intact; "ok" says which).
func (rv *Review) verify(w http.ResponseWriter, r *http.Request) {
	var expect *review.ChainHead
	if v := r.URL.Query().Get("expect"); v != "" {
		h, err := review.ParseChainHead(v)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		expect = &h
	}
	res, err := review.Verify(r.Context(), rv.page, expect)
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// lookup returns the event with sequence number seq, or nil.
func (rv *Review) lookup(ctx context.Context, seq uint64) (*audit.Event, error) {
	if seq == 0 {
		return nil, nil
	}
	events, err := rv.page(ctx, seq-1, 1)
	if err != nil || len(events) == 0 || events[0].Seq != seq {
		return nil, err
	}
	return &events[0], nil
}

func (rv *Review) auditEvent(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(mux.Vars(r)["seq"], 10, 64)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "sequence number out of range")
		return
	}
	e, err := rv.lookup(r.Context(), seq)
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	if e == nil {
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no audit event %d", seq))
		return
	}
	httpjson.Write(w, http.StatusOK, e)
}

// history answers a teammate (id or userName) with its current state and
// its role and access changes, oldest first, each with its cause.
func (rv *Review) history(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := resolveUser(rv.opts.Store, mux.Vars(r)["id"])
	events, err := scanAudit(ctx, rv.opts.Store, store.AuditQuery{TargetID: id, Types: []string{"teammate"}},
		func(audit.Event) bool { return true }, 0)
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	t, ok := rv.opts.Reconciler.Teammate(id)
	if !ok && len(events) == 0 {
		httpjson.Error(w, http.StatusNotFound, "no teammate "+strconv.Quote(mux.Vars(r)["id"]))
		return
	}
	entries, err := review.History(ctx, id, events, rv.lookup)
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	out := map[string]any{"id": id, "teammate": nil, "history": entries}
	if ok {
		out["teammate"] = teammateJSON(t)
	}
	httpjson.Write(w, http.StatusOK, out)
}

// report answers the access review report.
func (rv *Review) report(w http.ResponseWriter, r *http.Request) {
	teammates, seq := rv.opts.Reconciler.Teammates(reconcile.TeammateFilter{})
	groups := rv.opts.Reconciler.Groups(r.Context())
	var roles []string
	revision := ""
	if set := rv.opts.Active(); set != nil {
		roles, revision = set.Roles(), set.Revision()
	}
	httpjson.Write(w, http.StatusOK, review.BuildReport(teammates, groups, roles, revision, seq, rv.opts.Now()))
}
