// Package compat holds scimd's identity-provider compatibility profiles:
// named sets of tolerance rules, each accepting one thing an IdP sends
// that RFC 7643/7644 does not allow. Every SCIM token has a profile; a
// request is decoded with the rules of its token's profile only, and the
// rules that changed it are named in its audit event.
package compat

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Rule names one tolerance rule.
type Rule string

// The tolerance rules a profile can enable.
const (
	// StringBooleans: "True"/"False" (any case) for boolean attributes
	// (Entra ID, OneLogin).
	StringBooleans Rule = "string-booleans"
	// ManagerAsString: the enterprise manager sent as a bare id (Entra ID).
	ManagerAsString Rule = "manager-as-string"
	// SingleValueForMultiValued: an object where an array is expected is
	// taken as a one-element array.
	SingleValueForMultiValued Rule = "single-value-for-multi-valued"
	// URNQualifiedAttributes: "urn:…:enterprise:2.0:User:department" keys
	// at the top level of a body (Entra ID).
	URNQualifiedAttributes Rule = "urn-qualified-attributes"
	// BareMemberIDs: group members given as plain id strings, or with
	// "displayName" instead of "display" (Microsoft's test collection).
	BareMemberIDs Rule = "bare-member-ids"
	// FilterValuePathSubAttr: emails[type eq "work"].value eq "x" in a
	// filter (Entra ID).
	FilterValuePathSubAttr Rule = "filter-valuepath-subattr"
	// FilterBareValue: unquoted filter values, userName eq jdoe
	// (Microsoft's test collection).
	FilterBareValue Rule = "filter-bare-value"
	// FilterLenientString: filter strings JSON would reject (unknown
	// escapes, raw control characters). Defensive.
	FilterLenientString Rule = "filter-lenient-string"
	// FilterMissingSpace: userName eq"x". Defensive.
	FilterMissingSpace Rule = "filter-missing-space"
	// PatchFilteredUpsert: add/replace on emails[type eq "work"].value with
	// no such element creates it instead of 400 noTarget (Entra ID).
	PatchFilteredUpsert Rule = "patch-filtered-upsert"
	// PatchOpNameCase: "Add", "Replace", "Remove" as PATCH op names
	// (Entra ID).
	PatchOpNameCase Rule = "patch-op-name-case"
	// PatchLenientRequest: a PATCH body without the PatchOp schema URN,
	// with an empty Operations array, or with "path": "" (hand-written
	// clients, Microsoft's validator).
	PatchLenientRequest Rule = "patch-lenient-request"
	// PatchDottedKeys: "name.givenName" keys in the value of a path-less
	// add or replace.
	PatchDottedKeys Rule = "patch-dotted-keys"
	// PatchRemoveByValue: remove on a multi-valued attribute with a value
	// array removes exactly those values (Entra ID), where RFC 7644
	// §3.5.2.2 defines no value for remove.
	PatchRemoveByValue Rule = "patch-remove-by-value"
	// ScalarsAsStrings: a number or boolean where a string attribute is
	// expected, or a numeric string for an integer or decimal.
	ScalarsAsStrings Rule = "scalars-as-strings"
)

// All lists every rule, in documentation order.
var All = []Rule{StringBooleans, ManagerAsString, SingleValueForMultiValued, URNQualifiedAttributes, BareMemberIDs,
	FilterValuePathSubAttr, FilterBareValue, FilterLenientString, FilterMissingSpace, PatchFilteredUpsert, PatchOpNameCase,
	PatchLenientRequest, PatchDottedKeys, PatchRemoveByValue, ScalarsAsStrings}

// Auto is the default profile: every rule.
const Auto = "auto"

// Profiles maps each profile name to the rules it enables.
var Profiles = map[string][]Rule{
	"rfc":  {},
	"okta": {},
	"entra": {StringBooleans, ManagerAsString, SingleValueForMultiValued, URNQualifiedAttributes, BareMemberIDs, FilterValuePathSubAttr, FilterBareValue, PatchFilteredUpsert, PatchOpNameCase,
		PatchLenientRequest, PatchDottedKeys, PatchRemoveByValue, ScalarsAsStrings},
	"onelogin":  {StringBooleans},
	"ping":      {},
	"jumpcloud": {PatchRemoveByValue},
	"google":    {},
	Auto:        All,
}

// Names lists the profile names, sorted.
func Names() []string {
	out := make([]string, 0, len(Profiles))
	for n := range Profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Check returns the canonical name of profile ("" is Auto), or an error
// naming the known profiles.
func Check(profile string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(profile))
	if p == "" {
		return Auto, nil
	}
	if _, ok := Profiles[p]; !ok {
		return "", fmt.Errorf("unknown profile %q (want one of %s)", profile, strings.Join(Names(), ", "))
	}
	return p, nil
}

type profileKey struct{}

// WithProfile returns ctx carrying the compatibility profile of the
// request's token.
func WithProfile(ctx context.Context, profile string) context.Context {
	return context.WithValue(ctx, profileKey{}, profile)
}

// Tracker applies one request's profile: it says whether a rule is
// enabled and records the rules that were used. A nil *Tracker enables
// every rule and records nothing.
type Tracker struct {
	profile string
	rules   []Rule
	mu      sync.Mutex
	used    []Rule
}

// For returns a Tracker for the profile carried by ctx (Auto when none).
func For(ctx context.Context) *Tracker {
	p, _ := ctx.Value(profileKey{}).(string)
	p, err := Check(p)
	if err != nil {
		p = "rfc" // an unknown stored profile: the strict one
	}
	return &Tracker{profile: p, rules: Profiles[p]}
}

// Allow reports whether rule may change the request, and records it as
// used when it may. Call it only where the rule would change something.
func (t *Tracker) Allow(rule Rule) bool {
	if t == nil {
		return true
	}
	if !slices.Contains(t.rules, rule) {
		return false
	}
	t.mu.Lock()
	if !slices.Contains(t.used, rule) {
		t.used = append(t.used, rule)
	}
	t.mu.Unlock()
	return true
}

// Profile is the tracker's profile name.
func (t *Tracker) Profile() string {
	if t == nil {
		return Auto
	}
	return t.profile
}

// Used lists the rules that changed the request, in the order first used.
func (t *Tracker) Used() []Rule {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.used)
}

type trackerKey struct{}

// Start returns a fresh Tracker for the profile carried by ctx, and ctx
// carrying it for From.
func Start(ctx context.Context) (context.Context, *Tracker) {
	t := For(ctx)
	return context.WithValue(ctx, trackerKey{}, t), t
}

// From returns the Tracker Start put in ctx, or nil (every rule).
func From(ctx context.Context) *Tracker {
	t, _ := ctx.Value(trackerKey{}).(*Tracker)
	return t
}
