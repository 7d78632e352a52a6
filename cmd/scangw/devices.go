package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/hidscan"
	"github.com/scangw/scangw/device/usbdev"
)

// deviceSources is where `scangw devices` looks; tests pass fakes.
type deviceSources struct {
	hid    func() ([]hidscan.Info, error)
	serial func() ([]usbdev.Info, error)
	// config is read, when it exists, to show which configured scanner
	// each device is; an explicit --config must exist.
	config string
}

func systemDeviceSources() deviceSources {
	return deviceSources{hid: hidscan.Enumerate, serial: usbdev.List, config: defaultConfigPath}
}

// deviceRow is one line of `scangw devices`, and one object of its --json
// array. Ids are strings like "0x0c2e", the way a config's match writes
// them.
type deviceRow struct {
	Kind         string   `json:"kind"` // hid or serial
	VID          string   `json:"vid"`
	PID          string   `json:"pid"`
	Serial       string   `json:"serial"`
	Manufacturer string   `json:"manufacturer"`
	Product      string   `json:"product"`
	Path         string   `json:"path"`
	Interface    int      `json:"interface"`
	Dev          string   `json:"dev,omitempty"`
	Scanners     []string `json:"scanners"` // ids of the configured scanners it matches
}

// devicesCmd lists the HID devices and USB serial ports present. Problems
// that leave part of the picture (HID unavailable in this build, a broken
// default config) are notes on stderr, not failures: the command is for
// finding out what is plugged in, often on a box that is not set up yet.
func devicesCmd(stdout, stderr io.Writer, args []string, src deviceSources) error {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	cfgPath := fs.String("config", "", "config whose scanners to match (default "+src.config+" when it exists)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return badUsage("%v", err)
	}
	if fs.NArg() > 0 {
		return badUsage("unexpected argument %q", fs.Arg(0))
	}

	var scanners []configs.Scanner
	switch cfg, err := loadDevicesConfig(*cfgPath, src.config); {
	case err != nil && *cfgPath != "":
		return err
	case err != nil:
		fmt.Fprintf(stderr, "note: %v; devices are not matched to configured scanners\n", err)
	case cfg != nil:
		for _, st := range cfg.Stations {
			scanners = append(scanners, st.Scanners...)
		}
	}

	return printDevices(stdout, deviceRows(src, scanners, stderr), *asJSON)
}

// deviceRows lists what src finds, each with the configured scanners it
// is; what cannot be listed is a note on stderr.
func deviceRows(src deviceSources, scanners []configs.Scanner, stderr io.Writer) []deviceRow {
	var rows []deviceRow
	hids, err := src.hid()
	if err != nil {
		fmt.Fprintf(stderr, "note: %v\n", err)
	}
	for _, d := range hids {
		rows = append(rows, deviceRow{
			Kind: "hid", VID: hex16(d.VID), PID: hex16(d.PID),
			Serial: d.Serial, Manufacturer: d.Manufacturer, Product: d.Product,
			Path: d.Path, Interface: d.Interface,
			Scanners: matchingScanners(scanners, func(s configs.Scanner) bool {
				return s.Type == "hid" && hidMatch(s.Match).Matches(d.ID())
			}),
		})
	}
	ttys, err := src.serial()
	if err != nil {
		fmt.Fprintf(stderr, "note: %v\n", err)
	}
	for _, d := range ttys {
		rows = append(rows, deviceRow{
			Kind: "serial", VID: hex16(d.VID), PID: hex16(d.PID),
			Serial: d.Serial, Manufacturer: d.Manufacturer, Product: d.Product,
			Path: d.Path, Interface: d.Interface, Dev: d.Dev,
			Scanners: matchingScanners(scanners, func(s configs.Scanner) bool {
				if s.Type != "serial" {
					return false
				}
				if s.Port != "" {
					return usbdev.SamePort(s.Port, d.Dev)
				}
				return usbMatch(s.Match).Matches(d.ID())
			}),
		})
	}
	return rows
}

// printDevices prints rows as a table, or as a JSON array.
func printDevices(stdout io.Writer, rows []deviceRow, asJSON bool) error {
	if asJSON {
		if rows == nil {
			rows = []deviceRow{} // [] rather than null: still a list to a script
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(stdout, "no scanners found")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tVID\tPID\tSERIAL\tMANUFACTURER\tPRODUCT\tPATH\tIF\tDEV\tSCANNER")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Kind, r.VID, r.PID,
			dash(r.Serial), dash(r.Manufacturer), dash(r.Product), dash(r.Path), r.Interface,
			dash(r.Dev), dash(strings.Join(r.Scanners, ",")))
	}
	return tw.Flush()
}

// loadDevicesConfig loads explicit, or else def when it exists; it returns
// nil, nil when there is nothing to load.
func loadDevicesConfig(explicit, def string) (*configs.Config, error) {
	path := explicit
	if path == "" {
		if _, err := os.Stat(def); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		path = def
	}
	return configs.Load(path)
}

func matchingScanners(scanners []configs.Scanner, match func(configs.Scanner) bool) []string {
	ids := []string{}
	for _, s := range scanners {
		if match(s) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func hex16(n uint16) string { return fmt.Sprintf("0x%04x", n) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// hidMatch and usbMatch convert a validated config match; validation keeps
// the ids within 16 bits.
func hidMatch(m configs.Match) hidscan.Match {
	return hidscan.Match{VID: uint16(m.VID), PID: uint16(m.PID), Serial: m.Serial, Interface: m.Interface, Path: m.Path}
}

func usbMatch(m configs.Match) usbdev.Match {
	return usbdev.Match{VID: uint16(m.VID), PID: uint16(m.PID), Serial: m.Serial, Interface: m.Interface, Path: m.Path}
}
