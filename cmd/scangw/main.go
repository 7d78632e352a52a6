// Command scangw is the edge gateway daemon for fixed barcode-scan stations.
//
//	scangw run --config FILE     run the daemon
//	scangw check-config FILE     validate a config, list every problem
//	scangw demo                  the real daemon with simulated scanners and an embedded broker (-tags demo)
//	scangw devices [--json]      list the scanners present and what they match
//	scangw rules ...             make keys, sign and check rule sets
//	scangw command sign ...      address, date and sign a downlink command
//	scangw inspect [CODE ...]    parse barcodes (GS1, Digital Link, HIBC, plain) as JSON lines
//	scangw serial next|reprint   assign a serial at the running gateway, or print one again
//	scangw label preview         render a label template's DataMatrix to PNG
//	scangw buffer ...            inspect or repair a stopped gateway's buffer
//	scangw bench buffer          measure the buffer on this disk (-tags bench)
//	scangw version               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/scangw/scangw/configs"
)

const usage = `scangw — edge gateway for serial-number scan stations

Usage:
  scangw run [--config FILE]     run the daemon (default config /etc/scangw/scangw.yaml)
  scangw check-config FILE       validate a config file; exit 1 listing every problem
  scangw demo [--scans N]        run the daemon with simulated scanners and an embedded broker
                                 (in builds with -tags demo: make demo)
  scangw inspect [CODE ...]      parse barcodes (arguments, or stdin lines) and print one JSON object each
                                 (--rules FILE: judge them; --config FILE: know its serial schemes)
  scangw rules keygen|sign|check  make keys, sign and check rule sets
  scangw command sign [flags]    address, date and sign a downlink command (mqtt.command_keys)
  scangw tail --broker URL       print the gateways' events live, deduplicated, with gap warnings (--key: ask for resends)
  scangw serial next|reprint --station ID   assign a serial at a running gateway and print its label, or print one again
  scangw label preview --serial S   render a label's GS1 DataMatrix to PNG, to check a template without a printer
  scangw buffer stats|peek|export|salvage   inspect or repair a stopped gateway's buffer
  scangw devices [--json]        list USB HID and serial devices present, and the configured scanner each is
  scangw bench buffer [flags]    measure the buffer on this disk; prints JSON
  scangw bench pipeline [flags]  measure the daemon's CPU, latency, syscalls and allocations per scan; prints JSON
                                 (in builds with -tags bench: make bench-tool)
  scangw version                 print the version
`

