package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/scim/store"
)

// Bulk message schemas (RFC 7644 §3.7).
const (
	BulkRequestURN  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	BulkResponseURN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
)

// defaultBulkMaxOperations is bulk.maxOperations unless Options say.
const defaultBulkMaxOperations = 1000

// bulkOp is one operation of a bulk request.
type bulkOp struct {
	index   int
	method  string
	bulkID  string
	version string
	path    string
	data    any
	hasData bool
}

// bulkResult is one operation's entry in the BulkResponse.
type bulkResult struct {
	Method   string         `json:"method"`
	BulkID   string         `json:"bulkId,omitempty"`
	Version  string         `json:"version,omitempty"`
	Location string         `json:"location,omitempty"`
	Status   string         `json:"status"`
	Response map[string]any `json:"response,omitempty"`
	failed   bool
	id       string // the id of the resource a successful POST created
}

// registerBulk mounts POST /Bulk. Every operation is dispatched, with the
// request's actor and request id, to the same handler a single request
// reaches (ops), so it is decoded, normalised, audited and reconciled the
// same way. The operations' writes are applied one after the other and
// made durable together: the response is sent once all are on disk.
func (s *Server) registerBulk(scim *mux.Router) {
	ops := mux.NewRouter().SkipClean(true) // a "/Users/../x" path is refused, not redirected
	for _, kind := range []store.Kind{store.KindUser, store.KindGroup} {
		base := BasePath + resourceTypeOf(kind).Endpoint
		ops.HandleFunc(base, s.create(kind)).Methods(http.MethodPost)
		ops.HandleFunc(base+"/{id}", s.replace(kind)).Methods(http.MethodPut)
		ops.HandleFunc(base+"/{id}", s.patch(kind)).Methods(http.MethodPatch)
		ops.HandleFunc(base+"/{id}", s.delete(kind)).Methods(http.MethodDelete)
	}
	ops.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, badRequest("invalidPath", "a bulk operation's path must be /Users, /Groups, /Users/{id} or /Groups/{id}, not %s", strings.TrimPrefix(r.URL.Path, BasePath)))
	})
	ops.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, badRequest("invalidValue", "%s is not allowed on %s in a bulk request", r.Method, strings.TrimPrefix(r.URL.Path, BasePath)))
	})
	scim.Handle("/Bulk", s.bulk(ops)).Methods(http.MethodPost)
	scim.HandleFunc("/Bulk", methodNotAllowed(http.MethodPost))
}

func (s *Server) bulk(ops http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, body, e := readObject(r)
		if e != nil {
			writeError(w, e)
			return
		}
		list, failOnErrors, e := s.parseBulk(body)
		if e != nil {
			writeError(w, e)
			return
		}
		ctx, durable := store.DeferDurable(r.Context())
		results := s.runBulk(r.WithContext(ctx), ops, list, failOnErrors)
		if err := durable.Wait(); err != nil {
			writeError(w, asError(err))
			return
		}
		out := make([]any, 0, len(results))
		for _, res := range results {
			if res != nil {
				out = append(out, res)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"schemas": []string{BulkResponseURN}, "Operations": out})
	}
}

