package usbdev

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUdevLink(t *testing.T) {
	one := 1
	for _, tc := range []struct {
		name string
		m    Match
		want string // "" means no link
	}{
		{name: "vid pid serial", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1"}, want: "/dev/scangw/0c2e-0b61-A1"},
		{name: "ids are 4-digit lowercase hex", m: Match{VID: 0x5E0, PID: 0xAB, Serial: "x.y_z-1"}, want: "/dev/scangw/05e0-00ab-x.y_z-1"},
		{name: "no serial", m: Match{VID: 0x0c2e, PID: 0x0b61}},
		{name: "no vid", m: Match{PID: 0x0b61, Serial: "A1"}},
		{name: "no pid", m: Match{VID: 0x0c2e, Serial: "A1"}},
		{name: "interface pinned", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1", Interface: &one}},
		{name: "path pinned", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1", Path: "1-1.4:1.0"}},
		{name: "space udev would escape", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A 1"}},
		{name: "slash", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A/1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := UdevLink(tc.m)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("UdevLink(%s) = %q, %v; want %q, %v", tc.m, got, ok, tc.want, tc.want != "")
			}
		})
	}
}

// TestUdevLinkRule keeps UdevLink and the shipped udev rule saying the
// same name: should they drift, every scanner configured by match would
// wait for a link that never appears.
func TestUdevLinkRule(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join("..", "..", "systemd", "60-scangw.rules"))
	if err != nil {
		t.Fatal(err)
	}
	const kernel = `KERNEL=="ttyACM[0-9]*"`
	const name = `SYMLINK+="scangw/$env{ID_VENDOR_ID}-$env{ID_MODEL_ID}-$env{ID_SERIAL_SHORT}"`
	text := strings.ReplaceAll(string(rules), "\\\n", "")
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, kernel) {
			if !strings.Contains(line, name) {
				t.Errorf("the ttyACM rule lacks %s:\n%s", name, line)
			}
			return
		}
	}
	t.Errorf("60-scangw.rules has no rule for %s", kernel)
}

func TestSerialPort(t *testing.T) {
	const link = "/dev/scangw/0c2e-0b61-A1"
	notFound := fmt.Errorf("%w vid=0c2e", ErrNotFound)
	ambiguous := errors.New("2 USB serial ports match vid=0c2e")
	one := 1
	for _, tc := range []struct {
		name       string
		m          Match
		resolved   string // "" means resolve fails with resolveErr
		resolveErr error
		linkThere  bool
		want       string
		wantErr    error
	}{
		{name: "udev link present wins", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1"}, resolved: "/dev/ttyACM0", linkThere: true, want: link},
		{name: "no udev link: the tty now", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1"}, resolved: "/dev/ttyACM0", want: "/dev/ttyACM0"},
		{name: "absent: wait for the udev link", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1"}, resolveErr: notFound, want: link},
		{name: "absent without serial: down", m: Match{VID: 0x0c2e, PID: 0x0b61}, resolveErr: notFound, wantErr: notFound},
		{name: "interface pinned: no link", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1", Interface: &one}, resolveErr: notFound, linkThere: true, wantErr: notFound},
		{name: "serial udev would escape: no link", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A 1"}, resolveErr: notFound, wantErr: notFound},
		{name: "ambiguous: down", m: Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1"}, resolveErr: ambiguous, wantErr: ambiguous},
		{name: "path", m: Match{Path: "1-1.4:1.0"}, resolved: "/dev/ttyACM0", want: "/dev/ttyACM0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolve := func(m Match) (string, error) {
				if m != tc.m {
					t.Errorf("resolve(%s), want %s", m, tc.m)
				}
				if tc.resolved == "" {
					return "", tc.resolveErr
				}
				return tc.resolved, nil
			}
			exists := func(name string) bool { return tc.linkThere && name == link }
			got, err := serialPort(tc.m, resolve, exists)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("serialPort = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestFindSerial(t *testing.T) {
	m := Match{VID: 0x0c2e, PID: 0x0b61, Serial: "A1"}
	notFound := fmt.Errorf("%w vid=0c2e", ErrNotFound)
	for _, tc := range []struct {
		name     string
		m        Match
		resolved string // "" means resolve fails with notFound
		exists   bool   // whether every path exists
		want     string
		wantOK   bool
		wantLog  string
	}{
		{name: "found", m: m, resolved: "/dev/ttyACM0", exists: true, want: "/dev/scangw/0c2e-0b61-A1", wantOK: true,
			wantLog: `level=INFO msg="serial scanner found by match" match="vid=0c2e pid=0b61 serial=\"A1\"" port=/dev/scangw/0c2e-0b61-A1`},
		{name: "waiting for the udev link", m: m, want: "/dev/scangw/0c2e-0b61-A1", wantOK: true,
			wantLog: `level=WARN msg="serial scanner not plugged in; waiting for its udev link" match="vid=0c2e pid=0b61 serial=\"A1\"" port=/dev/scangw/0c2e-0b61-A1`},
		{name: "stays down", m: Match{VID: 0x0c2e}, wantOK: false,
			wantLog: `level=ERROR msg="serial scanner not found by match; it stays down until scangw restarts" match="vid=0c2e" err="no USB serial port matches vid=0c2e"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			resolve := func(Match) (string, error) {
				if tc.resolved == "" {
					return "", notFound
				}
				return tc.resolved, nil
			}
			exists := func(string) bool { return tc.exists }
			got, ok := findSerial(tc.m, log, resolve, exists)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("findSerial = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
			if line := strings.TrimSuffix(buf.String(), "\n"); line != tc.wantLog {
				t.Errorf("log:\n%s\nwant:\n%s", line, tc.wantLog)
			}
		})
	}
}

func TestSamePort(t *testing.T) {
	dir := t.TempDir()
	tty := filepath.Join(dir, "ttyACM0")
	if err := os.WriteFile(tty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	byID := filepath.Join(dir, "usb-Honeywell_Fixed_Scanner_A1-if00")
	if err := os.Symlink("ttyACM0", byID); err != nil {
		t.Fatal(err)
	}
	// EvalSymlinks of a link under a symlinked TempDir resolves that too.
	real, err := filepath.EvalSymlinks(tty)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, port, dev string
		want            bool
	}{
		{name: "same path", port: "/dev/ttyACM0", dev: "/dev/ttyACM0", want: true},
		{name: "unclean path", port: "/dev//ttyACM0", dev: "/dev/ttyACM0", want: true},
		{name: "other tty", port: "/dev/ttyACM1", dev: "/dev/ttyACM0"},
		{name: "symlink to dev", port: byID, dev: real, want: true},
		{name: "symlink to another", port: byID, dev: "/dev/ttyACM1"},
		{name: "absent link", port: filepath.Join(dir, "absent"), dev: real},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SamePort(tc.port, tc.dev); got != tc.want {
				t.Errorf("SamePort(%q, %q) = %v, want %v", tc.port, tc.dev, got, tc.want)
			}
		})
	}
}
