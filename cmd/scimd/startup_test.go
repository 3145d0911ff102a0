package main

import (
	"strings"
	"testing"
)

// TestQuietStart: a start on a fresh data directory with a good policy,
// a few SCIM writes and a stop log nothing at WARN or ERROR, so that a
// warning in the logs always means something (issue 18, item 7).
func TestQuietStart(t *testing.T) {
	dir := t.TempDir()
	for _, start := range []string{"first start", "restart"} {
		d := startDaemon(t, dir)
		c := &binClient{t: t, d: d, scim: d.scimToken("idp-" + strings.ReplaceAll(start, " ", "-"))}
		id := c.createUser(map[string]any{"userName": "quiet-" + strings.ReplaceAll(start, " ", "-") + "@example.com", "active": true})
		c.createGroup("Intercom Support "+start, id)
		c.settle()
		if err := d.stop(); err != nil {
			t.Fatalf("%s: stop: %v", start, err)
		}
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
				t.Errorf("%s logged: %s", start, line)
			}
		}
	}
}
