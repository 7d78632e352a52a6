//go:build cgo

package hidscan

import (
	"strings"
	"testing"
)

// With cgo the real hidapi is linked in. No scanner is plugged in here (and
// often no /dev/bus/usb at all), so this only checks that enumeration and
// a failed open behave: no panic, no device, an error naming the match.
func TestRealHIDWithoutDevices(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("HID unavailable on this platform: %v", err)
	}
	if _, err := Enumerate(); err != nil {
		t.Errorf("Enumerate: %v", err)
	}
	// 0xfffe/0xfffe is not assigned to any vendor.
	_, _, err := OpenHID(Match{VID: 0xfffe, PID: 0xfffe})
	if err == nil || !strings.Contains(err.Error(), "no HID device matches vid=fffe pid=fffe") {
		t.Errorf("OpenHID(absent) = %v", err)
	}
	if _, _, err := OpenHID(Match{}); err == nil || !strings.Contains(err.Error(), "needs vid or path") {
		t.Errorf("OpenHID(zero match) = %v", err)
	}
}
