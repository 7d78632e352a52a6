package hidscan

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/karalabe/hid"
)

// ErrUnavailable reports that this binary cannot drive HID devices at all,
// so that no retry can help: it was built without cgo (karalabe/hid then
// compiles to a stub that finds nothing), or for a platform the library
// does not support. Match it with errors.Is; its message says which.
var ErrUnavailable = errors.New("HID scanners are unavailable in this build")

// unavailableError carries the specific reason while matching
// ErrUnavailable.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string        { return e.reason }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Available returns nil when HID devices can be used, and otherwise an
// error matching ErrUnavailable that says why. cmd/scangw can call it
// while validating a config that names HID scanners, to refuse to start
// with a clear message instead of failing at the first open.
func Available() error {
	return availability(hid.Supported(), cgoEnabled)
}

func availability(supported, cgo bool) error {
	switch {
	case supported:
		return nil
	case !cgo:
		return &unavailableError{"HID scanners need a cgo build (this binary was built with CGO_ENABLED=0)"}
	default:
		return &unavailableError{fmt.Sprintf("HID scanners are not supported on %s/%s by github.com/karalabe/hid", runtime.GOOS, runtime.GOARCH)}
	}
}

// Enumerate lists the HID devices present, one entry per HID interface,
// for `scangw devices`. Devices the service may not open are listed too,
// but without serial, manufacturer and product: hidapi must open a device
// to read those strings.
//
// hidapi cannot tell "no devices" from "could not look" (no /dev/bus/usb,
// libusb failed to start): both give an empty list.
func Enumerate() ([]Info, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	devs, err := hid.Enumerate(0, 0)
	if err != nil {
		return nil, fmt.Errorf("enumerate HID devices: %w", err)
	}
	infos := make([]Info, len(devs))
	for i, d := range devs {
		infos[i] = infoOf(d)
	}
	return infos, nil
}

func infoOf(d hid.DeviceInfo) Info {
	return Info{
		VID:          d.VendorID,
		PID:          d.ProductID,
		Release:      d.Release,
		Serial:       d.Serial,
		Manufacturer: d.Manufacturer,
		Product:      d.Product,
		Path:         d.Path,
		Interface:    d.Interface,
	}
}

// OpenHID is the Opener for real devices: it enumerates HID devices
// through karalabe/hid, picks the one that m selects, and opens it. On
// Linux, opening detaches the kernel's usbhid driver from that interface,
// so a wedge scanner stops typing into the console, and needs read-write
// access to its /dev/bus/usb/BBB/DDD node (the udev rule grants it).
//
// It fails when no device matches, and also when several do: picking one
// of two identical scanners at random would swap stations after a reboot.
func OpenHID(m Match) (Device, Info, error) {
	if err := Available(); err != nil {
		return nil, Info{}, err
	}
	if m.VID == 0 && m.Path == "" {
		return nil, Info{}, fmt.Errorf("match %s: needs vid or path", m)
	}
	devs, err := hid.Enumerate(m.VID, m.PID)
	if err != nil {
		return nil, Info{}, fmt.Errorf("enumerate HID devices: %w", err)
	}
	var found []hid.DeviceInfo
	for _, d := range devs {
		if m.Matches(infoOf(d).ID()) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, Info{}, fmt.Errorf("no HID device matches %s", m)
	case 1:
	default:
		var cands []string
		for _, d := range found {
			cands = append(cands, fmt.Sprintf("%s (interface %d, serial %q)", d.Path, d.Interface, d.Serial))
		}
		return nil, Info{}, fmt.Errorf("%d HID devices match %s: %s; add interface, serial or path to the match",
			len(found), m, strings.Join(cands, ", "))
	}
	info := infoOf(found[0])
	dev, err := found[0].Open()
	if err != nil {
		// hidapi says only "failed to open device"; missing
		// permissions on the USB node are the usual reason.
		return nil, Info{}, fmt.Errorf("open HID device %s (%s): %w (does the service have read-write access to its /dev/bus/usb node?)", info.Path, m, err)
	}
	return dev, info, nil
}
