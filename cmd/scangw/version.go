package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/scangw/scangw/device/hidscan"
)

// buildVersion, buildCommit and buildCommitTime are stamped by the
// Makefile (-ldflags "-X main.buildVersion=..."); the packages carry the
// Debian version in buildVersion, so `scangw version` and `dpkg -l` agree
// on a box. A plain `go build` or `go install` leaves them empty and the
// module version and the go command's VCS stamp stand in (that stamp is
// missing where GOFLAGS has -buildvcs=false, hence the Makefile's own).
var (
	buildVersion    string
	buildCommit     string
	buildCommitTime string
)

// version is the short version string the status page, the heartbeat and
// scangw_build_info report.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

// buildFacts is what `scangw version` tells: enough to say from a
// support ticket which source, toolchain and target a binary came from,
// and whether it can drive HID scanners at all (a CGO_ENABLED=0 build
// cannot).
type buildFacts struct {
	version    string
	commit     string // 12 hex digits, "-dirty" when built from a modified tree; "unknown"
	commitTime string // RFC 3339 from the VCS stamp; "" when unknown
	goVersion  string
	goos       string
	goarch     string
	goarm      string // GOARM for arm builds: a v7 binary does not run on an ARMv6 Pi
	hid        error  // nil when HID scanners can be used
}

// collectBuildFacts merges the Makefile's commit stamps with the go
// command's build info (bi may be nil). The stamps win, as they are what
// the release was cut from; the VCS time is only borrowed when both name
// one commit.
func collectBuildFacts(ver, stampCommit, stampTime string, bi *debug.BuildInfo) buildFacts {
	f := buildFacts{
		version:   ver,
		goVersion: runtime.Version(),
		goos:      runtime.GOOS,
		goarch:    runtime.GOARCH,
		hid:       hidscan.Available(),
	}
	settings := map[string]string{}
	if bi != nil {
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	if f.goarch == "arm" {
		f.goarm = settings["GOARM"]
	}
	rev := settings["vcs.revision"]
	switch {
	case stampCommit != "":
		f.commit, f.commitTime = stampCommit, stampTime
		if bare := strings.TrimSuffix(stampCommit, "-dirty"); f.commitTime == "" && bare != "" && strings.HasPrefix(rev, bare) {
			f.commitTime = settings["vcs.time"]
		}
	case rev != "":
		f.commit = rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			f.commit += "-dirty"
		}
		f.commitTime = settings["vcs.time"]
	default:
		f.commit = "unknown"
	}
	return f
}

func (f buildFacts) write(w io.Writer) {
	fmt.Fprintln(w, "scangw", f.version)
	commit := f.commit
	if f.commitTime != "" {
		commit += " (" + f.commitTime + ")"
	}
	platform := f.goos + "/" + f.goarch
	if f.goarm != "" {
		platform += " (GOARM=" + f.goarm + ")"
	}
	hid := "yes (cgo)"
	if f.hid != nil {
		hid = "no: " + f.hid.Error()
	}
	for _, l := range [][2]string{{"commit", commit}, {"go", f.goVersion}, {"os/arch", platform}, {"hid", hid}} {
		fmt.Fprintf(w, "  %-9s%s\n", l[0]+":", l[1])
	}
}

// printVersion is `scangw version`.
func printVersion(w io.Writer) {
	bi, _ := debug.ReadBuildInfo()
	collectBuildFacts(version(), buildCommit, buildCommitTime, bi).write(w)
}
