package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/scimd/scimd", Version: "v1.4.0"},
		Deps: []*debug.Module{
			{Path: "github.com/prometheus/client_golang", Version: "v1.25.0"},
			{Path: "github.com/open-policy-agent/opa", Version: "v1.22.3"},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name                string
		bi                  *debug.BuildInfo
		ldVersion, ldCommit string
		ldDate              string
		want                Info
		wantString          string
	}{
		{"from the toolchain", vcs, "", "", "",
			Info{Version: "v1.4.0", Commit: "0123456789abcdef0123", BuildDate: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.8", OPA: "v1.22.3"},
			"scimd v1.4.0 (commit 0123456789ab-dirty, built 2026-12-01T10:00:00Z, go1.26.8, OPA v1.22.3)"},
		{"link-time values win", vcs, "v2.0.0", "fedcba", "2026-12-02",
			Info{Version: "v2.0.0", Commit: "fedcba", BuildDate: "2026-12-02", Modified: true, GoVersion: "go1.26.8", OPA: "v1.22.3"}, ""},
		{"a development build without VCS data",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "", "", "",
			Info{Version: "devel", Commit: "unknown", BuildDate: "unknown", GoVersion: "go1.26.8", OPA: "unknown"},
			"scimd devel (commit unknown, built unknown, go1.26.8, OPA unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromBuildInfo(tt.bi, tt.ldVersion, tt.ldCommit, tt.ldDate)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tt.wantString != "" && got.String() != tt.wantString {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantString)
			}
		})
	}
}

func TestReadInTests(t *testing.T) {
	// A test binary has build information: the Go version is known even
	// without VCS data (the OPA version is checked on the scimd binary).
	i := Read()
	if !strings.HasPrefix(i.GoVersion, "go") || i.Version == "" {
		t.Errorf("Read() = %+v", i)
	}
}

func TestCollector(t *testing.T) {
	i := Info{Version: "v1", Commit: "c", BuildDate: "d", GoVersion: "go1", OPA: "v1.22.3"}
	reg := prometheus.NewRegistry()
	reg.MustRegister(i.Collector())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "scimd_build_info" {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": "v1", "commit": "c", "build_date": "d", "go_version": "go1", "opa_version": "v1.22.3"}
	if m.GetGauge().GetValue() != 1 || len(labels) != len(want) {
		t.Fatalf("scimd_build_info = %v %v", m.GetGauge().GetValue(), labels)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
}
