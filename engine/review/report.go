package review

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scimd/scimd/engine/reconcile"
)

// Report is the periodic access review: which group grants which role, who
// holds each role, who is excluded from provisioning, and who has access
// without being in any mapped group (an attribute rule, an exclusion, a
// manual change or a default role gave it).
type Report struct {
	GeneratedAt    time.Time `json:"generatedAt"`
	PolicyRevision string    `json:"policyRevision,omitempty"`
	// Seq is the change-feed sequence number the teammates reflect.
	Seq uint64 `json:"seq"`
	// Roles lists the policy's roles, highest precedence first, then any
	// other role a teammate holds, each with its holders.
	Roles  []RoleMembers `json:"roles"`
	Groups []ReportGroup `json:"groups"`
	Totals ReportTotals  `json:"totals"`
	// Excluded lists the teammates provisioning never changes.
	Excluded []ReportTeammate `json:"excluded"`
	// Unmapped lists teammates with access who are in no mapped group.
	Unmapped []ReportTeammate `json:"unmapped"`
	// Teammates lists everyone, by userName.
	Teammates []ReportTeammate `json:"teammates"`
}

// ReportTotals counts teammates.
type ReportTotals struct {
	Teammates int `json:"teammates"`
	Access    int `json:"access"`
	Excluded  int `json:"excluded"`
	Unmapped  int `json:"unmapped"`
}

// RoleMembers is a role and the userNames of the teammates who hold it.
type RoleMembers struct {
	Role    string   `json:"role"`
	Members []string `json:"members"`
}

// ReportGroup is a group, its mapping and its members' userNames.
type ReportGroup struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName"`
	Active      bool     `json:"active"`
	Role        string   `json:"role,omitempty"`
	Members     []string `json:"members"`
	Error       string   `json:"error,omitempty"`
}

// ReportTeammate is one teammate's access and where it comes from.
type ReportTeammate struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Role     string `json:"role,omitempty"`
	Access   bool   `json:"access"`
	Excluded bool   `json:"excluded"`
	// Groups are all the teammate's groups; MappedGroups those the policy
	// maps to a role.
	Groups       []string  `json:"groups"`
	MappedGroups []string  `json:"mappedGroups"`
	Reasons      []string  `json:"reasons"`
	Revision     string    `json:"revision,omitempty"`
	Manual       bool      `json:"manual,omitempty"`
	ChangedAt    time.Time `json:"changedAt,omitzero"`
}

// noRole labels teammates who have access without a role.
const noRole = "(access, no role)"

// BuildReport assembles the report from the reconciler's teammates and
// groups and the active policy's roles.
func BuildReport(teammates []reconcile.TeammateView, groups []reconcile.GroupView, roles []string, revision string, seq uint64, now time.Time) *Report {
	r := &Report{GeneratedAt: now.UTC(), PolicyRevision: revision, Seq: seq,
		Roles: []RoleMembers{}, Groups: []ReportGroup{}, Excluded: []ReportTeammate{}, Unmapped: []ReportTeammate{},
		Teammates: []ReportTeammate{}}
	mapped := map[string]bool{}
	for _, g := range groups {
		if g.Active {
			mapped[g.DisplayName] = true
		}
	}
	names := map[string]string{}
	byRole := map[string][]string{}
	for _, t := range teammates {
		names[t.ID] = t.UserName
		rt := ReportTeammate{ID: t.ID, UserName: t.UserName, Role: t.Role, Access: t.Access, Excluded: t.Excluded,
			Groups: append([]string{}, t.Groups...), MappedGroups: []string{}, Reasons: append([]string{}, t.Reasons...),
			Revision: t.Revision, Manual: t.Manual != nil, ChangedAt: t.ChangedAt}
		for _, g := range t.Groups {
			if mapped[g] {
				rt.MappedGroups = append(rt.MappedGroups, g)
			}
		}
		r.Teammates = append(r.Teammates, rt)
		r.Totals.Teammates++
		if t.Access {
			r.Totals.Access++
			role := t.Role
			if role == "" {
				role = noRole
			}
			byRole[role] = append(byRole[role], t.UserName)
			if len(rt.MappedGroups) == 0 {
				r.Unmapped = append(r.Unmapped, rt)
			}
		}
		if t.Excluded {
			r.Excluded = append(r.Excluded, rt)
		}
	}
	r.Totals.Excluded, r.Totals.Unmapped = len(r.Excluded), len(r.Unmapped)
	seen := map[string]bool{}
	addRole := func(role string) {
		if seen[role] {
			return
		}
		seen[role] = true
		m := byRole[role]
		sort.Strings(m)
		if m == nil {
			m = []string{}
		}
		r.Roles = append(r.Roles, RoleMembers{Role: role, Members: m})
	}
	for _, role := range roles {
		addRole(role)
	}
	var others []string
	for role := range byRole {
		if !seen[role] {
			others = append(others, role)
		}
	}
	sort.Strings(others)
	for _, role := range others {
		addRole(role)
	}
	for _, g := range groups {
		rg := ReportGroup{ID: g.ID, DisplayName: g.DisplayName, Active: g.Active, Role: g.Role, Members: []string{}, Error: g.Error}
		for _, id := range g.Members {
			if n, ok := names[id]; ok {
				rg.Members = append(rg.Members, n)
			} else {
				rg.Members = append(rg.Members, id)
			}
		}
		sort.Strings(rg.Members)
		r.Groups = append(r.Groups, rg)
	}
	sort.Slice(r.Groups, func(i, j int) bool {
		if r.Groups[i].Active != r.Groups[j].Active {
			return r.Groups[i].Active
		}
		return strings.ToLower(r.Groups[i].DisplayName) < strings.ToLower(r.Groups[j].DisplayName)
	})
	for _, l := range [][]ReportTeammate{r.Teammates, r.Excluded, r.Unmapped} {
		sort.Slice(l, func(i, j int) bool { return strings.ToLower(l[i].UserName) < strings.ToLower(l[j].UserName) })
	}
	return r
}

