// Package buildinfo says which scimd is running: its module version, VCS
// commit and build date, and the Go and OPA versions it was built with.
// The values come from the Go toolchain's build information
// (runtime/debug.ReadBuildInfo); a release build may override the version,
// commit and date with -ldflags "-X
// github.com/scimd/scimd/engine/buildinfo.version=v1.2.3" (and .commit,
// .buildDate) when it builds outside a git checkout.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time by release builds; empty otherwise.
var (
	version   string
	commit    string
	buildDate string
)

// opaModule is the module whose version is reported as the OPA version.
const opaModule = "github.com/open-policy-agent/opa"

// Info describes one build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
	OPA       string `json:"opaVersion"`
}

// Read returns the running binary's build information. Fields the build
// did not record are "unknown".
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version, commit, buildDate)
}

func fromBuildInfo(bi *debug.BuildInfo, ldVersion, ldCommit, ldDate string) Info {
	info := Info{GoVersion: runtime.Version()}
	if bi != nil {
		info.GoVersion = bi.GoVersion
		info.Version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.BuildDate = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == opaModule || strings.HasPrefix(d.Path, opaModule+"/v") {
				info.OPA = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					info.OPA = d.Replace.Version
				}
			}
		}
	}
	if ldVersion != "" {
		info.Version = ldVersion
	}
	if ldCommit != "" {
		info.Commit = ldCommit
	}
	if ldDate != "" {
		info.BuildDate = ldDate
	}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	for _, f := range []*string{&info.Commit, &info.BuildDate, &info.OPA} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return info
}

// String is the one-line form `scimd --version` prints.
func (i Info) String() string {
	commit := i.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if i.Modified {
		commit += "-dirty"
	}
	return "scimd " + i.Version + " (commit " + commit + ", built " + i.BuildDate + ", " + i.GoVersion + ", OPA " + i.OPA + ")"
}

// Collector returns the scimd_build_info gauge: always 1, the build in
// its labels, so that dashboards can show which version runs where and
// join it onto other series.
func (i Info) Collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "scimd_build_info",
		Help: "Always 1; the labels say which scimd build is running.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "commit": i.Commit, "build_date": i.BuildDate,
			"go_version": i.GoVersion, "opa_version": i.OPA,
		},
	})
	g.Set(1)
	return g
}
