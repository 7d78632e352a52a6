// Package usbdev finds USB serial ports (ttyACM*, ttyUSB*) by the USB device
// behind them, so that a serial scanner can be configured like a HID one: by
// vendor and product id, serial number, interface or USB port path, instead
// of by a tty name that changes with the order of plugging.
//
// It reads sysfs only and never opens a tty: opening one can toggle DTR,
// reset a microcontroller behind it, or steal bytes from the process that
// owns it. For every entry of /sys/class/tty whose "device" link resolves
// to a USB interface (directly for cdc_acm, one level down for usb-serial
// drivers such as ftdi_sio), the attributes come from the interface
// directory (bInterfaceNumber) and its parent, the USB device directory
// (idVendor, idProduct, serial, manufacturer, product). The interface
// directory's name, e.g. "1-1.4:1.0", is the port path: the same
// "bus-port[.port...]:config.interface" form hidapi uses for HID devices.
//
// # Ports by match
//
// The serial driver reopens one fixed path with backoff and cannot
// re-resolve a match, so SerialPort turns a match into a path once, at
// start:
//
//   - the udev link (see UdevLink) when the match allows one and it exists:
//     it survives replugging and renumbered ttys;
//   - else the tty that the match selects in sysfs right now; should a
//     replug give it another name, the scanner stays down until scangw
//     restarts;
//   - else, when nothing matches yet and the match allows a udev link, that
//     link: the driver opens it as soon as the scanner is plugged in (this
//     needs the udev rule installed);
//   - else an error, and the scanner stays down until scangw restarts.
package usbdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scangw/scangw/device"
)

// DefaultRoot is where sysfs is mounted.
const DefaultRoot = "/sys"

// Info describes one USB serial port. It has the shape of hidscan.Info so
// that `scangw devices` lists both alike.
type Info struct {
	VID, PID     uint16
	Serial       string
	Manufacturer string
	Product      string
	// Path is the USB port path of the interface, e.g. "1-1.4:1.0",
	// stable as long as the scanner stays in the same USB port.
	Path      string
	Interface int
	// Dev is the tty's device node, e.g. "/dev/ttyACM0".
	Dev string
}

// Match selects devices; see device.Match.
type Match = device.Match

// ID is what a Match looks at.
func (i Info) ID() device.USBID {
	return device.USBID{VID: i.VID, PID: i.PID, Serial: i.Serial, Interface: i.Interface, Path: i.Path}
}

// ErrNotFound reports that no USB serial port matches. A caller may wait
// for the device to be plugged in; several matches are a config problem
// and give a different error.
var ErrNotFound = errors.New("no USB serial port matches")

// Sysfs reads a sysfs tree. The zero value reads the system's, at
// DefaultRoot; tests point Root at a fake tree.
type Sysfs struct {
	Root string
}

// List returns the USB serial ports present, ordered by tty name. A system
// without /sys/class/tty has none. A tty whose USB attributes cannot be
// read is left out rather than failing the whole list: it may be
// disappearing right now.
func (s Sysfs) List() ([]Info, error) {
	root := s.Root
	if root == "" {
		root = DefaultRoot
	}
	class := filepath.Join(root, "class", "tty")
	entries, err := os.ReadDir(class)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list USB serial ports: %w", err)
	}
	var out []Info
	for _, e := range entries {
		// Virtual consoles, ptys and on-board UARTs have no device link
		// or one into a platform device; only the resolved link tells.
		dev, err := filepath.EvalSymlinks(filepath.Join(class, e.Name(), "device"))
		if err != nil {
			continue
		}
		iface, ok := usbInterface(dev)
		if !ok {
			continue
		}
		info, err := readInfo(iface)
		if err != nil {
			continue
		}
		info.Dev = "/dev/" + e.Name()
		out = append(out, info)
	}
	return out, nil
}

// usbInterface returns the USB interface directory at or just above dev:
// cdc_acm links the tty to the interface itself, usb-serial drivers to a
// port directory (ttyUSB0) inside it.
func usbInterface(dev string) (string, bool) {
	for _, d := range []string{dev, filepath.Dir(dev)} {
		if isFile(filepath.Join(d, "bInterfaceNumber")) && isFile(filepath.Join(filepath.Dir(d), "idVendor")) {
			return d, true
		}
	}
	return "", false
}

func readInfo(iface string) (Info, error) {
	usb := filepath.Dir(iface)
	vid, err := readHex(filepath.Join(usb, "idVendor"), 16)
	if err != nil {
		return Info{}, err
	}
	pid, err := readHex(filepath.Join(usb, "idProduct"), 16)
	if err != nil {
		return Info{}, err
	}
	// sysfs prints bInterfaceNumber as two hex digits ("%02x").
	n, err := readHex(filepath.Join(iface, "bInterfaceNumber"), 8)
	if err != nil {
		return Info{}, err
	}
	return Info{
		VID: uint16(vid),
		PID: uint16(pid),
		// A device without the string descriptors has no such files.
		Serial:       readString(filepath.Join(usb, "serial")),
		Manufacturer: readString(filepath.Join(usb, "manufacturer")),
		Product:      readString(filepath.Join(usb, "product")),
		Path:         filepath.Base(iface),
		Interface:    int(n),
	}, nil
}

func readHex(name string, bits int) (uint64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, bits)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return n, nil
}

func readString(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}

func isFile(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}

// Resolve returns the device node of the one USB serial port that m
// selects. It fails with an error matching ErrNotFound when none does, and
// with a list of the candidates when several do: picking one of two
// identical scanners at random would swap stations after a reboot.
func (s Sysfs) Resolve(m Match) (string, error) {
	infos, err := s.List()
	if err != nil {
		return "", err
	}
	var found []Info
	for _, i := range infos {
		if m.Matches(i.ID()) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w %s (%d USB serial ports present)", ErrNotFound, m, len(infos))
	case 1:
		return found[0].Dev, nil
	}
	cands := make([]string, len(found))
	for i, f := range found {
		cands[i] = fmt.Sprintf("%s (path %s, interface %d, serial %q)", f.Dev, f.Path, f.Interface, f.Serial)
	}
	return "", fmt.Errorf("%d USB serial ports match %s: %s; add serial, interface or path to the match",
		len(found), m, strings.Join(cands, ", "))
}

// List returns the USB serial ports of this system; see Sysfs.List.
func List() ([]Info, error) { return Sysfs{}.List() }

// Resolve finds the port m selects on this system; see Sysfs.Resolve.
func Resolve(m Match) (string, error) { return Sysfs{}.Resolve(m) }
