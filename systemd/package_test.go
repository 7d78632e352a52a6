package systemd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// packageArch is what each .deb must hold for one Debian architecture.
type packageArch struct {
	deb     string      // Debian architecture
	machine elf.Machine // of /usr/bin/scangw
	interp  string      // the dynamic loader: proves a cgo (HID) build
	goarch  string      // as `scangw version` prints it
	qemu    []string    // runs the binary on this host; nil: natively
}

var packageArches = []packageArch{
	{"amd64", elf.EM_X86_64, "/lib64/ld-linux-x86-64.so.2", "linux/amd64", nil},
	{"arm64", elf.EM_AARCH64, "/lib/ld-linux-aarch64.so.1", "linux/arm64",
		[]string{"qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"}},
	{"armhf", elf.EM_ARM, "/lib/ld-linux-armhf.so.3", "linux/arm (GOARM=7)",
		[]string{"qemu-arm-static", "-L", "/usr/arm-linux-gnueabihf"}},
}

// packageFiles is every path the package must ship, with its mode as
// `dpkg-deb --contents` prints it: the conffile is 0640 because it may
// hold broker credentials.
var packageFiles = map[string]string{
	"./usr/bin/scangw":                          "-rwxr-xr-x",
	"./usr/lib/systemd/system/scangw.service":   "-rw-r--r--",
	"./usr/lib/sysusers.d/scangw.conf":          "-rw-r--r--",
	"./usr/lib/tmpfiles.d/scangw.conf":          "-rw-r--r--",
	"./usr/lib/udev/rules.d/60-scangw.rules":    "-rw-r--r--",
	"./etc/scangw/scangw.yaml":                  "-rw-r-----",
	"./etc/scangw/conf.d/":                      "drwxr-xr-x",
	"./usr/share/scangw/scangw.yaml.example":    "-rw-r--r--",
	"./usr/share/doc/scangw/README.md":          "-rw-r--r--",
	"./usr/share/doc/scangw/copyright":          "-rw-r--r--",
	"./usr/share/doc/scangw/examples/full.yaml": "-rw-r--r--",
}

// packageSources are the repository files shipped unchanged.
var packageSources = map[string]string{
	"usr/lib/systemd/system/scangw.service": "scangw.service",
	"usr/lib/sysusers.d/scangw.conf":        "scangw.sysusers",
	"usr/lib/tmpfiles.d/scangw.conf":        "scangw.tmpfiles",
	"usr/lib/udev/rules.d/60-scangw.rules":  "60-scangw.rules",
	"etc/scangw/scangw.yaml":                "../configs/example.yaml",
	"usr/share/scangw/scangw.yaml.example":  "../configs/example.yaml",
	"usr/share/doc/scangw/copyright":        "../LICENSE",
}

// The libraries the binary may link, and the package that provides each
// (cgo links the loader itself on amd64 and armhf, for __tls_get_addr).
var packageLibs = map[string]string{
	"libc.so.6":             "libc6",
	"ld-linux-x86-64.so.2":  "libc6",
	"ld-linux-aarch64.so.1": "libc6",
	"ld-linux-armhf.so.3":   "libc6",
}

func packageTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is needed to check the packages (make deps installs it): %v", name, err)
	}
}

func packageRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// packageDir returns the directory holding the three .debs: the one `make
// test` built (SCANGW_PACKAGES), or else ones built here with `make
// package`, so that a plain `go test` checks the packaging too.
func packageDir(t *testing.T) string {
	if dir := os.Getenv("SCANGW_PACKAGES"); dir != "" {
		return dir
	}
	dir := t.TempDir()
	t.Logf("SCANGW_PACKAGES is not set: building them with make package DIST=%s", dir)
	start := time.Now()
	out, err := exec.Command("make", "-C", "..", "package", "DIST="+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	t.Logf("make package took %v", time.Since(start).Round(time.Second))
	return dir
}

func TestPackages(t *testing.T) {
	for _, tool := range []string{"make", "dpkg", "dpkg-deb", "qemu-aarch64-static", "qemu-arm-static"} {
		packageTool(t, tool)
	}
	dir := packageDir(t)
	debs := map[string]string{}
	version := ""
	for _, a := range packageArches {
		m, _ := filepath.Glob(filepath.Join(dir, "scangw_*_"+a.deb+".deb"))
		if len(m) != 1 {
			t.Fatalf("%s: want one scangw_<version>_%s.deb, found %q", dir, a.deb, m)
		}
		debs[a.deb] = m[0]
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), "scangw_"), "_"+a.deb+".deb")
		if version != "" && v != version {
			t.Fatalf("packages of two versions in %s: %s and %s", dir, version, v)
		}
		version = v
	}
	packageRun(t, "dpkg", "--validate-version", version)
	t.Logf("version %s", version)

	for _, a := range packageArches {
		t.Run(a.deb, func(t *testing.T) {
			root := packageCheckDeb(t, debs[a.deb], a, version)
			packageRunBinary(t, root, a, version)
		})
	}
	t.Run("install", func(t *testing.T) { packageInstall(t, debs["amd64"], version) })
}

// packageCheckDeb checks the control fields, conffiles, scripts and
// contents of one .deb and returns the directory it was extracted to.
func packageCheckDeb(t *testing.T, deb string, a packageArch, version string) string {
	info := packageRun(t, "dpkg-deb", "--info", deb)
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		// dpkg-deb marks an executable member with "*"; one that is not
		// executable is not run at all.
		if !regexp.MustCompile(`\*\s+` + script + `\s+#!/bin/sh\n`).MatchString(info) {
			t.Errorf("%s is missing or not an executable /bin/sh script:\n%s", script, info)
		}
	}
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends"} {
		fields[f] = strings.TrimSpace(packageRun(t, "dpkg-deb", "--field", deb, f))
	}
	want := map[string]string{"Package": "scangw", "Version": version, "Architecture": a.deb}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s: %q, want %q", k, fields[k], v)
		}
	}

	ctrl := t.TempDir()
	packageRun(t, "dpkg-deb", "--control", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil || string(conffiles) != "/etc/scangw/scangw.yaml\n" {
		t.Errorf("conffiles %q (%v), want exactly /etc/scangw/scangw.yaml", conffiles, err)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		packageSame(t, filepath.Join(ctrl, script), filepath.Join("deb", script))
	}

	listed := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(packageRun(t, "dpkg-deb", "--contents", deb)))
	for sc.Scan() {
		// drwxr-xr-x root/root 0 2026-12-04 01:12 ./etc/scangw/
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", sc.Text())
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
		}
		listed[f[5]] = f[0]
	}
	for path, mode := range packageFiles {
		if got, ok := listed[path]; !ok {
			t.Errorf("%s is not in the package", path)
		} else if got != mode {
			t.Errorf("%s has mode %s, want %s", path, got, mode)
		}
	}

	root := t.TempDir()
	packageRun(t, "dpkg-deb", "--extract", deb, root)
	for dst, src := range packageSources {
		packageSame(t, filepath.Join(root, dst), src)
	}
	packageCheckELF(t, filepath.Join(root, "usr/bin/scangw"), a, fields["Depends"])
	return root
}

