package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/review"
)

func TestReportCommand(t *testing.T) {
	s := startLive(t)
	alice := s.createUser("alice@example.com")
	s.createUser("breakglass@example.com")
	s.createGroup("Intercom Support", alice)
	s.createGroup("Sales")
	ctx := context.Background()

	r := s.runCLI(ctx, "report")
	for _, want := range []string{"# Access review", "| Intercom Support | support | alice\\@example.com |", "| Sales | inactive | — |",
		"| support | 1 | alice\\@example.com |", "## Excluded from provisioning (1)", "breakglass\\@example.com"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("markdown report lacks %q:\n%s", want, r.stdout)
		}
	}

	out := filepath.Join(t.TempDir(), "review.csv")
	if r := s.runCLI(ctx, "report", "--format", "csv", "--out", out); r.code != 0 {
		t.Fatalf("csv: exit %d %s", r.code, r.stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(review.CSVHeader, ",") ||
		rows[1][0] != "alice@example.com" || rows[1][2] != "support" || rows[1][5] != "Intercom Support" {
		t.Fatalf("csv rows %v, %v", rows, err)
	}

	r = s.runCLI(ctx, "report", "--format", "json")
	var rep review.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Totals.Teammates != 2 || rep.Totals.Excluded != 1 {
		t.Fatalf("json report: %v %+v", err, rep.Totals)
	}
	if r := s.runCLI(ctx, "report", "--format", "pdf"); r.code != 1 {
		t.Fatalf("unknown format: exit %d", r.code)
	}
}