const inspectUsage = `usage: scangw inspect [--rules FILE] [--config FILE] [CODE ...]

Parses each code (the arguments, or else one per line of standard input)
and prints one JSON object per code: input, valid, errors, symbology,
scheme (gs1, gs1-dl, hibc, plain), ais and named fields (gtin, serial, lot,
expiry ...). Write GS (FNC1) as \x1d or <GS>; an AIM prefix (]d2, ]C1 ...)
may lead. With --rules FILE (a rule set, signed or not) each object also
carries the verdict, reasons and rules_version a station would give.
With --config FILE (a gateway's config) the code's serial (AI 21, the
HIBC serial, or a plain code) is checked against its serial schemes: one
that fits carries serial_scheme and serial_counter; one with a scheme's
shape but a wrong check character is the error bad_serial_check.
Exit 0 even for invalid codes.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1], os.Args[2:]))
}

const defaultConfigPath = "/etc/scangw/scangw.yaml"

// errNotBuilt explains how to get a tool this binary was built without:
// the demo and the bench are not part of the daemon a site runs.
func errNotBuilt(tool, tag string) error {
	return fmt.Errorf("this scangw was built without the %s; build or run it with -tags %s (see README)", tool, tag)
}

// defaultMemoryLimit is the soft limit of the Go heap when GOMEMLIMIT is
// not set: it keeps the daemon small on a 1 GB board, where the page cache
// is better spent on the buffer's files.
const defaultMemoryLimit = 64 << 20

func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

func dispatch(ctx context.Context, cmd string, args []string) int {
	switch cmd {
	case "version", "--version", "-v":
		if len(args) > 0 && !wantsHelp(args) {
			fmt.Fprint(os.Stderr, usages["version"])
			return 2
		}
		if !wantsHelp(args) {
			printVersion(os.Stdout)
			return 0
		}
	case "help", "--help", "-h", "-help":
		fmt.Print(usage)
		return 0
	}
	sub, ok := subcommands[cmd]
	if !ok && cmd != "version" {
		fmt.Fprintf(os.Stderr, "scangw: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if wantsHelp(args) {
		fmt.Print(usages[cmd])
		return 0
	}
	return sub(ctx, args)
}

// wantsHelp reports whether a command line asks for the command's usage.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// usages are the commands' --help texts (stdout, exit 0); a command line a
// command cannot take prints its usage to stderr and exits 2.
var usages = map[string]string{
	"run":          runUsage,
	"check-config": checkConfigUsage,
	"demo":         demoUsage,
	"inspect":      inspectUsage,
	"rules":        rulesUsage,
	"command":      commandUsage,
	"tail":         tailUsage,
	"buffer":       bufferUsage,
	"bench":        benchUsage,
	"devices":      devicesUsage,
	"serial":       serialUsage,
	"label":        labelUsage,
	"version":      "usage: scangw version\n\nPrints the version, the commit and Go version it was built from, the OS and\narchitecture, and whether USB HID scanners are built in (cgo).\n",
}

const runUsage = `usage: scangw run [--config FILE]

Runs the gateway. FILE (default /etc/scangw/scangw.yaml) is the config;
the *.yaml files in conf.d/ beside it are merged over it in name order.
${VAR} and ${VAR:-default} in values come from the environment.

Signals: SIGHUP (systemctl reload scangw) re-reads the config and applies
stations, scanners, rules.file, log.level and http live, or refuses it
whole and keeps the running one (a config with problems, or a change of
buffer, gateway, mqtt, rules.keys, rules.allow_unsigned, log.format,
serials or printers, which need a restart). SIGTERM stops the gateway
cleanly.
`

const checkConfigUsage = `usage: scangw check-config [--print] [FILE]

Validates FILE (default /etc/scangw/scangw.yaml) merged with the *.yaml
files in conf.d/ beside it, as scangw run would read them, and prints its
hash; exit 1 listing every problem, each with its file and line.
--print prints the merged config with every default filled in and
secrets (mqtt.password, a password in mqtt.broker, http.token) redacted.
`

const demoUsage = `usage: scangw demo [--scans N] [--dir DIR]

Runs the real daemon with simulated scanners and an embedded broker (in
builds with -tags demo: make demo). --scans stops after N scans per
simulated scanner; --dir keeps the buffer in DIR.
`

const benchUsage = `usage: scangw bench buffer [--dir DIR] [--backlog N] [--writers N]
       scangw bench pipeline [--rate N] [--seconds N] [--scanners N] [--burst N]
                             [--cpuprofile FILE] [--sync-delay D] [--syscalls=false]

bench buffer measures the buffer on this disk; bench pipeline runs the
daemon as a child process with pty scanners and a real Mosquitto and
measures its CPU, latency, system calls and allocations per scan (see
README). Both print JSON (in builds with -tags bench: make bench-tool).
`

const devicesUsage = `usage: scangw devices [--json] [--config FILE]

