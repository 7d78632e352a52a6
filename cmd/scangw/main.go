// Command scangw is the edge gateway daemon for fixed barcode-scan stations.
//
//	scangw run --config FILE     run the daemon
//	scangw check-config FILE     validate a config, list every problem
//	scangw demo                  the real daemon with simulated scanners and an embedded broker (-tags demo)
//	scangw devices [--json]      list the scanners present and what they match
//	scangw rules ...             make keys, sign and check rule sets
//	scangw command sign ...      address, date and sign a downlink command
//	scangw inspect [CODE ...]    parse barcodes (GS1, Digital Link, HIBC, plain) as JSON lines
//	scangw buffer ...            inspect or repair a stopped gateway's buffer
//	scangw bench buffer          measure the buffer on this disk (-tags bench)
//	scangw version               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
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
  scangw rules keygen|sign|check  make keys, sign and check rule sets
  scangw command sign [flags]    address, date and sign a downlink command (mqtt.command_keys)
  scangw buffer stats|peek|export|salvage   inspect or repair a stopped gateway's buffer
  scangw devices [--json]        list USB HID and serial devices present, and the configured scanner each is
  scangw bench buffer [flags]    measure the buffer on this disk; prints JSON
                                 (in builds with -tags bench: make bench-tool)
  scangw version                 print the version
`

const inspectUsage = `usage: scangw inspect [--rules FILE] [CODE ...]

Parses each code (the arguments, or else one per line of standard input)
and prints one JSON object per code: input, valid, errors, symbology,
scheme (gs1, gs1-dl, hibc, plain), ais and named fields (gtin, serial, lot,
expiry ...). Write GS (FNC1) as \x1d or <GS>; an AIM prefix (]d2, ]C1 ...)
may lead. With --rules FILE (a rule set, signed or not) each object also
carries the verdict, reasons and rules_version a station would give.
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
		printVersion(os.Stdout)
		return 0
	case "help", "--help", "-h":
		fmt.Print(usage)
		return 0
	}
	sub, ok := subcommands[cmd]
	if !ok {
		fmt.Fprintf(os.Stderr, "scangw: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	return sub(ctx, args)
}

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
	"buffer": func(ctx context.Context, args []string) int {
		return report("scangw buffer", bufferCmd(ctx, os.Stdout, args))
	},
	"bench": benchCmd,
	"devices": func(_ context.Context, args []string) int {
		return report("scangw devices", devicesCmd(os.Stdout, os.Stderr, args, systemDeviceSources()))
	},
}

// report prints a command's error and returns its exit status.
func report(prefix string, err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, prefix+":", err)
		return 1
	}
	return 0
}

func runCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := fs.String("config", defaultConfigPath, "config file")
	fs.Parse(args)
	cfg, err := configs.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	setMemoryLimit()
	return report("scangw", run(ctx, cfg, newLogger(cfg.Log, os.Stderr)))
}

func checkConfigCmd(_ context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: scangw check-config FILE")
		return 2
	}
	if _, err := configs.Load(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%s: ok\n", args[0])
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
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(os.Stderr, inspectUsage)
		return 2
	}
	in, args, err := newInspector(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scangw inspect:", err)
		return 2
	}
	return report("scangw inspect", in.Run(os.Stdin, args, os.Stdout))
}

func benchCmd(ctx context.Context, args []string) int {
	if len(args) < 1 || args[0] != "buffer" {
		fmt.Fprintln(os.Stderr, "usage: scangw bench buffer [--dir DIR] [--backlog N] [--writers N]")
		return 2
	}
	return report("scangw bench", benchBuffer(ctx, os.Stdout, args[1:]))
}