// parseBulk checks a BulkRequest body and returns its operations.
func (s *Server) parseBulk(body map[string]any) ([]*bulkOp, int, *Error) {
	var rawOps []any
	failOnErrors := 0
	for key, v := range body {
		switch strings.ToLower(key) {
		case "schemas":
			list, _ := v.([]any)
			found := false
			for _, u := range list {
				if s, _ := u.(string); strings.EqualFold(s, BulkRequestURN) {
					found = true
				}
			}
			if !found {
				return nil, 0, badRequest("invalidSyntax", "schemas must contain %s", BulkRequestURN)
			}
		case "failonerrors":
			if v == nil {
				continue
			}
			n, ok := v.(json.Number)
			i, err := n.Int64()
			if !ok || err != nil || i < 0 {
				return nil, 0, badRequest("invalidValue", "failOnErrors must be a non-negative integer")
			}
			failOnErrors = int(min(i, int64(1<<30)))
		case "operations":
			list, ok := v.([]any)
			if !ok {
				return nil, 0, badRequest("invalidSyntax", "Operations must be an array")
			}
			rawOps = list
		}
	}
	if rawOps == nil {
		return nil, 0, badRequest("invalidSyntax", "a bulk request needs Operations")
	}
	if len(rawOps) > s.bulkMaxOps {
		return nil, 0, errorf(http.StatusRequestEntityTooLarge, "", "the bulk request has %d operations; at most %d are allowed (bulk.maxOperations)", len(rawOps), s.bulkMaxOps)
	}
	out := make([]*bulkOp, len(rawOps))
	bulkIDs := map[string]bool{}
	for i, raw := range rawOps {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, 0, badRequest("invalidSyntax", "Operations[%d] must be an object", i)
		}
		op := &bulkOp{index: i}
		for k, v := range m {
			str, _ := v.(string)
			switch strings.ToLower(k) {
			case "method":
				op.method = strings.ToUpper(str)
			case "bulkid":
				op.bulkID = str
			case "version":
				op.version = str
			case "path":
				op.path = str
			case "data":
				op.data, op.hasData = v, v != nil
			}
		}
		switch op.method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			return nil, 0, badRequest("invalidValue", "Operations[%d].method must be POST, PUT, PATCH or DELETE", i)
		}
		if op.path == "" || !strings.HasPrefix(op.path, "/") {
			return nil, 0, badRequest("invalidPath", "Operations[%d].path must be a path such as /Users", i)
		}
		if op.method == http.MethodPost && op.bulkID == "" {
			return nil, 0, badRequest("invalidValue", "Operations[%d] is a POST without a bulkId", i)
		}
		if op.method != http.MethodDelete && !op.hasData {
			return nil, 0, badRequest("invalidSyntax", "Operations[%d] has no data", i)
		}
		if op.bulkID != "" {
			if bulkIDs[op.bulkID] {
				return nil, 0, badRequest("invalidValue", "bulkId %q is used twice", op.bulkID)
			}
			bulkIDs[op.bulkID] = true
		}
		out[i] = op
	}
	return out, failOnErrors, nil
}

// runBulk performs the operations. An operation that refers to another's
// bulkId ("bulkId:x" as a value or in its path) runs after it; one that
// refers to a failed operation fails with 409; references that can never
// be resolved (a cycle, RFC 7644 §3.7.1) fail with 409; a reference to a
// bulkId no operation has is 400 invalidValue. After failOnErrors errors
// (when not 0) the remaining operations are not performed and not listed.
func (s *Server) runBulk(r *http.Request, ops http.Handler, list []*bulkOp, failOnErrors int) []*bulkResult {
	results := make([]*bulkResult, len(list))
	byBulkID := map[string]*bulkOp{}
	for _, op := range list {
		if op.bulkID != "" {
			byBulkID[op.bulkID] = op
		}
	}
	errs := 0
	fail := func(op *bulkOp, e *Error) {
		results[op.index] = &bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(e.Status),
			Response: e.body(), failed: true}
		errs++
	}
	pending := list
	for len(pending) > 0 {
		var next []*bulkOp
		for _, op := range pending {
			if failOnErrors > 0 && errs >= failOnErrors {
				return results
			}
			refs := bulkRefs(op)
			wait := false
			var refErr *Error
			for _, ref := range refs {
				target, ok := byBulkID[ref]
				switch {
				case !ok:
					refErr = badRequest("invalidValue", "bulkId %q names no operation of this request", ref)
				case target == op:
					refErr = errorf(http.StatusConflict, "", "operation %q refers to its own bulkId", ref)
				case results[target.index] == nil:
					wait = true
				case results[target.index].failed:
					refErr = errorf(http.StatusConflict, "", "operation bulkId %q, which this one refers to, failed", ref)
				}
				if refErr != nil {
					break
				}
			}
			switch {
			case refErr != nil:
				fail(op, refErr)
			case wait:
				next = append(next, op)
			default:
				res := s.runBulkOp(r, ops, op, results, byBulkID)
				results[op.index] = res
				if res.failed {
					errs++
				}
			}
		}
		if len(next) == len(pending) {
			for _, op := range next {
				if failOnErrors > 0 && errs >= failOnErrors {
					return results
				}
				fail(op, errorf(http.StatusConflict, "", "circular bulkId references: the operations refer to each other and none can run first"))
			}
			break
		}
		pending = next
	}
	return results
}