Lists the USB HID devices and serial ports present, and which configured
scanner each one is (FILE, default /etc/scangw/scangw.yaml when it exists).
`

// usageError is a command line a command cannot take: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func badUsage(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// subcommands are scangw's commands; each returns the exit status.
var subcommands = map[string]func(ctx context.Context, args []string) int{
	"run":          runCmd,
	"check-config": checkConfigCmd,
	"demo":         demoCmd,
	"inspect":      inspectCmd,
	"rules": func(_ context.Context, args []string) int {
		return report("scangw rules", rulesCmd(os.Stdout, args))
	},
	"command": func(_ context.Context, args []string) int {
		return report("scangw command", commandCmd(os.Stdout, os.Stdin, args, time.Now()))
	},
	"tail": func(ctx context.Context, args []string) int {
		return report("scangw tail", tailCmd(ctx, os.Stdout, os.Stderr, args))
	},
	"buffer": func(ctx context.Context, args []string) int {
		return report("scangw buffer", bufferCmd(ctx, os.Stdout, args))
	},
	"serial": func(ctx context.Context, args []string) int {
		return report("scangw serial", serialCmd(ctx, os.Stdout, args))
	},
	"label": func(_ context.Context, args []string) int {
		return report("scangw label", labelCmd(os.Stdout, args))
	},
	"bench": benchCmd,
	"devices": func(_ context.Context, args []string) int {
		return report("scangw devices", devicesCmd(os.Stdout, os.Stderr, args, systemDeviceSources()))
	},
}

// report prints a command's error and returns its exit status: 2 for a
// command line it cannot take, 1 for a failure.
func report(prefix string, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, prefix+":", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func runCmd(ctx context.Context, args []string) int {
	// Before anything else: SIGHUP's default is to end the process, and a
	// reload sent while the daemon starts must not.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := fs.String("config", defaultConfigPath, "config file; the *.yaml files in conf.d/ beside it are merged over it")
	fs.Parse(args)
	cfg, err := configs.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	setMemoryLimit()
	log, level := newLogger(cfg.Log, os.Stderr)
	r := &reloads{signals: hup, load: func() (*configs.Config, error) { return configs.Load(*path) }, level: level}
	return report("scangw", runReloading(ctx, cfg, log, r))
}

// newLogger makes the daemon's logger; a reload sets the level it returns.
func newLogger(c configs.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(logLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// logLevel is a validated log.level as a slog level.
func logLevel(s string) slog.Level {
	var l slog.Level
	l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l
}

func checkConfigCmd(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	print := fs.Bool("print", false, "print the merged config with every default, secrets redacted")
	if err := fs.Parse(args); err != nil || fs.NArg() > 1 {
		fmt.Fprint(os.Stderr, checkConfigUsage)
		return 2
	}
	path := defaultConfigPath
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	files, err := configs.Files(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *print {
		out, err := cfg.Redacted().YAML()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("# scangw config from %s\n# hash: %s\n%s", strings.Join(files, ", "), cfg.Hash(), out)
		return 0
	}
	more := ""
	if n := len(files) - 1; n > 0 {
		more = fmt.Sprintf(" (+%d in %s)", n, filepath.Join(filepath.Dir(path), "conf.d"))
	}
	fmt.Printf("%s%s: ok, hash %s\n", path, more, cfg.Hash())
	return 0
}

func demoCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	scans := fs.Int("scans", 0, "stop after this many scans per simulated scanner (0: run until interrupted)")
	dir := fs.String("dir", "", "buffer directory (default: a temporary one)")
	fs.Parse(args)
	if err := demo(ctx, os.Stdout, *scans, *dir); err != nil && !errors.Is(err, context.Canceled) {
		return report("scangw demo", err)
	}
	return 0
}

func inspectCmd(_ context.Context, args []string) int {
	in, args, err := newInspector(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scangw inspect:", err)
		return 2
	}
	return report("scangw inspect", in.Run(os.Stdin, args, os.Stdout))
}

func benchCmd(ctx context.Context, args []string) int {
	if len(args) >= 1 && args[0] == "pipeline" {
		return report("scangw bench", benchPipeline(ctx, os.Stdout, args[1:]))
	}
	if len(args) < 1 || args[0] != "buffer" {
		fmt.Fprint(os.Stderr, benchUsage)
		return 2
	}
	return report("scangw bench", benchBuffer(ctx, os.Stdout, args[1:]))
}
