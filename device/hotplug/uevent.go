package hotplug

import (
	"bytes"
	"errors"
	"fmt"
)

// Event is one kernel uevent.
type Event struct {
	// Action is what happened: add, remove, bind, unbind, change, move,
	// online, offline.
	Action string
	// DevPath is the device's sysfs path without the /sys prefix, e.g.
	// /devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/tty/ttyACM0.
	DevPath string
	// Subsystem is the SUBSYSTEM key, e.g. usb, tty or hidraw.
	Subsystem string
	// DevName is the DEVNAME key, the node under /dev (e.g. ttyACM0,
	// bus/usb/001/005), empty for devices without one.
	DevName string
	// Env holds every KEY=VALUE pair of the event, the above included.
	Env map[string]string
}

// errLibudev marks a datagram in udevd's own format, which is sent on a
// different multicast group and is not what a Watcher listens for.
var errLibudev = errors.New("libudev message, not a kernel uevent")

// libudevMagic starts every message udevd re-broadcasts.
var libudevMagic = []byte("libudev\x00")

// ParseUevent parses a kernel uevent datagram: "ACTION@DEVPATH", then
// NUL-terminated KEY=VALUE pairs. Fields that are not KEY=VALUE are
// skipped, since a newer kernel may add what this parser does not know;
// only a datagram without a usable header is an error.
func ParseUevent(b []byte) (Event, error) {
	if bytes.HasPrefix(b, libudevMagic) {
		return Event{}, fmt.Errorf("parse uevent: %w", errLibudev)
	}
	header, rest, _ := bytes.Cut(b, []byte{0})
	action, devpath, ok := bytes.Cut(header, []byte("@"))
	if !ok {
		return Event{}, fmt.Errorf("parse uevent: header %.40q has no '@'", header)
	}
	if len(action) == 0 || len(devpath) == 0 {
		return Event{}, fmt.Errorf("parse uevent: header %.40q lacks action or devpath", header)
	}
	ev := Event{Action: string(action), DevPath: string(devpath), Env: map[string]string{}}
	for len(rest) > 0 {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte{0})
		k, v, ok := bytes.Cut(field, []byte("="))
		if !ok || len(k) == 0 {
			continue
		}
		ev.Env[string(k)] = string(v)
	}
	ev.Subsystem = ev.Env["SUBSYSTEM"]
	ev.DevName = ev.Env["DEVNAME"]
	return ev, nil
}

// relevant reports whether ev may mean that a scanner became openable: a
// USB device or interface arrived or got its driver, or a serial, hidraw
// or usbmisc node appeared. Removals cannot bring a scanner back.
func relevant(ev Event) bool {
	if ev.Action != "add" && ev.Action != "bind" {
		return false
	}
	switch ev.Subsystem {
	case "usb", "tty", "hidraw", "usbmisc":
		return true
	}
	return false
}
