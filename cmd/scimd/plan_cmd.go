package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/review"
)

// Output formats of `scimd plan`.
const (
	formatText     = "text"
	formatMarkdown = "markdown"
	formatJSON     = "json"
)

func newPlanCmd() *cobra.Command {
	var serverAddr, token, dir, format string
	cmd := &cobra.Command{
		Use:   "plan --policies DIR",
		Short: "Preview what a candidate policy would change, against the running server's live state",
		Long: `Sends the policy files under DIR (*.rego, *.json, *.yaml, with paths relative
to DIR) to the running scimd, which compiles and tests them exactly as a
reload would, evaluates every teammate with them against live state, and
answers the difference: each teammate's role and access from → to, groups
becoming active or inactive, a "+N ~M −K" summary (gain access, change
role, lose access) and whether the mass-change guard would hold the change.

Nothing is applied. The server records one policy.planned audit event
(candidate and live revisions, counts, you as the actor).

Formats: text (terminal), markdown (a pull-request comment), json.

Exit status:
  0  no change
  1  error: the candidate does not compile, fails its tests (the failing
     test and file:line are named) or cannot decide some teammates
  2  changes
  3  changes the mass-change guard would hold until an admin approves them`,
		Example: `  scimd plan --policies ./policies
  scimd plan --policies ./policies --format markdown > plan.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatText, formatMarkdown, formatJSON); err != nil {
				return err
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			return runPlan(cmd.Context(), c, dir, format, cmd.OutOrStdout())
		},
	}
	addClientFlags(cmd, &serverAddr, &token)
	cmd.Flags().StringVar(&dir, "policies", defaultPolicyDir, "directory of the candidate policy")
	cmd.Flags().StringVar(&format, "format", formatText, "output format: text, markdown or json")
	return cmd
}

// checkFormat refuses a format not in allowed.
func checkFormat(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("unknown format %q: use %s", format, strings.Join(allowed, ", "))
}

// readCandidate reads the policy files under dir as the server's watcher
// would (policy.ReadDir: links followed only inside dir, dot-files skipped).
func readCandidate(dir string) (review.PlanRequest, error) {
	src, err := policy.ReadDir(dir)
	if err != nil {
		return review.PlanRequest{}, err
	}
	if len(src.Files) == 0 {
		return review.PlanRequest{}, fmt.Errorf("no policy files (*.rego, *.json, *.yaml) under %s", dir)
	}
	req := review.PlanRequest{Files: make(map[string]string, len(src.Files)), Commit: src.Commit}
	if req.Commit != "" && gitDirty(dir) {
		// The files are not the commit's: say so rather than label the
		// plan with a commit that does not contain them.
		req.Commit += "+dirty"
	}
	names := make([]string, 0, len(src.Files))
	for name := range src.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := src.Files[name]
		if !utf8.Valid(b) {
			return review.PlanRequest{}, fmt.Errorf("%s/%s is not UTF-8 text", dir, name)
		}
		req.Files[name] = string(b)
	}
	return req, nil
}

// gitDirty reports whether the git work tree holding dir has uncommitted
// changes (or untracked files) under dir. Without git, or when git fails,
// it reports false.
func gitDirty(dir string) bool {
	if _, err := exec.LookPath("git"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=normal", "--", ".").Output()
	return err == nil && len(bytes.TrimSpace(out)) > 0
}

func runPlan(ctx context.Context, c *adminClient, dir, format string, w io.Writer) error {
	req, err := readCandidate(dir)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	status, body, err := c.call(ctx, http.MethodPost, "/api/v1/plan", req)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	display := review.Display{Dir: dir}
	switch status {
	case http.StatusOK:
		var res review.PlanResult
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("plan: decode the server's answer: %w", err)
		}
		if err := writePlan(w, format, body, &res, display); err != nil {
			return err
		}
		if code := res.ExitCode(); code != review.ExitNoChange {
			var err error
			if code == review.ExitError {
				err = fmt.Errorf("the candidate could not decide %d teammates", len(res.Errors))
			}
			return &exitError{code: code, err: err}
		}
		return nil
	case http.StatusUnprocessableEntity:
		var ref review.Refusal
		if err := json.Unmarshal(body, &ref); err != nil {
			return fmt.Errorf("plan: decode the server's answer: %w", err)
		}
		if err := writeRefusal(w, format, body, &ref, display); err != nil {
			return err
		}
		return &exitError{code: review.ExitError, err: refusalError(&ref, display)}
	default:
		return fmt.Errorf("plan: POST /api/v1/plan: %s", c.apiError(status, body))
	}
}

func writePlan(w io.Writer, format string, raw []byte, res *review.PlanResult, d review.Display) error {
	switch format {
	case formatJSON:
		return writeIndented(w, raw)
	case formatMarkdown:
		return review.WritePlanMarkdown(w, res, d)
	default:
		return review.WritePlanText(w, res, d)
	}
}

func writeRefusal(w io.Writer, format string, raw []byte, ref *review.Refusal, d review.Display) error {
	switch format {
	case formatJSON:
		return writeIndented(w, raw)
	case formatMarkdown:
		return review.WriteRefusalMarkdown(w, ref, d)
	default:
		return review.WriteRefusalText(w, ref, d)
	}
}

// refusalError names the stage and the first problems, with file:line
// under the candidate directory.
func refusalError(ref *review.Refusal, d review.Display) error {
	var parts []string
	for i, p := range ref.Problems {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ref.Problems)-i))
			break
		}
		parts = append(parts, d.ProblemText(p))
	}
	return fmt.Errorf("candidate refused at the %s stage: %s", ref.Stage, strings.Join(parts, "; "))
}

// writeIndented re-indents a JSON document for people and jq alike.
func writeIndented(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("format JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// call sends a request to the admin API and returns the status and body
// whatever the status; err is set only when no answer came.
func (c *adminClient) call(ctx context.Context, method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.transportError(method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	return resp.StatusCode, raw, nil
}

// apiError is the message of a non-2xx admin API answer, naming the
// server that gave it.
func (c *adminClient) apiError(status int, body []byte) error {
	var e struct {
		Detail string `json:"detail"`
		Error  string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Error
	if msg == "" {
		msg = e.Detail
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	return c.apiErrorMessage(status, msg)
}
