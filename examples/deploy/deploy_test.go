// Package deploy holds the service recipes (systemd, Docker, Kubernetes,
// Prometheus, Grafana); its tests check that they agree with scimd and with
// each other without needing a cluster or a container engine.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// unitFile is a parsed systemd unit: section → key → values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unitFile) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// environment returns the unit's Environment= assignments.
func (u unitFile) environment() map[string]string {
	env := map[string]string{}
	for _, line := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/scimd.service"
	u := parseUnit(t, path)
	env := u.environment()
	want := map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"Restart":                 "on-failure",
		"CapabilityBoundingSet":   "",
		"SystemCallArchitectures": "native",
	}
	for k, v := range want {
		if got, ok := u["Service"][k]; !ok || u.last("Service", k) != v {
			t.Errorf("%s: [Service] %s = %q, want %q", path, k, got, v)
		}
	}
	if u.last("Service", "DynamicUser") != "yes" && u.last("Service", "User") == "" {
		t.Errorf("%s: neither DynamicUser=yes nor a dedicated User=", path)
	}
	data := env["SCIMD_DATA"]
	if data == "" {
		t.Fatalf("%s: no SCIMD_DATA in Environment=", path)
	}
	if !contains(u["Service"]["ReadWritePaths"], data) {
		t.Errorf("%s: ReadWritePaths %v does not include the data directory %s", path, u["Service"]["ReadWritePaths"], data)
	}
	if sd := u.last("Service", "StateDirectory"); sd != "" && "/var/lib/"+sd != data {
		t.Errorf("%s: StateDirectory=%s but SCIMD_DATA=%s", path, sd, data)
	}
	execStart := strings.Fields(u.last("Service", "ExecStart"))
	if len(execStart) < 2 || filepath.Base(execStart[0]) != "scimd" || execStart[1] != "serve" {
		t.Errorf("%s: ExecStart=%v, want scimd serve", path, execStart)
	}
	// The admin token: a credential, handed to scimd as a file path.
	cred, _, _ := strings.Cut(u.last("Service", "LoadCredential"), ":")
	if cred == "" {
		t.Fatalf("%s: no LoadCredential for the admin token", path)
	}
	if got := env["SCIMD_ADMIN_TOKEN_FILE"]; got != "%d/"+cred {
		t.Errorf("%s: SCIMD_ADMIN_TOKEN_FILE=%q, want %%d/%s (the credential)", path, got, cred)
	}
	if _, ok := env["SCIMD_ADMIN_TOKEN"]; ok {
		t.Errorf("%s: the admin token must not be in Environment= (visible to every local user)", path)
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not installed: the unit was only parsed, not verified by systemd")
		}
		// verify checks that ExecStart's binary exists: point it at one
		// that does, in a copy of the unit.
		trueBin, err := exec.LookPath("true")
		if err != nil {
			t.Skip("no true(1) to stand in for the binary")
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(t.TempDir(), "scimd.service")
		raw = bytes.ReplaceAll(raw, []byte(execStart[0]), []byte(trueBin))
		if err := os.WriteFile(copyPath, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runCmd(sa, "verify", copyPath)
		// systemd-analyze verify exits 0 on unknown keys but says so.
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
		}
		out, err = runCmd(sa, "security", "--offline=true", "--threshold=20", copyPath)
		if err != nil {
			t.Errorf("systemd-analyze security: exposure above 2.0 (%v)\n%s", err, lastLines(out, 3))
		}
	})
}

