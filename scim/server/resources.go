package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/patch"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// readObject reads a JSON object request body.
func readObject(r *http.Request) ([]byte, map[string]any, *Error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, asError(err)
	}
	if e := checkJSONText(raw); e != nil {
		return nil, nil, e
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, nil, badRequest("invalidSyntax", "request body is not a valid JSON object: %v", err)
	}
	if dec.More() {
		return nil, nil, badRequest("invalidSyntax", "request body has data after the JSON object")
	}
	if body == nil {
		return nil, nil, badRequest("invalidSyntax", "request body must be a JSON object")
	}
	return raw, body, nil
}

// readResource reads and decodes the body of a POST or PUT.
func readResource(r *http.Request, rt *schema.ResourceType) (*decoded, *Error) {
	_, body, e := readObject(r)
	if e != nil {
		return nil, e
	}
	return decodeResource(rt, body, compat.From(r.Context()))
}

func eventType(k store.Kind, action string) string {
	if k == store.KindGroup {
		return "scim.group." + action
	}
	return "scim.user." + action
}

func summary(r *store.Resource) map[string]any {
	if r == nil {
		return nil
	}
	m := map[string]any{"name": r.Name}
	if r.ExternalID != "" {
		m["externalId"] = r.ExternalID
	}
	if a, ok := r.Attrs["active"]; ok && r.Kind == store.KindUser {
		m["active"] = a
	}
	return m
}

func (s *Server) event(r *http.Request, typ string, res *store.Resource, before, after *store.Resource, mc memberChange) audit.Event {
	e := audit.Event{
		Type:      typ,
		Actor:     ActorFrom(r.Context()),
		Target:    audit.Target{Type: string(res.Kind), ID: res.ID, Name: res.Name},
		RequestID: RequestIDFrom(r.Context()),
	}
	if before != nil || after != nil {
		e.Change = &audit.Change{}
		if before != nil {
			e.Change.From = summary(before)
		}
		if after != nil {
			e.Change.To = summary(after)
		}
	}
	if tol := compat.From(r.Context()); len(tol.Used()) > 0 {
		rules := make([]any, 0, len(tol.Used()))
		for _, u := range tol.Used() {
			rules = append(rules, string(u))
		}
		e.Details = map[string]any{"compatibility": map[string]any{"profile": tol.Profile(), "rules": rules}}
	}
	if len(mc.added)+len(mc.removed)+len(mc.skipped) > 0 {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		if len(mc.added) > 0 {
			e.Details["membersAdded"] = mc.added
		}
		if len(mc.removed) > 0 {
			e.Details["membersRemoved"] = mc.removed
		}
		if len(mc.skipped) > 0 {
			e.Details["membersSkipped"] = mc.skipped
		}
	}
	return e
}

// checkIfMatch implements If-Match (RFC 7644 §3.14): a mismatch is 412.
func checkIfMatch(r *http.Request, res *store.Resource) *Error {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	want := strings.TrimPrefix(etag(res), "W/")
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return nil
		}
	}
	return errorf(http.StatusPreconditionFailed, "", "resource %s has version %s, not %s", res.ID, etag(res), h)
}

func storeError(err error, kind store.Kind) *Error {
	if errors.Is(err, store.ErrConflict) {
		attr := "userName"
		if kind == store.KindGroup {
			attr = "displayName"
		}
		return errorf(http.StatusConflict, "uniqueness", "%s is already in use by another %s", attr, strings.ToLower(string(kind)))
	}
	return asError(err)
}

// respondResource writes one resource with its ETag and Location.
func (s *Server) respondResource(w http.ResponseWriter, r *http.Request, status int, kind store.Kind, res *store.Resource) {
	snap := s.store.Read()
	if cur, ok := snap.Resource(kind, res.ID); ok && cur.Version >= res.Version {
		res = cur
	}
	p := parseProjection(r.URL.Query().Get("attributes"), r.URL.Query().Get("excludedAttributes"))
	rd := renderer{snap: snap, baseURL: s.baseURL(r), shared: p.none(), teammate: s.teammate}
	doc := rd.render(res, !p.excludes("members"))
	doc = p.apply(resourceTypeOf(kind), doc)
	w.Header().Set("ETag", etag(res))
	if status == http.StatusCreated {
		w.Header().Set("Location", rd.baseURL+resourceTypeOf(kind).Endpoint+"/"+res.ID)
	}
	writeJSON(w, status, doc)
}

