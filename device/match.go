package device

import (
	"fmt"
	"strconv"
	"strings"
)

// USBID is what identifies a USB device (or one of its interfaces) to a
// Match.
type USBID struct {
	VID, PID  uint16
	Serial    string
	Interface int
	// Path is the USB port path, e.g. "1-1.4:1.0": stable while the
	// device stays in that port.
	Path string
}

// Match selects USB devices, HID or serial alike; a zero field matches any.
type Match struct {
	// VID and PID are the USB vendor and product ids; 0 matches any.
	VID, PID uint16
	// Serial is the USB serial number string, for telling apart two
	// scanners of one model.
	Serial string
	// Interface is the USB interface number, for scanners that offer
	// several (keyboard and HID POS); nil matches any.
	Interface *int
	// Path pins a USB port.
	Path string
}

// IsZero reports whether m matches every device.
func (m Match) IsZero() bool {
	return m.VID == 0 && m.PID == 0 && m.Serial == "" && m.Interface == nil && m.Path == ""
}

// Matches reports whether the device identified by id fits m.
func (m Match) Matches(id USBID) bool {
	return (m.VID == 0 || m.VID == id.VID) &&
		(m.PID == 0 || m.PID == id.PID) &&
		(m.Serial == "" || m.Serial == id.Serial) &&
		(m.Interface == nil || *m.Interface == id.Interface) &&
		(m.Path == "" || m.Path == id.Path)
}

// String formats m for logs and errors, e.g. "vid=0c2e pid=0b61 interface=1".
func (m Match) String() string {
	var parts []string
	if m.VID != 0 {
		parts = append(parts, fmt.Sprintf("vid=%04x", m.VID))
	}
	if m.PID != 0 {
		parts = append(parts, fmt.Sprintf("pid=%04x", m.PID))
	}
	if m.Interface != nil {
		parts = append(parts, "interface="+strconv.Itoa(*m.Interface))
	}
	if m.Serial != "" {
		parts = append(parts, "serial="+strconv.Quote(m.Serial))
	}
	if m.Path != "" {
		parts = append(parts, "path="+strconv.Quote(m.Path))
	}
	if len(parts) == 0 {
		return "any device"
	}
	return strings.Join(parts, " ")
}