func packageSame(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Error(err)
		return
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// packageCheckELF checks that the binary is for the package's machine,
// dynamically linked (a CGO_ENABLED=0 build is static and has no HID),
// and that Depends covers every library and glibc symbol version it uses.
func packageCheckELF(t *testing.T, bin string, a packageArch, depends string) {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	if f.Machine != a.machine {
		t.Errorf("%s is for %v, want %v", bin, f.Machine, a.machine)
	}
	if a.machine == elf.EM_ARM {
		// debug/elf does not expose e_flags: at 0x24 in a 32-bit header.
		raw, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if flags := f.ByteOrder.Uint32(raw[0x24:]); flags&0x400 == 0 { // EF_ARM_ABI_FLOAT_HARD
			t.Errorf("%s is not a hard-float binary (e_flags %#x): armhf needs one", bin, flags)
		}
	}
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp != a.interp {
		t.Errorf("%s: loader %q, want %q (a cgo build)", bin, interp, a.interp)
	}

	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		pkg, ok := packageLibs[lib]
		if !ok {
			t.Errorf("%s links %s, which no Depends entry is known for: add it to nfpm.yaml and packageLibs", bin, lib)
		} else if !regexp.MustCompile(`(^|, )` + regexp.QuoteMeta(pkg) + `\b`).MatchString(depends) {
			t.Errorf("%s links %s but Depends %q lacks %s", bin, lib, depends, pkg)
		}
	}
	syms, err := f.ImportedSymbols()
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, s := range syms {
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok && v != "PRIVATE" && packageVersionLess(newest, v) {
			newest = v
		}
	}
	if newest == "" {
		t.Fatalf("%s imports no versioned glibc symbol: not the cgo build", bin)
	}
	if want := "libc6 (>= " + newest + ")"; !strings.Contains(depends, want) {
		t.Errorf("Depends %q, want %q: the binary uses GLIBC_%s symbols", depends, want, newest)
	}
}

func packageVersionLess(a, b string) bool {
	if a == "" {
		return true
	}
	return exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil
}

// packageRunBinary runs the packaged binary (under qemu-user for arm) on
// the packaged example config, the way a fresh box first sees them.
func packageRunBinary(t *testing.T, root string, a packageArch, version string) {
	run := func(args ...string) (string, error) {
		argv := append(slices.Clone(a.qemu), filepath.Join(root, "usr/bin/scangw"))
		argv = append(argv, args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return string(out), err
	}
	out, err := run("version")
	if err != nil {
		t.Fatalf("scangw version: %v\n%s", err, out)
	}
	t.Logf("scangw version (%s):\n%s", a.deb, out)
	lines := strings.Split(out, "\n")
	if lines[0] != "scangw "+version {
		t.Errorf("first line %q, want %q: the binary must carry the package version", lines[0], "scangw "+version)
	}
	for _, want := range []string{
		"\n  os/arch: " + a.goarch + "\n",
		"\n  hid:     yes (cgo)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scangw version lacks %q", want)
		}
	}
	if !regexp.MustCompile(`\n  commit:  [0-9a-f]{12}(-dirty)? \(`).MatchString(out) {
		t.Errorf("scangw version names no commit and time")
	}

	out, err = run("check-config", filepath.Join(root, "etc/scangw/scangw.yaml"))
	if err != nil {
		t.Errorf("scangw check-config of the packaged example: %v\n%s", err, out)
	}
}

// packageHostFiles are what an install on this host would create; an
// install into a scratch root must leave every one as it was. The user
// databases and dpkg's own are compared by their scangw entries only:
// other work on the machine may install packages meanwhile.
var packageHostFiles = []string{
	"/etc/scangw", "/var/lib/scangw", "/usr/bin/scangw",
	"/usr/lib/systemd/system/scangw.service", "/lib/systemd/system/scangw.service",
	"/etc/systemd/system/multi-user.target.wants/scangw.service",
	"/usr/lib/udev/rules.d/60-scangw.rules",
}

func packageHostState(t *testing.T) map[string]string {
	state := map[string]string{}
	for _, db := range []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"} {
		b, err := os.ReadFile(db)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		var mine []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "scangw") {
				mine = append(mine, l)
			}
		}
		state[db] = strings.Join(mine, "\n")
	}
	// Exit status 1 and "no packages found" when it is not installed.
	out, _ := exec.Command("dpkg-query", "--show", "--showformat=${db:Status-Abbrev} ${Version}", "scangw").CombinedOutput()
	state["dpkg scangw"] = string(out)
	for _, p := range packageHostFiles {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			state[p] = "absent"
		case fi.IsDir():
			state[p] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			state[p] = hex.EncodeToString(sum[:])
		}
	}
	return state
}

