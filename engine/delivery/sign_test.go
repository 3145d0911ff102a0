package delivery

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestSignStandardWebhooksVector reproduces the Standard Webhooks reference
// test vector: a receiver's existing library accepts what scimd sends.
func TestSignStandardWebhooksVector(t *testing.T) {
	key, err := SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func signedHeaders(t *testing.T, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	key, err := SigningKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(key, id, ts.Unix(), body))
	return h
}

func TestVerify(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"seq":7,"type":"teammate.created"}`)
	good := signedHeaders(t, secret, "7", now, body)
	if err := Verify(secret, good, body, now.Add(time.Minute), DefaultTolerance); err != nil {
		t.Fatalf("valid webhook refused: %v", err)
	}

	rotated := good.Clone()
	rotated.Set(HeaderSignature, "v1,bm9wZQ== "+good.Get(HeaderSignature))
	if err := Verify(secret, rotated, body, now, DefaultTolerance); err != nil {
		t.Fatalf("one matching signature among several refused: %v", err)
	}

	for _, c := range []struct {
		name    string
		secret  string
		headers func() http.Header
		body    string
		now     time.Time
		want    error
	}{
		{"tampered body", secret, good.Clone, `{"seq":7,"type":"teammate.deleted"}`, now, ErrNoMatch},
		{"other secret", "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", good.Clone, string(body), now, ErrNoMatch},
		{"other id", secret, func() http.Header { h := good.Clone(); h.Set(HeaderID, "8"); return h }, string(body), now, ErrNoMatch},
		{"replayed later", secret, good.Clone, string(body), now.Add(6 * time.Minute), ErrTimestamp},
		{"from the future", secret, good.Clone, string(body), now.Add(-6 * time.Minute), ErrTimestamp},
		{"bad timestamp", secret, func() http.Header { h := good.Clone(); h.Set(HeaderTimestamp, "yesterday"); return h }, string(body), now, ErrTimestamp},
		{"no signature", secret, func() http.Header { h := good.Clone(); h.Del(HeaderSignature); return h }, string(body), now, ErrMissingHeaders},
		{"v2 scheme only", secret, func() http.Header {
			h := good.Clone()
			h.Set(HeaderSignature, "v2,"+good.Get(HeaderSignature)[3:])
			return h
		}, string(body), now, ErrNoMatch},
	} {
		err := Verify(c.secret, c.headers(), []byte(c.body), c.now, DefaultTolerance)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSigningKey(t *testing.T) {
	raw, err := SigningKey("a plain shared secret of some length")
	if err != nil || string(raw) != "a plain shared secret of some length" {
		t.Fatalf("plain secret: %q %v", raw, err)
	}
	for _, bad := range []string{"short", "whsec_c2hvcnQ=", "whsec_!!!", string(make([]byte, 2000))} {
		if _, err := SigningKey(bad); err == nil {
			t.Errorf("SigningKey(%.20q) accepted", bad)
		}
	}
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if k, err := SigningKey(s); err != nil || len(k) != 32 {
		t.Fatalf("NewSecret %q: key %d bytes, %v", s, len(k), err)
	}
}
