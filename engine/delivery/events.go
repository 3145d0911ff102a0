package delivery

import (
	"sort"
	"strings"

	"github.com/scimd/scimd/audit"
)

// Audit event types recorded by delivery. Successful deliveries are not
// audited one by one (they are counted in scimd_webhook_deliveries_total
// and visible as each endpoint's cursor); failures, pauses and every admin
// action on an endpoint are.
const (
	TypeWebhookCreated  = "webhook.created"
	TypeWebhookDeleted  = "webhook.deleted"
	TypeWebhookResumed  = "webhook.resumed"
	TypeDeliveryFailed  = "webhook.delivery.failed"
	TypeWebhookPaused   = "webhook.paused"
	auditTargetType     = "Webhook"
	dispatcherActorName = "delivery"
)

// feedTypes are the entry types the change feed carries, one per kind of
// teammate change (an entry's type is the first of its changes).
var feedTypes = []string{
	audit.TypeTeammateCreated,
	audit.TypeTeammateRoleChanged,
	audit.TypeRoleReverted,
	audit.TypeRoleManual,
	audit.TypeAccessGranted,
	audit.TypeAccessRemoved,
	audit.TypeTeammateExcluded,
	audit.TypeTeammateIncluded,
	audit.TypeTeammateDeleted,
}

// FeedTypes returns the feed entry types, sorted.
func FeedTypes() []string {
	out := append([]string(nil), feedTypes...)
	sort.Strings(out)
	return out
}

// matchType reports whether filter selects the type typ: filter equals typ
// or is a dot-separated prefix of it ("teammate.access" selects
// "teammate.access.removed").
func matchType(filter, typ string) bool {
	return typ == filter || strings.HasPrefix(typ, filter+".")
}

// knownFilter reports whether filter selects at least one feed type.
func knownFilter(filter string) bool {
	for _, t := range feedTypes {
		if matchType(filter, t) {
			return true
		}
	}
	return false
}

// wants reports whether an endpoint subscribed to filters (empty: all)
// wants an entry whose changes are types.
func wants(filters, types []string) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		for _, t := range types {
			if matchType(f, t) {
				return true
			}
		}
	}
	return false
}