func (s *Server) get(kind store.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		res, ok := s.store.Read().Resource(kind, id)
		if !ok {
			writeError(w, notFound(string(kind), id))
			return
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && strings.TrimPrefix(inm, "W/") == strings.TrimPrefix(etag(res), "W/") {
			w.Header().Set("ETag", etag(res))
			w.WriteHeader(http.StatusNotModified)
			return
		}
		s.respondResource(w, r, http.StatusOK, kind, res)
	}
}

func (s *Server) create(kind store.Kind) http.HandlerFunc {
	rt := resourceTypeOf(kind)
	return func(w http.ResponseWriter, r *http.Request) {
		r = withTracker(r)
		d, e := readResource(r, rt)
		if e != nil {
			writeError(w, e)
			return
		}
		var created *store.Resource
		err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
			res := &store.Resource{ID: newID(), Kind: kind, ExternalID: d.ExternalID, Name: d.Name, Attrs: d.Attrs,
				Created: tx.Now(), Modified: tx.Now(), Version: 1}
			if err := tx.PutResource(res); err != nil {
				return err
			}
			mc, err := s.applyBodyMembers(tx, res.ID, d)
			if err != nil {
				return err
			}
			tx.Audit(s.event(r, eventType(kind, "created"), res, nil, res, mc))
			created = res
			return nil
		})
		if err != nil {
			writeError(w, storeError(err, kind))
			return
		}
		s.respondResource(w, r, http.StatusCreated, kind, created)
	}
}

func (s *Server) replace(kind store.Kind) http.HandlerFunc {
	rt := resourceTypeOf(kind)
	return func(w http.ResponseWriter, r *http.Request) {
		r = withTracker(r)
		id := mux.Vars(r)["id"]
		d, e := readResource(r, rt)
		if e != nil {
			writeError(w, e)
			return
		}
		var result *store.Resource
		err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
			cur, ok := tx.Resource(kind, id)
			if !ok {
				return notFound(string(kind), id)
			}
			if e := checkIfMatch(r, cur); e != nil {
				return e
			}
			next := &store.Resource{ID: id, Kind: kind, ExternalID: d.ExternalID, Name: d.Name, Attrs: d.Attrs,
				Created: cur.Created, Modified: tx.Now(), Version: cur.Version + 1}
			mc, err := s.applyBodyMembers(tx, id, d)
			if err != nil {
				return err
			}
			if sameContent(cur, next) && mc.empty() {
				result = cur
				return nil
			}
			// A membership change is a change of the group: it gets a new
			// version and lastModified, so If-Match protects the members too.
			if err := tx.PutResource(next); err != nil {
				return err
			}
			tx.Audit(s.event(r, eventType(kind, "replaced"), next, cur, next, mc))
			result = next
			return nil
		})
		if err != nil {
			writeError(w, storeError(err, kind))
			return
		}
		s.respondResource(w, r, http.StatusOK, kind, result)
	}
}

// applyBodyMembers makes a group's members those of a POST or PUT body,
// when the body has a "members" attribute.
func (s *Server) applyBodyMembers(tx *store.WriteTxn, groupID string, d *decoded) (memberChange, error) {
	if !d.MembersGiven {
		return memberChange{}, nil
	}
	return s.applyMembers(tx, groupID, membersDelta{replace: true, add: d.Members})
}

func sameContent(a, b *store.Resource) bool {
	return a.Name == b.Name && a.ExternalID == b.ExternalID && reflect.DeepEqual(a.Attrs, b.Attrs)
}

