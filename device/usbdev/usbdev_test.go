package usbdev

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeSysfs builds, under a temporary root, the parts of sysfs that List
// reads, laid out as Linux lays them out:
//
//   - ttyACM0, ttyACM1: two identical cdc_acm scanners (device link to the
//     USB interface), told apart only by serial number and port;
//   - ttyUSB0: an FTDI adapter without a serial number (device link to the
//     usb-serial port directory inside the interface);
//   - ttyS0: an on-board UART (device link to a platform device);
//   - tty0: a virtual console (no device link at all).
func fakeSysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	usb := filepath.Join(root, "devices", "pci0000:00", "0000:00:14.0", "usb1")
	write := func(dir string, attrs map[string]string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range attrs {
			if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// tty adds class/tty/<name> -> <ttyDir> and <ttyDir>/device -> target.
	tty := func(name, ttyDir, target string) {
		t.Helper()
		write(ttyDir, map[string]string{"dev": "166:0"})
		if target != "" {
			rel, err := filepath.Rel(ttyDir, target)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(rel, filepath.Join(ttyDir, "device")); err != nil {
				t.Fatal(err)
			}
		}
		class := filepath.Join(root, "class", "tty")
		write(class, nil)
		rel, err := filepath.Rel(class, ttyDir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, filepath.Join(class, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct{ port, serial, tty string }{
		{"1-1.4", "A1", "ttyACM0"},
		{"1-1.3", "B2", "ttyACM1"},
	} {
		dev := filepath.Join(usb, "1-1", d.port)
		write(dev, map[string]string{"idVendor": "0c2e", "idProduct": "0b61", "serial": d.serial,
			"manufacturer": "Honeywell", "product": "Fixed Scanner"})
		iface := filepath.Join(dev, d.port+":1.0")
		write(iface, map[string]string{"bInterfaceNumber": "00"})
		tty(d.tty, filepath.Join(iface, "tty", d.tty), iface)
	}

	ftdi := filepath.Join(usb, "1-2")
	write(ftdi, map[string]string{"idVendor": "0403", "idProduct": "6001", "product": "FT232R USB UART"})
	iface := filepath.Join(ftdi, "1-2:1.1")
	write(iface, map[string]string{"bInterfaceNumber": "01"})
	port := filepath.Join(iface, "ttyUSB0")
	write(port, nil)
	tty("ttyUSB0", filepath.Join(port, "tty", "ttyUSB0"), port)

	uart := filepath.Join(root, "devices", "platform", "serial8250")
	write(uart, map[string]string{"driver_override": "(null)"})
	tty("ttyS0", filepath.Join(uart, "tty", "ttyS0"), uart)
	tty("tty0", filepath.Join(root, "devices", "virtual", "tty", "tty0"), "")
	return root
}

func TestList(t *testing.T) {
	got, err := Sysfs{Root: fakeSysfs(t)}.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{
		{VID: 0x0c2e, PID: 0x0b61, Serial: "A1", Manufacturer: "Honeywell", Product: "Fixed Scanner", Path: "1-1.4:1.0", Interface: 0, Dev: "/dev/ttyACM0"},
		{VID: 0x0c2e, PID: 0x0b61, Serial: "B2", Manufacturer: "Honeywell", Product: "Fixed Scanner", Path: "1-1.3:1.0", Interface: 0, Dev: "/dev/ttyACM1"},
		{VID: 0x0403, PID: 0x6001, Product: "FT232R USB UART", Path: "1-2:1.1", Interface: 1, Dev: "/dev/ttyUSB0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestListNoSysfs(t *testing.T) {
	got, err := Sysfs{Root: t.TempDir()}.List()
	if err != nil || len(got) != 0 {
		t.Errorf("List() on an empty root = %v, %v; want nothing, nil", got, err)
	}
}

func TestResolve(t *testing.T) {
	s := Sysfs{Root: fakeSysfs(t)}
	one := 1
	for _, tc := range []struct {
		name string
		m    Match
		dev  string
		// errText must appear in the error when dev is "".
		errText  string
		notFound bool
	}{
		{name: "vid and pid", m: Match{VID: 0x0403, PID: 0x6001}, dev: "/dev/ttyUSB0"},
		{name: "serial", m: Match{VID: 0x0c2e, Serial: "B2"}, dev: "/dev/ttyACM1"},
		{name: "serial alone", m: Match{Serial: "A1"}, dev: "/dev/ttyACM0"},
		{name: "path", m: Match{Path: "1-1.4:1.0"}, dev: "/dev/ttyACM0"},
		{name: "interface", m: Match{VID: 0x0403, Interface: &one}, dev: "/dev/ttyUSB0"},
		{name: "ambiguous", m: Match{VID: 0x0c2e, PID: 0x0b61},
			errText: `2 USB serial ports match vid=0c2e pid=0b61: /dev/ttyACM0 (path 1-1.4:1.0, interface 0, serial "A1"), /dev/ttyACM1 (path 1-1.3:1.0, interface 0, serial "B2")`},
		{name: "none", m: Match{VID: 0x0c2e, Serial: "C3"}, errText: `no USB serial port matches vid=0c2e serial="C3" (3 USB serial ports present)`, notFound: true},
		{name: "wrong interface", m: Match{Path: "1-2:1.1", Interface: new(int)}, errText: "no USB serial port matches", notFound: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, err := s.Resolve(tc.m)
			if tc.dev != "" {
				if err != nil || dev != tc.dev {
					t.Fatalf("Resolve(%s) = %q, %v; want %q", tc.m, dev, err, tc.dev)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%s) = %q, want an error", tc.m, dev)
			}
			if !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("error %q lacks %q", err, tc.errText)
			}
			if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(%q, ErrNotFound) = %v, want %v", err, !tc.notFound, tc.notFound)
			}
		})
	}
}
