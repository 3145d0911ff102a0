package httpstack_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/internal/httpstack"
)

// logSink collects the JSON log lines of the server's goroutines.
type logSink struct {
	ch chan map[string]any
}

func (l *logSink) Write(p []byte) (int, error) {
	var m map[string]any
	if json.Unmarshal(p, &m) == nil {
		l.ch <- m
	}
	return len(p), nil
}

func (l *logSink) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-l.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no log line")
		return nil
	}
}

func newStack(t *testing.T, maxBody int64) (*httptest.Server, *logSink, *prometheus.Registry) {
	t.Helper()
	sink := &logSink{ch: make(chan map[string]any, 100)}
	reg := prometheus.NewRegistry()
	st := httpstack.New(httpstack.Options{Logger: slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg, MaxBodyBytes: maxBody})
	r := mux.NewRouter()
	r.Use(httpstack.RouteLabel)
	r.HandleFunc("/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpstack.SetActor(r.Context(), "token", "okta")
		_, _ = io.WriteString(w, httpstack.InfoFrom(r.Context()).RequestID)
	})
	r.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			be := httpstack.ClassifyBodyError(err)
			http.Error(w, be.Error(), be.HTTPStatus())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewUnstartedServer(st.Wrap(r))
	srv.Config.ReadTimeout = time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, sink, reg
}

func TestRequestIDAndAccessLog(t *testing.T) {
	srv, sink, reg := newStack(t, 1<<10)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/items/7", nil)
	client := strings.Repeat("c", 300)
	req.Header.Set("X-Request-Id", client)
	req.Header.Set("User-Agent", "Okta SCIM Client 1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if len(id) != 16 || string(b) != id {
		t.Fatalf("request id %q (handler saw %q): scimd generates its own", id, b)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	line := sink.next(t)
	want := map[string]any{"msg": "http request", "route": "/items/{id}", "status": float64(200), "token": "okta",
		"userAgent": "Okta SCIM Client 1.0.0", "requestId": id, "clientRequestId": client[:httpstack.MaxClientRequestID]}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if line["remoteAddr"] == nil || line["duration"] == nil {
		t.Errorf("log line lacks remoteAddr or duration: %v", line)
	}
	if n := counterValue(t, reg, "/items/{id}", "GET", "200"); n != 1 {
		t.Errorf("requests counter %v", n)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, route, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "scimd_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["method"] == method && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no scimd_http_requests_total{route=%q,method=%q,code=%q}", route, method, code)
	return 0
}

func TestPanicAnswers500(t *testing.T) {
	srv, sink, _ := newStack(t, 1<<10)
	resp, err := http.Get(srv.URL + "/panic")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("panicking handler answered %d", resp.StatusCode)
	}
	if line := sink.next(t); line["msg"] != "panic serving a request" || line["panic"] != "boom" {
		t.Fatalf("log %v", line)
	}
	if line := sink.next(t); line["status"] != float64(500) {
		t.Fatalf("access log %v", line)
	}
	// The server still serves.
	resp, err = http.Get(srv.URL + "/items/1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a panic: %v %v", resp, err)
	}
	resp.Body.Close()
}

// rawRequest writes head and body on a new connection, optionally
// trickling the body, and returns the status line.
func rawRequest(t *testing.T, addr, head string, body []byte, closeWrite bool, trickle time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, head)
	for _, b := range body {
		if _, err := c.Write([]byte{b}); err != nil {
			break
		}
		time.Sleep(trickle)
	}
	if closeWrite {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := io.ReadAll(io.LimitReader(c, 64))
	return string(bytes.SplitN(line, []byte("\r\n"), 2)[0])
}

func TestBodyFailuresAre4xx(t *testing.T) {
	srv, sink, _ := newStack(t, 1<<10)
	addr := srv.Listener.Addr().String()
	cases := []struct {
		name       string
		length     int
		body       []byte
		closeWrite bool
		trickle    time.Duration
		status     string
	}{
		{"truncated", 100, []byte("only ten b"), true, 0, "HTTP/1.1 400"},
		{"slow", 100, bytes.Repeat([]byte("x"), 30), false, 100 * time.Millisecond, "HTTP/1.1 408"},
		{"too large", 5000, bytes.Repeat([]byte("x"), 5000), false, 0, "HTTP/1.1 413"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(tc.length) + "\r\n\r\n"
			got := rawRequest(t, addr, head, tc.body, tc.closeWrite, tc.trickle)
			if !strings.HasPrefix(got, tc.status) {
				t.Fatalf("status line %q, want %s", got, tc.status)
			}
			line := sink.next(t)
			if line["level"] != "INFO" || line["bodyError"] == nil {
				t.Errorf("log line %v: want INFO with the body error", line)
			}
		})
	}
}