func TestDockerfile(t *testing.T) {
	const path = "docker/Dockerfile"
	ins := parseDockerfile(t, path)
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s: %s before the first FROM", path, in.cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a multi-stage build", path, len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	buildName := ""
	if f := strings.Fields(build[0].args); len(f) == 3 && strings.EqualFold(f[1], "AS") {
		buildName = f[2]
	}
	static := false
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "./cmd/scimd") {
			static = true
		}
	}
	if !static {
		t.Errorf("%s: the build stage does not build ./cmd/scimd with CGO_ENABLED=0 (a static binary)", path)
	}
	byCmd := map[string][]string{}
	for _, in := range final {
		byCmd[in.cmd] = append(byCmd[in.cmd], in.args)
	}
	copied := false
	for _, c := range byCmd["COPY"] {
		if buildName != "" && strings.Contains(c, "--from="+buildName) && strings.Contains(c, "scimd") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("%s: the final stage does not copy the binary from the build stage %q", path, buildName)
	}
	user := last(byCmd["USER"])
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("%s: USER %q, want a non-root user", path, user)
	}
	env := map[string]string{}
	for _, e := range byCmd["ENV"] {
		for _, kv := range strings.Fields(strings.ReplaceAll(e, "\\", " ")) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	if d := env["SCIMD_DATA"]; d == "" || !strings.Contains(strings.Join(byCmd["VOLUME"], " "), `"`+d+`"`) {
		t.Errorf("%s: SCIMD_DATA=%q is not a VOLUME (%v)", path, d, byCmd["VOLUME"])
	}
	_, port, _ := strings.Cut(env["SCIMD_LISTEN"], ":")
	if port == "" || !contains(byCmd["EXPOSE"], port) {
		t.Errorf("%s: SCIMD_LISTEN=%q, EXPOSE %v", path, env["SCIMD_LISTEN"], byCmd["EXPOSE"])
	}
	if strings.HasPrefix(env["SCIMD_LISTEN"], "127.") {
		t.Errorf("%s: SCIMD_LISTEN=%s is unreachable from outside the container", path, env["SCIMD_LISTEN"])
	}
	hc := last(byCmd["HEALTHCHECK"])
	if !strings.Contains(hc, `"healthcheck"`) || !strings.Contains(hc, "127.0.0.1:"+port+"/healthz") {
		t.Errorf("%s: HEALTHCHECK %q does not run scimd healthcheck against /healthz on port %s", path, hc, port)
	}
}

type instruction struct {
	cmd, args string
}

