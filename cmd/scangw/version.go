package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion is set by the Makefile: -ldflags "-X main.buildVersion=...".
var buildVersion string

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

// printVersion is `scangw version`.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, "scangw", version())
}
