package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/egress"
	"github.com/scimd/scimd/scim/store"
)

// TableWebhooks is the record table holding webhook endpoints.
const TableWebhooks = "webhooks"

// maxURLLen bounds a webhook URL's length.
const maxURLLen = 2048

// Errors of the webhook registry.
var (
	// ErrNotFound reports an unknown endpoint id.
	ErrNotFound = errors.New("no such webhook")
	// ErrInvalid reports a registration that cannot be accepted; the
	// wrapping error says why.
	ErrInvalid = errors.New("invalid webhook registration")
)

// Endpoint is a registered webhook endpoint as stored. Records held by the
// store are immutable: copy before changing.
type Endpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secret signs deliveries. It is stored as given (it must be usable to
	// sign) and never returned by the API.
	Secret string `json:"secret"`
	// Events are the feed types or dot-prefixes wanted; empty means all.
	Events    []string  `json:"events,omitempty"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"createdBy,omitempty"`
	// Cursor is the last feed sequence delivered (or passed over as not
	// wanted). Delivery continues after it.
	Cursor uint64 `json:"cursor"`
	// Delivered counts successful deliveries.
	Delivered       uint64    `json:"delivered"`
	LastDeliveredAt time.Time `json:"lastDeliveredAt,omitzero"`
	// Failures counts consecutive failed attempts; a success resets it.
	Failures    int       `json:"failures"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// Paused is set after too many consecutive failures; delivery stops
	// until the endpoint is resumed.
	Paused   bool      `json:"paused"`
	PausedAt time.Time `json:"pausedAt,omitzero"`
}

// Records returns the decoder of delivery's record table, for
// store.Options.Records.
func Records() map[string]store.RecordDecoder {
	return map[string]store.RecordDecoder{
		TableFeedMeta: func(b []byte) (any, error) {
			var e FeedEpoch
			if err := json.Unmarshal(b, &e); err != nil {
				return nil, fmt.Errorf("decode feed epoch: %w", err)
			}
			return &e, nil
		},
		TableWebhooks: func(b []byte) (any, error) {
			var e Endpoint
			if err := json.Unmarshal(b, &e); err != nil {
				return nil, fmt.Errorf("decode webhook endpoint: %w", err)
			}
			return &e, nil
		},
	}
}

// endpointIn returns the endpoint with the given id in a snapshot or
// transaction.
func endpointIn(r interface {
	Record(table, key string) (any, bool)
}, id string) (*Endpoint, bool) {
	v, ok := r.Record(TableWebhooks, id)
	if !ok {
		return nil, false
	}
	return v.(*Endpoint), true
}

// endpoints returns every endpoint in a snapshot, in id order.
func endpoints(snap *store.Snapshot) []*Endpoint {
	var out []*Endpoint
	snap.Records(TableWebhooks, func(_ string, v any) bool {
		out = append(out, v.(*Endpoint))
		return true
	})
	return out
}

// Registration is what an admin posts to register an endpoint.
type Registration struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Events []string `json:"events"`
	// After, when set, is the feed sequence to deliver after (0 replays
	// the whole feed). By default delivery starts at the current head:
	// only changes after the registration are sent.
	After *uint64 `json:"after,omitempty"`
}

// validate checks a registration against the feed head and returns its
// normalised event list.
func (r Registration) validate(head uint64) ([]string, error) {
	if err := validateURL(r.URL); err != nil {
		return nil, err
	}
	if r.Secret == "" {
		return nil, fmt.Errorf("%w: secret is required: the shared key deliveries are signed with, at least %d bytes (e.g. %s followed by base64 of 32 random bytes)",
			ErrInvalid, MinKeyBytes, SecretPrefix)
	}
	if _, err := SigningKey(r.Secret); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	events := []string{}
	seen := map[string]bool{}
	for _, e := range r.Events {
		e = strings.TrimSpace(e)
		if !knownFilter(e) {
			return nil, fmt.Errorf("%w: unknown event type %q; use feed types or their prefixes (%s), or no events for all",
				ErrInvalid, e, strings.Join(FeedTypes(), ", "))
		}
		if !seen[e] {
			seen[e] = true
			events = append(events, e)
		}
	}
	sort.Strings(events)
	if r.After != nil && *r.After > head {
		return nil, fmt.Errorf("%w: after %d is beyond the feed head %d", ErrInvalid, *r.After, head)
	}
	return events, nil
}

func validateURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: url is required", ErrInvalid)
	}
	if len(raw) > maxURLLen {
		return fmt.Errorf("%w: url is longer than %d characters", ErrInvalid, maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url %q does not parse: %w", ErrInvalid, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: url must be an absolute http:// or https:// URL, got %q", ErrInvalid, raw)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: url %q has no host", ErrInvalid, raw)
	}
	return nil
}

// redactedURL is an endpoint URL without any password, for views and
// audit events.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

func newEndpointID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook id: %w", err)
	}
	return "wh_" + hex.EncodeToString(b), nil
}

// registry changes endpoints durably, each change with its audit event.
type registry struct {
	store  *store.Store
	egress *egress.Policy
}

func target(e *Endpoint) audit.Target {
	return audit.Target{Type: auditTargetType, ID: e.ID, Name: redactedURL(e.URL)}
}

// create validates and stores a new endpoint.
func (g registry) create(ctx context.Context, r Registration, actor audit.Actor, requestID string) (Endpoint, error) {
	head := g.store.Read().FeedSeq
	events, err := r.validate(head)
	if err != nil {
		return Endpoint{}, err
	}
	if err := g.egress.CheckURL(ctx, r.URL, nil); err != nil {
		return Endpoint{}, fmt.Errorf("%w: url %s: %w", ErrInvalid, redactedURL(r.URL), err)
	}
	id, err := newEndpointID()
	if err != nil {
		return Endpoint{}, err
	}
	var out Endpoint
	err = g.store.Write(ctx, func(tx *store.WriteTxn) error {
		e := Endpoint{ID: id, URL: r.URL, Secret: r.Secret, Events: events, Created: tx.Now(), CreatedBy: actor.Name, Cursor: head}
		if r.After != nil {
			e.Cursor = *r.After
		}
		if err := tx.PutRecord(TableWebhooks, id, &e); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: TypeWebhookCreated, Actor: actor, RequestID: requestID, Target: target(&e),
			Details: map[string]any{"events": events, "after": e.Cursor}})
		out = e
		return nil
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("store webhook: %w", err)
	}
	return out, nil
}

// remove deletes an endpoint.
func (g registry) remove(ctx context.Context, id string, actor audit.Actor, requestID string) error {
	err := g.store.Write(ctx, func(tx *store.WriteTxn) error {
		e, ok := endpointIn(tx, id)
		if !ok {
			return fmt.Errorf("webhook %q: %w", id, ErrNotFound)
		}
		if err := tx.DeleteRecord(TableWebhooks, id); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: TypeWebhookDeleted, Actor: actor, RequestID: requestID, Target: target(e),
			Details: map[string]any{"cursor": e.Cursor, "delivered": e.Delivered}})
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return err
}

// resume clears an endpoint's pause and failure count; delivery continues
// after its cursor, with the entry that failed.
func (g registry) resume(ctx context.Context, id string, actor audit.Actor, requestID string) (Endpoint, error) {
	var out Endpoint
	err := g.store.Write(ctx, func(tx *store.WriteTxn) error {
		cur, ok := endpointIn(tx, id)
		if !ok {
			return fmt.Errorf("webhook %q: %w", id, ErrNotFound)
		}
		e := *cur
		wasPaused, failures := e.Paused, e.Failures
		e.Paused, e.PausedAt, e.Failures = false, time.Time{}, 0
		if err := tx.PutRecord(TableWebhooks, id, &e); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: TypeWebhookResumed, Actor: actor, RequestID: requestID, Target: target(&e),
			Details: map[string]any{"cursor": e.Cursor, "wasPaused": wasPaused, "failures": failures}})
		out = e
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Endpoint{}, fmt.Errorf("resume webhook: %w", err)
	}
	return out, err
}

// View is the API shape of an endpoint: everything but the secret.
type View struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// State is "active", "failing" (retrying after failures) or "paused"
	// (stopped after too many consecutive failures; resume it).
	State   string `json:"state"`
	Failing bool   `json:"failing"`
	// Failures counts consecutive failed attempts.
	Failures        int        `json:"failures"`
	LastError       string     `json:"lastError,omitempty"`
	LastErrorAt     *time.Time `json:"lastErrorAt,omitempty"`
	PausedAt        *time.Time `json:"pausedAt,omitempty"`
	LastDeliveredAt *time.Time `json:"lastDeliveredAt,omitempty"`
	Delivered       uint64     `json:"delivered"`
	// Cursor is the last feed sequence delivered; Head the feed's head;
	// Behind how many entries lie between them (not all may be wanted).
	Cursor    uint64    `json:"cursor"`
	Head      uint64    `json:"head"`
	Behind    uint64    `json:"behind"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"createdBy,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// viewOf returns the API shape of e with the feed head.
func viewOf(e *Endpoint, head uint64) View {
	v := View{ID: e.ID, URL: redactedURL(e.URL), Events: e.Events, State: "active", Failures: e.Failures,
		LastError: e.LastError, LastErrorAt: timePtr(e.LastErrorAt), PausedAt: timePtr(e.PausedAt),
		LastDeliveredAt: timePtr(e.LastDeliveredAt), Delivered: e.Delivered, Cursor: e.Cursor, Head: head,
		Created: e.Created, CreatedBy: e.CreatedBy}
	if v.Events == nil {
		v.Events = []string{}
	}
	switch {
	case e.Paused:
		v.State, v.Failing = "paused", true
	case e.Failures > 0:
		v.State, v.Failing = "failing", true
	}
	if head > e.Cursor {
		v.Behind = head - e.Cursor
	}
	return v
}
