package delivery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	// HeaderID carries the feed sequence number of the entry: the same on
	// every attempt, so receivers use it as the idempotency key.
	HeaderID = "webhook-id"
	// HeaderTimestamp is the attempt's time in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature is "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
	// possibly several space-separated.
	HeaderSignature = "webhook-signature"
	// HeaderEpoch carries the feed's epoch (empty until a backup is
	// restored): a receiver that sees it change must re-sync, since
	// sequence numbers after the restored head are issued again.
	HeaderEpoch = "scimd-feed-epoch"
)

// SecretPrefix marks a Standard Webhooks secret: the rest is the base64
// of the signing key.
const SecretPrefix = "whsec_"

// MinKeyBytes is the shortest signing key accepted.
const MinKeyBytes = 16

// maxSecretLen bounds a secret's length.
const maxSecretLen = 1024

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock before Verify rejects it (replay protection).
const DefaultTolerance = 5 * time.Minute

// Verification errors.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrTimestamp      = errors.New("webhook-timestamp is not a Unix time within the tolerance")
	ErrNoMatch        = errors.New("no webhook-signature matches")
)

// SigningKey returns the HMAC key of a secret. A secret "whsec_<base64>"
// (the Standard Webhooks form, which their libraries expect) signs with the
// decoded bytes; any other secret signs with its own bytes.
func SigningKey(secret string) ([]byte, error) {
	if len(secret) > maxSecretLen {
		return nil, fmt.Errorf("secret is longer than %d characters", maxSecretLen)
	}
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("secret starts with %q but the rest is not standard base64: %w", SecretPrefix, err)
		}
		key = b
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("secret is too short: the signing key has %d bytes, at least %d are needed", len(key), MinKeyBytes)
	}
	return key, nil
}

// NewSecret returns a random Standard Webhooks secret with a 32-byte key.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Sign returns the webhook-signature value for one attempt: "v1," and the
// base64 HMAC-SHA256, under key, of "id.timestamp.body".
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	return sign(key, id, strconv.FormatInt(timestamp, 10), body)
}

// sign signs with the timestamp as it appears in the header.
func sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a received webhook: its timestamp is within tolerance of
// now and one of its v1 signatures is the HMAC of id.timestamp.body under
// the secret. body must be the raw request body, byte for byte.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := SigningKey(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrTimestamp, d.Round(time.Second))
	}
	want := sign(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrNoMatch
}