// runBulkOp performs one operation through the single-request handler.
func (s *Server) runBulkOp(r *http.Request, ops http.Handler, op *bulkOp, results []*bulkResult, byBulkID map[string]*bulkOp) *bulkResult {
	resolve := func(ref string) string { return results[byBulkID[ref].index].id }
	path := replaceBulkRefs(op.path, resolve)
	var body []byte
	if op.hasData {
		data := resolveBulkRefs(op.data, resolve)
		var err error
		if body, err = json.Marshal(data); err != nil {
			e := badRequest("invalidSyntax", "Operations[%d].data cannot be encoded: %v", op.index, err)
			return &bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(e.Status), Response: e.body(), failed: true}
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), op.method, BasePath+path, bytes.NewReader(body))
	if err != nil {
		e := badRequest("invalidPath", "Operations[%d].path %q is not a valid path", op.index, op.path)
		return &bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(e.Status), Response: e.body(), failed: true}
	}
	req.Host, req.TLS, req.RemoteAddr = r.Host, r.TLS, r.RemoteAddr
	req.Header.Set("Content-Type", ContentType)
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		req.Header.Set("X-Forwarded-Proto", p)
	}
	if op.version != "" {
		req.Header.Set("If-Match", op.version)
	}
	rec := newResponseCapture()
	ops.ServeHTTP(rec, req)
	res := &bulkResult{Method: op.method, BulkID: op.bulkID, Status: strconv.Itoa(rec.status), Version: rec.header.Get("ETag")}
	if rec.status >= 400 {
		res.failed = true
		_ = json.Unmarshal(rec.body.Bytes(), &res.Response)
		return res
	}
	switch op.method {
	case http.MethodPost:
		res.Location = rec.header.Get("Location")
		var created struct{ ID string }
		_ = json.Unmarshal(rec.body.Bytes(), &created)
		res.id = created.ID
	case http.MethodPut, http.MethodPatch:
		res.Location = s.baseURL(r) + path
	}
	return res
}

// bulkRefs lists the bulkIds an operation refers to.
func bulkRefs(op *bulkOp) []string {
	var refs []string
	collect := func(ref string) string { refs = append(refs, ref); return "" }
	replaceBulkRefs(op.path, collect)
	if op.hasData {
		resolveBulkRefs(op.data, collect)
	}
	return refs
}

// resolveBulkRefs returns a copy of v with every string "bulkId:x" replaced
// by resolve("x").
func resolveBulkRefs(v any, resolve func(string) string) any {
	switch v := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(v, "bulkId:"); ok && ref != "" {
			return resolve(ref)
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = resolveBulkRefs(e, resolve)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = resolveBulkRefs(e, resolve)
		}
		return out
	}
	return v
}

// replaceBulkRefs replaces "bulkId:x" path segments.
func replaceBulkRefs(path string, resolve func(string) string) string {
	if !strings.Contains(path, "bulkId:") {
		return path
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if ref, ok := strings.CutPrefix(seg, "bulkId:"); ok && ref != "" {
			segs[i] = resolve(ref)
		}
	}
	return strings.Join(segs, "/")
}

// responseCapture is the http.ResponseWriter a bulk operation's handler
// writes to.
type responseCapture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newResponseCapture() *responseCapture {
	return &responseCapture{header: http.Header{}, status: http.StatusOK}
}

func (c *responseCapture) Header() http.Header         { return c.header }
func (c *responseCapture) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *responseCapture) WriteHeader(status int)      { c.status = status }
