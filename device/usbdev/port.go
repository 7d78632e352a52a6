package usbdev

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// UdevLink returns the stable name systemd/60-scangw.rules gives a USB-CDC
// scanner, /dev/scangw/<vid>-<pid>-<serial> with lowercase 4-digit hex ids
// (udev's ID_VENDOR_ID, ID_MODEL_ID, ID_SERIAL_SHORT), and whether m
// identifies exactly that device. It does not when the serial number is
// missing or has characters udev would escape in ID_SERIAL_SHORT, or when
// m pins an interface or port path the link cannot express (a device with
// two CDC interfaces gets one link, for whichever came last).
func UdevLink(m Match) (string, bool) {
	if m.VID == 0 || m.PID == 0 || m.Serial == "" || m.Interface != nil || m.Path != "" {
		return "", false
	}
	for _, c := range m.Serial {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", false
		}
	}
	return fmt.Sprintf("/dev/scangw/%04x-%04x-%s", m.VID, m.PID, m.Serial), true
}

// SerialPort picks the path a serial scanner configured by m opens on this
// system; see the package comment for the order of choices.
func SerialPort(m Match) (string, error) { return serialPort(m, Resolve, fileExists) }

// serialPort is SerialPort with the sysfs lookup and the existence check
// passed in, so the choices can be tested without devices.
func serialPort(m Match, resolve func(Match) (string, error), exists func(string) bool) (string, error) {
	link, linkOK := UdevLink(m)
	if linkOK && exists(link) {
		return link, nil
	}
	dev, err := resolve(m)
	switch {
	case err == nil:
		return dev, nil
	case linkOK && errors.Is(err, ErrNotFound):
		return link, nil
	}
	return "", err
}

// FindSerial is SerialPort for a scanner about to start: it logs what was
// found, or why the scanner waits or stays down, and ok is false when it
// must stay down (no path can ever become its device until a restart).
func FindSerial(m Match, log *slog.Logger) (port string, ok bool) {
	return findSerial(m, log, Resolve, fileExists)
}

func findSerial(m Match, log *slog.Logger, resolve func(Match) (string, error), exists func(string) bool) (string, bool) {
	port, err := serialPort(m, resolve, exists)
	if err != nil {
		log.Error("serial scanner not found by match; it stays down until scangw restarts",
			"match", m.String(), "err", err)
		return "", false
	}
	if !exists(port) {
		log.Warn("serial scanner not plugged in; waiting for its udev link",
			"match", m.String(), "port", port)
	} else {
		log.Info("serial scanner found by match", "match", m.String(), "port", port)
	}
	return port, true
}

// SamePort reports whether a configured port names dev, a tty's device
// node as Info.Dev has it, also through a symlink such as
// /dev/serial/by-id/... or /dev/scangw/....
func SamePort(port, dev string) bool {
	if filepath.Clean(port) == dev {
		return true
	}
	real, err := filepath.EvalSymlinks(port)
	return err == nil && real == dev
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
