// Package httpstack is the one HTTP middleware stack every scimd route
// runs behind (SCIM, admin API, review, delivery, health, metrics): panic
// recovery, a request id scimd generates (a client's X-Request-Id is kept
// only as a separate, bounded log field), security headers, the body
// limit and the classification of body read failures (400/408, not 500),
// request metrics and one structured access log line per request.
//
// It also holds the connection-limiting listener the server accepts on.
package httpstack
