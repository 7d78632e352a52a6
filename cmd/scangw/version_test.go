package main

import (
	"bytes"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/scangw/scangw/device/hidscan"
)

func TestCollectBuildFacts(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(extra ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Settings: append([]debug.BuildSetting{
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		}, extra...)}
	}
	for _, tc := range []struct {
		name             string
		stamp, stampTime string
		bi               *debug.BuildInfo
		commit, wantTime string
	}{
		{"stamps alone", "0123456789ab", "2026-11-30T09:00:00Z", &debug.BuildInfo{}, "0123456789ab", "2026-11-30T09:00:00Z"},
		{"stamped time wins", "0123456789ab", "2026-11-30T09:00:00Z", vcs(), "0123456789ab", "2026-11-30T09:00:00Z"},
		{"stamp matching the VCS stamp gets its time", "0123456789ab", "", vcs(), "0123456789ab", "2026-12-01T10:00:00Z"},
		{"dirty stamp still matches", "0123456789ab-dirty", "", vcs(), "0123456789ab-dirty", "2026-12-01T10:00:00Z"},
		// A binary stamped from one checkout but built in another must
		// not borrow the other commit's time.
		{"stamp of another commit has no time", "fedcba987654", "", vcs(), "fedcba987654", ""},
		{"VCS stamp alone", "", "", vcs(), "0123456789ab", "2026-12-01T10:00:00Z"},
		{"VCS stamp of a modified tree", "", "", vcs(debug.BuildSetting{Key: "vcs.modified", Value: "true"}), "0123456789ab-dirty", "2026-12-01T10:00:00Z"},
		{"no stamp at all", "", "", &debug.BuildInfo{}, "unknown", ""},
		{"no build info", "", "", nil, "unknown", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := collectBuildFacts("1.2.3", tc.stamp, tc.stampTime, tc.bi)
			if f.commit != tc.commit || f.commitTime != tc.wantTime {
				t.Errorf("commit = %q (%q), want %q (%q)", f.commit, f.commitTime, tc.commit, tc.wantTime)
			}
		})
	}
}

func TestCollectBuildFactsGOARM(t *testing.T) {
	f := collectBuildFacts("1.2.3", "", "", &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "GOARM", Value: "7"}}})
	want := ""
	if runtime.GOARCH == "arm" {
		want = "7"
	}
	if f.goarm != want {
		t.Errorf("goarm = %q on %s, want %q", f.goarm, runtime.GOARCH, want)
	}
	f.goos, f.goarch, f.goarm = "linux", "arm", "7"
	var b bytes.Buffer
	f.write(&b)
	if !strings.Contains(b.String(), "\n  os/arch: linux/arm (GOARM=7)\n") {
		t.Errorf("an armv7 build does not say so:\n%s", b.String())
	}
}

// versionFields parses `scangw version` into its first line and the
// "  key:   value" lines below it.
func versionFields(t *testing.T, out string) (string, map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	fields := map[string]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(strings.TrimPrefix(l, "  "), ":")
		if !ok || !strings.HasPrefix(l, "  ") {
			t.Fatalf("line %q is not \"  key: value\" in\n%s", l, out)
		}
		fields[k] = strings.TrimSpace(v)
	}
	return lines[0], fields
}

func TestPrintVersion(t *testing.T) {
	var b bytes.Buffer
	printVersion(&b)
	head, f := versionFields(t, b.String())
	if want := "scangw " + version(); head != want {
		t.Errorf("first line %q, want %q", head, want)
	}
	if f["go"] != runtime.Version() {
		t.Errorf("go: %q, want %q", f["go"], runtime.Version())
	}
	if !strings.HasPrefix(f["os/arch"], runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("os/arch: %q, want %s/%s", f["os/arch"], runtime.GOOS, runtime.GOARCH)
	}
	wantHID := "yes (cgo)"
	if err := hidscan.Available(); err != nil {
		wantHID = "no: " + err.Error()
	}
	if f["hid"] != wantHID {
		t.Errorf("hid: %q, want %q", f["hid"], wantHID)
	}
	if len(f) != 4 {
		t.Errorf("fields %v, want commit, go, os/arch, hid", f)
	}
}

// The daemon's `version` command prints these fields, whatever the go
// command stamped into a plain build (GOFLAGS may hold -buildvcs=false).
func TestVersionCommand(t *testing.T) {
	bin := buildScangw(t)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("scangw %s: %v\n%s", arg, err, out)
		}
		head, f := versionFields(t, string(out))
		if !strings.HasPrefix(head, "scangw ") {
			t.Errorf("first line %q", head)
		}
		if f["go"] != runtime.Version() || f["os/arch"] != runtime.GOOS+"/"+runtime.GOARCH || f["commit"] == "" || f["hid"] == "" {
			t.Errorf("scangw %s:\n%s", arg, out)
		}
	}
}
