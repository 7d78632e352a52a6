package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scangw/scangw/device/hidscan"
	"github.com/scangw/scangw/device/usbdev"
)

// devicesConfig configures one scanner of each way of finding a device:
// hid by match, serial by port, serial by match.
const devicesConfig = `
gateway: {id: gw1, site: s1}
stations:
  - id: st1
    scanners:
      - {id: wedge-1, type: hid, match: {vid: 0x0c2e, pid: 0x0b61, interface: 0}}
      - {id: fixed-1, port: /dev/ttyACM0}
      - {id: fixed-2, match: {vid: 0x0c2e, serial: B2}}
`

func fakeSources(t *testing.T, hidErr error) deviceSources {
	t.Helper()
	return deviceSources{
		hid: func() ([]hidscan.Info, error) {
			if hidErr != nil {
				return nil, hidErr
			}
			return []hidscan.Info{
				{VID: 0x0c2e, PID: 0x0b61, Serial: "H1", Manufacturer: "Honeywell", Product: "Voyager 1470g", Path: "1-1.2:1.0", Interface: 0},
				{VID: 0x046d, PID: 0xc31c, Product: "USB Keyboard", Path: "1-1.5:1.0"},
			}, nil
		},
		serial: func() ([]usbdev.Info, error) {
			return []usbdev.Info{
				{VID: 0x0c2e, PID: 0x0b61, Serial: "A1", Manufacturer: "Honeywell", Product: "Fixed Scanner", Path: "1-1.4:1.0", Dev: "/dev/ttyACM0"},
				{VID: 0x0c2e, PID: 0x0b61, Serial: "B2", Manufacturer: "Honeywell", Product: "Fixed Scanner", Path: "1-1.3:1.0", Dev: "/dev/ttyACM1"},
			}, nil
		},
		// Never the real /etc: a test must not depend on the host.
		config: filepath.Join(t.TempDir(), "absent.yaml"),
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scangw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runDevices(t *testing.T, src deviceSources, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := devicesCmd(&out, &errOut, args, src); err != nil {
		t.Fatalf("devices %q: %v (stderr %q)", args, err, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestDevicesTable(t *testing.T) {
	out, errOut := runDevices(t, fakeSources(t, nil), "--config", writeConfig(t, devicesConfig))
	want := `KIND    VID     PID     SERIAL  MANUFACTURER  PRODUCT        PATH       IF  DEV           SCANNER
hid     0x0c2e  0x0b61  H1      Honeywell     Voyager 1470g  1-1.2:1.0  0   -             wedge-1
hid     0x046d  0xc31c  -       -             USB Keyboard   1-1.5:1.0  0   -             -
serial  0x0c2e  0x0b61  A1      Honeywell     Fixed Scanner  1-1.4:1.0  0   /dev/ttyACM0  fixed-1
serial  0x0c2e  0x0b61  B2      Honeywell     Fixed Scanner  1-1.3:1.0  0   /dev/ttyACM1  fixed-2
`
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	if errOut != "" {
		t.Errorf("stderr = %q, want nothing", errOut)
	}
}

func TestDevicesJSON(t *testing.T) {
	out, _ := runDevices(t, fakeSources(t, nil), "--json", "--config", writeConfig(t, devicesConfig))
	var got []deviceRow
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	want := []deviceRow{
		{Kind: "hid", VID: "0x0c2e", PID: "0x0b61", Serial: "H1", Manufacturer: "Honeywell", Product: "Voyager 1470g", Path: "1-1.2:1.0", Scanners: []string{"wedge-1"}},
		{Kind: "hid", VID: "0x046d", PID: "0xc31c", Product: "USB Keyboard", Path: "1-1.5:1.0", Scanners: []string{}},
		{Kind: "serial", VID: "0x0c2e", PID: "0x0b61", Serial: "A1", Manufacturer: "Honeywell", Product: "Fixed Scanner", Path: "1-1.4:1.0", Dev: "/dev/ttyACM0", Scanners: []string{"fixed-1"}},
		{Kind: "serial", VID: "0x0c2e", PID: "0x0b61", Serial: "B2", Manufacturer: "Honeywell", Product: "Fixed Scanner", Path: "1-1.3:1.0", Dev: "/dev/ttyACM1", Scanners: []string{"fixed-2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON = %+v\nwant %+v", got, want)
	}
	// A device nobody configured still has a list, not null.
	if !strings.Contains(out, `"scanners": []`) {
		t.Errorf("unmatched device lacks \"scanners\": []:\n%s", out)
	}
}

func TestDevicesNone(t *testing.T) {
	src := fakeSources(t, nil)
	src.hid = func() ([]hidscan.Info, error) { return nil, nil }
	src.serial = func() ([]usbdev.Info, error) { return nil, nil }
	if out, _ := runDevices(t, src); out != "no scanners found\n" {
		t.Errorf("table = %q, want %q", out, "no scanners found\n")
	}
	if out, _ := runDevices(t, src, "--json"); out != "[]\n" {
		t.Errorf("--json = %q, want %q", out, "[]\n")
	}
}

// TestDevicesHIDUnavailable is the CGO_ENABLED=0 build: HID is a note,
// serial ports are still listed.
func TestDevicesHIDUnavailable(t *testing.T) {
	unavailable := fmt.Errorf("HID scanners need a cgo build: %w", hidscan.ErrUnavailable)
	out, errOut := runDevices(t, fakeSources(t, unavailable))
	if !strings.Contains(errOut, "note: HID scanners need a cgo build") {
		t.Errorf("stderr = %q, want the HID note", errOut)
	}
	if strings.Contains(out, "hid ") || !strings.Contains(out, "/dev/ttyACM1") {
		t.Errorf("table without HID:\n%s", out)
	}
}

func TestDevicesConfig(t *testing.T) {
	t.Run("default config is used when present", func(t *testing.T) {
		src := fakeSources(t, nil)
		src.config = writeConfig(t, devicesConfig)
		if out, _ := runDevices(t, src); !strings.Contains(out, "fixed-2") {
			t.Errorf("default config not matched:\n%s", out)
		}
	})
	t.Run("broken default config is a note", func(t *testing.T) {
		src := fakeSources(t, nil)
		src.config = writeConfig(t, "stations: nope\n")
		out, errOut := runDevices(t, src)
		if !strings.Contains(errOut, "note: config ") || !strings.Contains(out, "/dev/ttyACM0") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
		}
	})
	t.Run("missing explicit config is an error", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := devicesCmd(&out, &errOut, []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, fakeSources(t, nil))
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Errorf("err = %v, want one naming nope.yaml", err)
		}
	})
}
