//go:build !cgo

package hidscan

import (
	"errors"
	"testing"
)

// In a CGO_ENABLED=0 build karalabe/hid is a stub that finds nothing;
// every entry point must say so plainly rather than report "no device".
func TestStubBuildSaysWhy(t *testing.T) {
	const want = "HID scanners need a cgo build (this binary was built with CGO_ENABLED=0)"
	if err := Available(); err == nil || err.Error() != want {
		t.Errorf("Available() = %v, want %q", err, want)
	}
	if _, _, err := OpenHID(Match{VID: 0x0c2e}); !errors.Is(err, ErrUnavailable) || err.Error() != want {
		t.Errorf("OpenHID = %v, want %q", err, want)
	}
	if _, err := Enumerate(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Enumerate = %v, want ErrUnavailable", err)
	}
}
