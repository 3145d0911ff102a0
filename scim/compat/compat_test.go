package compat

import (
	"context"
	"slices"
	"testing"
)

func TestCheckAndTracker(t *testing.T) {
	for in, want := range map[string]string{"": Auto, "Entra": "entra", " rfc ": "rfc", "auto": Auto} {
		if got, err := Check(in); err != nil || got != want {
			t.Errorf("Check(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Check("netscape"); err == nil {
		t.Error("Check accepted an unknown profile")
	}
	for name, rules := range Profiles {
		for _, r := range rules {
			if !slices.Contains(All, r) {
				t.Errorf("profile %s enables unknown rule %s", name, r)
			}
		}
	}
	if len(Profiles["rfc"]) != 0 || !slices.Equal(Profiles[Auto], All) {
		t.Error("rfc must enable nothing and auto everything")
	}
	ctx, tr := Start(WithProfile(context.Background(), "onelogin"))
	if From(ctx) != tr || tr.Profile() != "onelogin" {
		t.Fatal("Start/From")
	}
	if tr.Allow(PatchFilteredUpsert) || !tr.Allow(StringBooleans) || !tr.Allow(StringBooleans) {
		t.Fatal("Allow")
	}
	if got := tr.Used(); !slices.Equal(got, []Rule{StringBooleans}) {
		t.Fatalf("Used = %v", got)
	}
	var none *Tracker
	if !none.Allow(PatchOpNameCase) || none.Used() != nil || none.Profile() != Auto {
		t.Fatal("a nil Tracker allows everything")
	}
	if For(WithProfile(context.Background(), "bogus")).Profile() != "rfc" {
		t.Fatal("an unknown stored profile must be strict")
	}
}