// parseDockerfile reads instructions, joining continuation lines.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestKubernetes(t *testing.T) {
	docs := map[string]map[string]any{} // kind/name → object
	var kust map[string]any
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests under kubernetes/")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := obj["kind"].(string)
			if kind == "Kustomization" {
				kust = obj
				continue
			}
			name, _ := get(obj, "metadata", "name").(string)
			if kind == "" || name == "" || obj["apiVersion"] == nil {
				t.Fatalf("%s: an object without apiVersion, kind or metadata.name", f)
			}
			docs[kind+"/"+name] = obj
		}
	}
	if kust != nil {
		for _, r := range list(kust["resources"]) {
			if _, err := os.Stat(filepath.Join("kubernetes", r.(string))); err != nil {
				t.Errorf("kustomization.yaml: resource %v: %v", r, err)
			}
		}
	}
	sts := docs["StatefulSet/scimd"]
	if sts == nil {
		t.Fatal("no StatefulSet scimd")
	}
	if r := get(sts, "spec", "replicas"); r != 1 {
		t.Errorf("replicas = %v: the SQLite store takes one writer", r)
	}
	podLabels, _ := get(sts, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range get(sts, "spec", "selector", "matchLabels").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("selector %s=%v does not match the pod labels %v", k, v, podLabels)
		}
	}
	pod := get(sts, "spec", "template", "spec").(map[string]any)
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	c := list(pod["containers"])[0].(map[string]any)
	env := map[string]map[string]any{}
	for _, e := range list(c["env"]) {
		e := e.(map[string]any)
		env[e["name"].(string)] = e
	}
	ports := map[string]int{}
	for _, p := range list(c["ports"]) {
		p := p.(map[string]any)
		ports[p["name"].(string)] = p["containerPort"].(int)
	}
	listen, _ := env["SCIMD_LISTEN"]["value"].(string)
	if _, port, _ := strings.Cut(listen, ":"); port != strconv.Itoa(ports["http"]) || strings.HasPrefix(listen, "127.") {
		t.Errorf("SCIMD_LISTEN=%q does not serve the container port http=%d", listen, ports["http"])
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := get(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
		if port := get(c, probe, "httpGet", "port"); port != "http" && port != ports["http"] {
			t.Errorf("%s port = %v, not the http port", probe, port)
		}
	}
	// The admin token from a Secret that exists with that key.
	ref, _ := get(env["SCIMD_ADMIN_TOKEN"], "valueFrom", "secretKeyRef").(map[string]any)
	if ref == nil {
		t.Fatal("SCIMD_ADMIN_TOKEN does not come from a Secret")
	}
	secret := docs["Secret/"+ref["name"].(string)]
	if secret == nil {
		t.Errorf("Secret %v is not among the manifests", ref["name"])
	} else if get(secret, "stringData", ref["key"].(string)) == nil && get(secret, "data", ref["key"].(string)) == nil {
		t.Errorf("Secret %v has no key %v", ref["name"], ref["key"])
	}
	// Volumes: data at SCIMD_DATA (claim template), policies from a
	// ConfigMap at SCIMD_POLICIES, read-only.
	mounts := map[string]map[string]any{}
	for _, m := range list(c["volumeMounts"]) {
		m := m.(map[string]any)
		mounts[m["mountPath"].(string)] = m
	}
	dataMount := mounts[env["SCIMD_DATA"]["value"].(string)]
	claim, _ := get(list(get(sts, "spec", "volumeClaimTemplates"))[0], "metadata", "name").(string)
	if dataMount == nil || dataMount["name"] != claim {
		t.Errorf("SCIMD_DATA=%v is not mounted from the volume claim %q", env["SCIMD_DATA"]["value"], claim)
	}
	polMount := mounts[env["SCIMD_POLICIES"]["value"].(string)]
	if polMount == nil || polMount["readOnly"] != true {
		t.Errorf("SCIMD_POLICIES=%v is not a read-only mount", env["SCIMD_POLICIES"]["value"])
	} else {
		found := false
		for _, v := range list(pod["volumes"]) {
			v := v.(map[string]any)
			if v["name"] == polMount["name"] && get(v, "configMap", "name") != nil {
				found = true
			}
		}
		if !found {
			t.Errorf("volume %v is not a ConfigMap", polMount["name"])
		}
	}
	if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("container securityContext: want readOnlyRootFilesystem and no privilege escalation")
	}
	// Resources from the measured memory: ~520–575 MiB resident at 100k
	// teammates after a restart (docs/performance.md); GOMEMLIMIT below the
	// limit so the collector works before the kernel kills.
	req := quantity(t, get(c, "resources", "requests", "memory"))
	lim := quantity(t, get(c, "resources", "limits", "memory"))
	gml := quantity(t, strings.TrimSuffix(env["GOMEMLIMIT"]["value"].(string), "B"))
	if req < 600<<20 || lim < req || gml >= lim {
		t.Errorf("memory request %d, limit %d, GOMEMLIMIT %d: want request ≥ 600Mi (measured), limit ≥ request > ... GOMEMLIMIT < limit", req, lim, gml)
	}
	svc := docs["Service/scimd"]
	if svc == nil {
		t.Fatal("no Service scimd")
	}
	for k, v := range get(svc, "spec", "selector").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not select the pods", k, v)
		}
	}
	for _, p := range list(get(svc, "spec", "ports")) {
		if tp := get(p, "targetPort"); tp != "http" && tp != ports["http"] {
			t.Errorf("Service targetPort %v is not the container's http port", tp)
		}
	}
}

// quantity parses a Kubernetes memory quantity (Ki, Mi, Gi) into bytes.
func quantity(t *testing.T, v any) int64 {
	t.Helper()
	s, _ := v.(string)
	for suf, mul := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			i, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("quantity %q: %v", s, err)
			}
			return i * mul
		}
	}
	t.Fatalf("quantity %q: want Ki, Mi or Gi", s)
	return 0
}

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func contains(l []string, s string) bool {
	for _, v := range l {
		for _, f := range strings.Fields(v) {
			if f == s {
				return true
			}
		}
	}
	return false
}

func last(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

func runCmd(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