func (s *Server) patch(kind store.Kind) http.HandlerFunc {
	rt := resourceTypeOf(kind)
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, asError(err))
			return
		}
		if e := checkJSONText(raw); e != nil {
			writeError(w, e)
			return
		}
		r = withTracker(r)
		tol := compat.From(r.Context())
		ops, err := patch.ParseRequestWith(raw, tol)
		if err != nil {
			writeError(w, patchError(err))
			return
		}
		var result *store.Resource
		err = s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
			cur, ok := tx.Resource(kind, id)
			if !ok {
				return notFound(string(kind), id)
			}
			if e := checkIfMatch(r, cur); e != nil {
				return e
			}
			result = cur
			applied, err := s.patcher.ApplyWith(rt, resourceDoc(rt, cur), ops, tol)
			if err != nil {
				return patchError(err)
			}
			next := cur
			if applied.Changed {
				d, e := decodeResource(rt, applied.Doc, tol)
				if e != nil {
					return e
				}
				next = &store.Resource{ID: id, Kind: kind, ExternalID: d.ExternalID, Name: d.Name, Attrs: d.Attrs,
					Created: cur.Created, Modified: tx.Now(), Version: cur.Version + 1}
				if sameContent(cur, next) {
					next = cur
				}
			}
			var mc memberChange
			if kind == store.KindGroup {
				if mc, err = s.applyMembers(tx, id, deltaFromPatch(applied.Members)); err != nil {
					return err
				}
			}
			if next == cur {
				if mc.empty() {
					return nil // a no-op: leave lastModified and the audit log alone
				}
				next = touched(cur, tx.Now()) // members changed: a new version of the group
			}
			if err := tx.PutResource(next); err != nil {
				return err
			}
			tx.Audit(s.event(r, eventType(kind, "patched"), next, cur, next, mc))
			result = next
			return nil
		})
		if err != nil {
			writeError(w, storeError(err, kind))
			return
		}
		q := r.URL.Query()
		if q.Get("attributes") == "" && q.Get("excludedAttributes") == "" {
			w.Header().Set("ETag", etag(result))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.respondResource(w, r, http.StatusOK, kind, result)
	}
}

// touched returns a copy of r as a new version modified at now.
func touched(r *store.Resource, now time.Time) *store.Resource {
	c := r.Clone()
	c.Modified = now
	c.Version = r.Version + 1
	return c
}

// touchGroups gives a new version to every group, other than deleted, that
// lost a member with the removed memberships.
func touchGroups(tx *store.WriteTxn, deleted string, removed []*store.Membership) error {
	done := map[string]bool{deleted: true}
	for _, m := range removed {
		if done[m.GroupID] {
			continue
		}
		done[m.GroupID] = true
		g, ok := tx.Resource(store.KindGroup, m.GroupID)
		if !ok {
			continue
		}
		if err := tx.PutResource(touched(g, tx.Now())); err != nil {
			return err
		}
	}
	return nil
}

func patchError(err error) *Error {
	var pe *patch.Error
	if errors.As(err, &pe) {
		return badRequest(pe.ScimType, "%s", pe.Detail)
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return badRequest("invalidValue", "%v", err)
}

func (s *Server) delete(kind store.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
			cur, ok := tx.Resource(kind, id)
			if !ok {
				return notFound(string(kind), id)
			}
			if e := checkIfMatch(r, cur); e != nil {
				return e
			}
			removed, err := tx.DeleteResource(kind, id)
			if err != nil {
				return err
			}
			var mc memberChange
			for _, m := range removed {
				if m.GroupID == id {
					mc.removed = append(mc.removed, m.MemberID)
				}
			}
			if err := touchGroups(tx, id, removed); err != nil {
				return err
			}
			if err := touchUsers(tx, mc.removed); err != nil {
				return err
			}
			e := s.event(r, eventType(kind, "deleted"), cur, cur, nil, mc)
			if kind == store.KindUser && len(removed) > 0 {
				groups := make([]string, 0, len(removed))
				for _, m := range removed {
					groups = append(groups, m.GroupID)
				}
				if e.Details == nil {
					e.Details = map[string]any{}
				}
				e.Details["removedFromGroups"] = groups
			}
			tx.Audit(e)
			return nil
		})
		if err != nil {
			writeError(w, storeError(err, kind))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// withTracker gives the request a fresh compat.Tracker for its token's
// profile: the tolerance rules it may use, and a record of those it used.
func withTracker(r *http.Request) *http.Request {
	ctx, _ := compat.Start(r.Context())
	return r.WithContext(ctx)
}