// WriteReportMarkdown writes the report for an access review ticket.
func WriteReportMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Access review\n\nGenerated %s · policy `%s` · %d teammates, %d with access, %d excluded, %d with access outside mapped groups\n\n",
		r.GeneratedAt.Format(time.RFC3339), mdCode(orNone(r.PolicyRevision)), r.Totals.Teammates, r.Totals.Access, r.Totals.Excluded, r.Totals.Unmapped)

	fmt.Fprint(bw, "## Groups → roles\n\n| Group | Role | Members |\n|---|---|---|\n")
	for _, g := range r.Groups {
		role := "inactive"
		if g.Active {
			role = mdCell(orDefault(g.Role, "active, no role"))
		}
		if g.Error != "" {
			role += " (error: " + mdCell(g.Error) + ")"
		}
		fmt.Fprintf(bw, "| %s | %s | %s |\n", mdCell(g.DisplayName), role, mdList(g.Members))
	}
	fmt.Fprint(bw, "\n## Members per role\n\n| Role | Count | Members |\n|---|---|---|\n")
	for _, rm := range r.Roles {
		fmt.Fprintf(bw, "| %s | %d | %s |\n", mdCell(rm.Role), len(rm.Members), mdList(rm.Members))
	}
	writeTeammateTable := func(title, empty string, list []ReportTeammate) {
		fmt.Fprintf(bw, "\n## %s (%d)\n\n", title, len(list))
		if len(list) == 0 {
			fmt.Fprintln(bw, empty)
			return
		}
		fmt.Fprint(bw, "| Teammate | Role | Access | Why |\n|---|---|---|---|\n")
		for _, t := range list {
			why := t.Reasons
			if t.Manual {
				why = append([]string{"set by hand"}, why...)
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", mdCell(t.UserName), mdCell(orDefault(t.Role, "none")), yesNo(t.Access), mdCell(joinReasons(why)))
		}
	}
	writeTeammateTable("Excluded from provisioning", "Nobody is excluded.", r.Excluded)
	writeTeammateTable("Access without a mapped group", "Everyone with access has it through a mapped group.", r.Unmapped)
	return bw.Flush()
}

// CSVHeader is the header row of WriteReportCSV.
var CSVHeader = []string{"user_name", "id", "role", "access", "excluded", "mapped_groups", "groups", "reasons", "manual", "policy_revision", "changed_at"}

// WriteReportCSV writes one row per teammate. Cells that a spreadsheet
// would read as a formula are prefixed with a quote.
func WriteReportCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, t := range r.Teammates {
		changed := ""
		if !t.ChangedAt.IsZero() {
			changed = t.ChangedAt.UTC().Format(time.RFC3339)
		}
		row := []string{t.UserName, t.ID, t.Role, strconv.FormatBool(t.Access), strconv.FormatBool(t.Excluded),
			strings.Join(t.MappedGroups, "; "), strings.Join(t.Groups, "; "), strings.Join(t.Reasons, "; "),
			strconv.FormatBool(t.Manual), t.Revision, changed}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// csvSafe defuses spreadsheet formula injection (a userName such as
// "=HYPERLINK(…)" from the identity provider).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func mdList(l []string) string {
	if len(l) == 0 {
		return "—"
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = mdCell(s)
	}
	return strings.Join(out, ", ")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
