package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// Audit event types the console writes.
const (
	TypeSignedIn  = "console.signed_in"
	TypeSignedOut = "console.signed_out"
)

// loginNonceTTL is how long a sign-in form stays valid.
const loginNonceTTL = 15 * time.Minute

// maxFormBytes bounds a form body.
const maxFormBytes = 8 << 10

// view is what every page template receives.
type view struct {
	Title   string
	Nav     string
	Session *sessionView
	Message string
	Error   string
	Data    any
}

// sessionView is the signed-in session as templates see it.
type sessionView struct {
	Name       string
	Scopes     []string
	CanApprove bool
	CSRF       string
	Expires    string
}

// httpError is an error with the status to answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorStatus(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// pageFunc builds a page: the template name and the view.
type pageFunc func(r *http.Request, s *session) (string, *view, error)

// page wraps a GET page: it requires a session that may read.
func (c *Console) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.sessionOf(r)
		if !ok {
			http.Redirect(w, r, Prefix+"login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		name, v, err := fn(r, s)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		c.render(w, r, http.StatusOK, name, s, v)
	}
}

// form wraps a POST: it requires a session, a same-origin request and the
// session's CSRF token in the form.
func (c *Console) form(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		s, ok := c.sessionOf(r)
		if !ok {
			c.render(w, r, http.StatusUnauthorized, "error", nil, &view{Title: "Signed out",
				Message: "Your session has ended. Sign in again."})
			return
		}
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, s, errorStatus(http.StatusBadRequest, "unreadable form: %v", err))
			return
		}
		if !sameOrigin(r) || !equalSecret(r.PostForm.Get("csrf"), s.csrf) {
			c.log.Warn("console: form refused: missing or wrong CSRF token", "path", r.URL.Path, "actor", s.grant.Name)
			c.fail(w, r, s, errorStatus(http.StatusForbidden, "This form was not sent from this console (missing or wrong CSRF token). Nothing was changed."))
			return
		}
		fn(w, r, s)
	}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	} else {
		c.log.Error("console page failed", "path", r.URL.Path, "err", err)
	}
	title := http.StatusText(status)
	c.render(w, r, status, "error", s, &view{Title: title, Error: err.Error()})
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, v *view) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	if v == nil {
		v = &view{}
	}
	if s != nil {
		v.Session = &sessionView{Name: s.grant.Name, Scopes: s.grant.Scopes, CanApprove: s.grant.Approve, CSRF: s.csrf,
			Expires: s.expires.UTC().Format("2006-01-02 15:04 UTC")}
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: render", "template", name, "err", err)
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type loginData struct {
	Nonce string
	Next  string
}

// loginPage shows the sign-in form, with a one-time value that the form
// must send back (login CSRF).
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sessionOf(r); ok {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	nonce := randomString(24)
	c.setCookie(w, r, loginCookie, nonce, Prefix+"login", c.opts.Now().Add(loginNonceTTL))
	c.render(w, r, status, "login", nil, &view{Title: "Sign in", Error: msg,
		Data: loginData{Nonce: nonce, Next: safeNext(r.FormValue("next"))}})
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// login exchanges a token for a session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !equalSecret(r.PostForm.Get("csrf"), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, "This sign-in form has expired or was not sent from this console. Try again.")
		return
	}
	tok, digest, ok := c.tokenFor(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		c.log.Warn("console: sign-in with an unknown token", "remote", r.RemoteAddr)
		c.showLogin(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	g, ok := grantOf(tok, c.opts.Now())
	if !ok {
		c.log.Warn("console: sign-in refused", "token", g.Name, "scopes", g.Scopes)
		why := fmt.Sprintf("The token %q lacks the read scope the console needs (it has: %s).", g.Name, strings.Join(g.Scopes, ", "))
		if !tok.Expires.IsZero() && !c.opts.Now().Before(tok.Expires) {
			why = fmt.Sprintf("The token %q expired at %s.", g.Name, tok.Expires.UTC().Format(time.RFC3339))
		}
		c.showLogin(w, r, http.StatusForbidden, why)
		return
	}
	s := c.sessions.create(digest, g)
	err = c.audit(r.Context(), audit.Event{Type: TypeSignedIn, Actor: audit.Actor{Kind: g.Kind, Name: g.Name},
		Target:  audit.Target{Type: "Session", ID: s.ref},
		Reasons: []string{"signed in to the web console"},
		Details: map[string]any{"scopes": g.Scopes, "expires": s.expires.UTC(), "remote": r.RemoteAddr}})
	if err != nil {
		c.sessions.end(s.id)
		c.showLogin(w, r, http.StatusServiceUnavailable, "The sign-in could not be recorded: "+err.Error())
		return
	}
	c.setCookie(w, r, loginCookie, "", Prefix+"login", s.expires)
	c.setCookie(w, r, sessionCookie, s.id, Prefix, s.expires)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s.id)
	c.setCookie(w, r, sessionCookie, "", Prefix, s.expires)
	if err := c.audit(r.Context(), audit.Event{Type: TypeSignedOut, Actor: audit.Actor{Kind: s.grant.Kind, Name: s.grant.Name},
		Target: audit.Target{Type: "Session", ID: s.ref}, Reasons: []string{"signed out of the web console"}}); err != nil {
		c.log.Error("console: record sign-out", "err", err)
	}
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func (c *Console) audit(ctx context.Context, e audit.Event) error {
	if err := c.opts.Store.Write(ctx, func(tx *store.WriteTxn) error { tx.Audit(e); return nil }); err != nil {
		return fmt.Errorf("record %s audit event: %w", e.Type, err)
	}
	return nil
}
