// Package systemd holds no code: this directory is what a package puts on
// a gateway beside the binary (the unit, sysusers, tmpfiles, the udev rule,
// the maintainer scripts, the monitoring rules and dashboard). Its tests
// check those files with the tools that will read them: systemd-analyze,
// dpkg-deb, promtool.
package systemd