// packageInstall installs, upgrades, removes and purges the amd64 package
// in a scratch root the way an image build does (dpkg --root with
// --force-script-chrootless): the maintainer scripts get DPKG_ROOT and
// must do their work under it, never on this host.
func packageInstall(t *testing.T, deb, version string) {
	root := filepath.Join(t.TempDir(), "root")
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, d := range []string{"info", "updates"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available"} {
		if err := os.WriteFile(filepath.Join(admin, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host := packageHostState(t)
	dpkg := func(args ...string) string {
		t.Helper()
		argv := append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends",
			"--force-confdef", "--force-confold", "--log=/dev/null"}, args...)
		cmd := exec.Command("dpkg", argv...)
		// dpkg looks for ldconfig and start-stop-daemon on PATH.
		cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
		out, err := cmd.CombinedOutput()
		t.Logf("dpkg %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("dpkg %s: %v", strings.Join(args, " "), err)
		}
		if now := packageHostState(t); !maps.Equal(now, host) {
			t.Fatalf("dpkg %s under --root changed this host: before %v, after %v", strings.Join(args, " "), host, now)
		}
		return string(out)
	}
	in := func(p string) string { return filepath.Join(root, p) }
	conf := in("etc/scangw/scangw.yaml")
	wants := in("etc/systemd/system/multi-user.target.wants/scangw.service")
	state := func() string {
		t.Helper()
		return packageRun(t, "dpkg-query", "--admindir="+admin, "--showformat=${Version} ${db:Status-Abbrev}", "--show", "scangw")
	}

	// A first install with the example config: user and group, the
	// conffile theirs, and neither enabled nor started.
	out := dpkg("--install", deb)
	if got := state(); got != version+" ii " {
		t.Errorf("after install: %q, want %q", got, version+" ii ")
	}
	for _, f := range []string{"usr/bin/scangw", "usr/lib/systemd/system/scangw.service", "usr/lib/udev/rules.d/60-scangw.rules", "etc/scangw/conf.d"} {
		if _, err := os.Stat(in(f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	uid, gid := packageUser(t, root)
	fi, err := os.Stat(conf)
	if err != nil {
		t.Fatal(err)
	}
	if st := packageOwner(fi); st != fmt.Sprintf("0:%d %v", gid, fs.FileMode(0o640)) {
		t.Errorf("%s: %s, want 0:%d (scangw) %v", conf, st, gid, fs.FileMode(0o640))
	}
	t.Logf("scangw is uid %d gid %d in the scratch root", uid, gid)
	if !strings.Contains(out, "scangw: not started: /etc/scangw/scangw.yaml") {
		t.Errorf("install with the unedited example printed no hint")
	}
	if _, err := os.Lstat(wants); err == nil {
		t.Errorf("the unit was enabled with the unedited example config")
	}

	// Upgrade to a newer version: the edited conffile stays, the upgrade
	// enables nothing the admin did not.
	edited := []byte(strings.Replace(packageRead(t, conf), "gw-dock-01", "gw-test-07", 1))
	if err := os.WriteFile(conf, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	next := version + "+next1"
	dpkg("--install", packageRebuild(t, deb, next))
	if got := state(); got != next+" ii " {
		t.Errorf("after upgrade: %q, want %q", got, next+" ii ")
	}
	if got := packageRead(t, conf); got != string(edited) {
		t.Errorf("the upgrade replaced the edited conffile:\n%s", got)
	}
	if _, err := os.Lstat(wants); err == nil {
		t.Errorf("the upgrade enabled the unit")
	}

	// Remove keeps the config and the buffer (it may hold unsent scans);
	// purge deletes both and warns.
	if err := os.MkdirAll(in("var/lib/scangw"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in("var/lib/scangw/000001.vlog"), []byte("unsent"), 0o640); err != nil {
		t.Fatal(err)
	}
	out = dpkg("--remove", "scangw")
	if _, err := os.Stat(in("usr/bin/scangw")); err == nil {
		t.Errorf("remove left /usr/bin/scangw")
	}
	if got := packageRead(t, conf); got != string(edited) {
		t.Errorf("remove changed the conffile")
	}
	if _, err := os.Stat(in("var/lib/scangw/000001.vlog")); err != nil {
		t.Errorf("remove deleted the buffer: %v", err)
	}
	if !strings.Contains(out, "kept /var/lib/scangw") {
		t.Errorf("remove did not say it kept the buffer")
	}
	out = dpkg("--purge", "scangw")
	for _, f := range []string{"etc/scangw/scangw.yaml", "var/lib/scangw"} {
		if _, err := os.Lstat(in(f)); err == nil {
			t.Errorf("purge left /%s", f)
		}
	}
	if !strings.Contains(out, "WARNING: deleting /var/lib/scangw") {
		t.Errorf("purge deleted the buffer without a warning")
	}

	// A fleet tool that lays down its config before installing gets the
	// unit enabled (no systemd runs in the scratch root, so nothing starts).
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	out = dpkg("--install", deb)
	if strings.Contains(out, "not started") {
		t.Errorf("install over a prepared config printed the unedited-example hint")
	}
	if got := packageRead(t, conf); got != string(edited) {
		t.Errorf("install replaced the prepared config")
	}
	if dst, err := os.Readlink(wants); err != nil || dst != "/usr/lib/systemd/system/scangw.service" {
		t.Errorf("unit not enabled in the scratch root: %q %v", dst, err)
	}
	dpkg("--purge", "scangw")
	if _, err := os.Lstat(wants); err == nil {
		t.Errorf("purge left the enable symlink")
	}
	// Debian keeps system users on purge: files elsewhere may be theirs.
	if u, _ := packageUser(t, root); u != uid {
		t.Errorf("the user changed over purge and reinstall: uid %d, then %d", uid, u)
	}
}

// packageRebuild returns deb repacked with another version: an upgrade
// needs a newer package, and building one would take a second make run.
func packageRebuild(t *testing.T, deb, version string) string {
	dir := filepath.Join(t.TempDir(), "pkg")
	packageRun(t, "dpkg-deb", "--raw-extract", deb, dir)
	control := filepath.Join(dir, "DEBIAN", "control")
	b := packageRead(t, control)
	re := regexp.MustCompile(`(?m)^Version: .*$`)
	if !re.MatchString(b) {
		t.Fatalf("no Version in %s", control)
	}
	if err := os.WriteFile(control, []byte(re.ReplaceAllLiteralString(b, "Version: "+version)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(filepath.Dir(dir), "scangw_"+version+"_amd64.deb")
	packageRun(t, "dpkg-deb", "--root-owner-group", "--build", dir, out)
	return out
}

// packageUser returns the scangw user's uid and gid in the scratch root,
// checking it is in dialout (serial scanners) and cannot log in.
func packageUser(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	for _, l := range strings.Split(packageRead(t, filepath.Join(root, "etc/passwd")), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 7 && f[0] == "scangw" {
			if f[5] != "/var/lib/scangw" || !strings.HasSuffix(f[6], "nologin") {
				t.Errorf("passwd entry %q: want home /var/lib/scangw and no login shell", l)
			}
			fmt.Sscan(f[2], &uid)
			fmt.Sscan(f[3], &gid)
		}
	}
	if uid == 0 {
		t.Fatalf("no scangw user in %s/etc/passwd: postinst did not create it under DPKG_ROOT", root)
	}
	dialout := false
	for _, l := range strings.Split(packageRead(t, filepath.Join(root, "etc/group")), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 4 && f[0] == "dialout" && slices.Contains(strings.Split(f[3], ","), "scangw") {
			dialout = true
		}
	}
	if !dialout {
		t.Errorf("scangw is not in group dialout in %s/etc/group", root)
	}
	return uid, gid
}

func packageRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func packageOwner(fi fs.FileInfo) string {
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d %v", st.Uid, st.Gid, fi.Mode().Perm())
}
