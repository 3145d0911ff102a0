// Package policytest provides small policy sets for tests of the policy
// engine and of its users: a minimal valid set, and one-line ways to break
// it at each stage of the gate.
package policytest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
)

// Policy is the production module of the minimal set. Its mapping table
// grants "admin" to group "Admins" and "viewer" to group "Viewers"; the
// constant Marker is a value tests change to get a new revision.
const Policy = `package scimd

roles := ["admin", "viewer"]

mapping := {"Admins": "admin", "Viewers": "viewer"}

marker := "v1"

group := {"role": mapping[input.group.displayName]}

granted := {mapping[g.displayName] | some g in input.groups}

teammate := {"excluded": false, "access": true, "role": "admin", "reasons": ["member of Admins"]} if {
	"admin" in granted
} else := {"excluded": false, "access": true, "role": "viewer", "reasons": ["member of Viewers"]} if {
	"viewer" in granted
} else := {"excluded": false, "access": false, "role": null, "reasons": ["no mapped group"]}
`

// Test is the test module of the minimal set.
const Test = `package scimd_test

import data.scimd

test_admins_get_admin if {
	scimd.teammate.role == "admin" with input as {"user": {}, "groups": [{"displayName": "Admins"}]}
}

test_no_group_no_access if {
	not scimd.teammate.access with input as {"user": {}, "groups": []}
}
`

// Minimal returns a valid policy set: policy.rego and policy_test.rego.
func Minimal() map[string][]byte {
	return map[string][]byte{
		"policy.rego":      []byte(Policy),
		"policy_test.rego": []byte(Test),
	}
}

// WithMarker returns the minimal set with marker := "<m>", a different
// revision that behaves the same.
func WithMarker(m string) map[string][]byte {
	return Replace(Minimal(), "policy.rego", `marker := "v1"`, fmt.Sprintf("marker := %q", m))
}

// Replace returns a copy of files in which old is replaced by new in file
// name. It panics when old does not occur, so a fixture cannot silently
// stop breaking what it should.
func Replace(files map[string][]byte, name, old, new string) map[string][]byte {
	out := maps.Clone(files)
	s := string(out[name])
	if !strings.Contains(s, old) {
		panic(fmt.Sprintf("policytest: %q not in %s", old, name))
	}
	out[name] = []byte(strings.Replace(s, old, new, 1))
	return out
}

// SyntaxError returns a set that does not parse.
func SyntaxError() map[string][]byte {
	return Replace(Minimal(), "policy.rego", `marker := "v1"`, `marker := "v1" +`)
}

// FailingTest returns a set with a failing test: test_admins_get_admin,
// policy_test.rego:5.
func FailingTest() map[string][]byte {
	return Replace(Minimal(), "policy_test.rego", `scimd.teammate.role == "admin"`, `scimd.teammate.role == "viewer"`)
}

// ContractBreak returns a set that maps a group to a role outside
// data.scimd.roles (policy.rego:5).
func ContractBreak() map[string][]byte {
	return Replace(Minimal(), "policy.rego", `"Viewers": "viewer"`, `"Viewers": "superuser"`)
}

// HTTPSend returns a set that calls http.send at policy.rego:7.
func HTTPSend() map[string][]byte {
	return Replace(Minimal(), "policy.rego", `marker := "v1"`, `marker := http.send({"method": "GET", "url": "https://example.com"}).body`)
}

// WriteDir writes files (slash-separated relative paths) under dir,
// creating directories as needed.
func WriteDir(dir string, files map[string][]byte) error {
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("policytest: %w", err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("policytest: %w", err)
		}
	}
	return nil
}
