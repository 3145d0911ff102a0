// Package delivery tells applications about every teammate change: an
// ordered, resumable change feed and signed webhooks.
//
// The change feed is the outbox. The reconciler appends one feed entry per
// applied teammate change in the same durable transaction as the change
// (store.WriteTxn.AppendFeed), so an entry exists exactly when its change
// does, numbered without gaps. GET /api/v1/feed reads it after a sequence
// number, optionally long-polling for the next entry.
//
// A webhook endpoint is a record in the store holding its URL, its signing
// secret, the event types it wants and a cursor: the last feed sequence
// delivered to it. One goroutine per endpoint posts the entries after its
// cursor, one at a time and in order, signed as Standard Webhooks
// (webhook-id, webhook-timestamp, webhook-signature), and advances the
// cursor durably only after a 2xx answer. Delivery is therefore
// at-least-once: a crash between the answer and the cursor write repeats
// that entry, with the same webhook-id, which receivers use to deduplicate.
// Failed attempts are retried with exponential backoff and jitter
// (honouring Retry-After); after MaxFailures consecutive failures the
// endpoint is paused until an admin resumes it, and resumes where it
// stopped. Nothing in delivery runs on a SCIM request's path.
package delivery
