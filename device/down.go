package device

import (
	"context"
	"fmt"
)

// DownScanner stands in for a scanner that cannot be used at all, such as
// a HID scanner in a build without HID or a serial one whose match found
// no port at start. It keeps the rest of the gateway running, where a
// failing Run would stop every station, and reports itself not connected
// so the station's health shows it down.
type DownScanner struct {
	id     string
	reason error
}

// Down returns the stand-in for scanner id; reason, when not nil, says why
// it is down and is wrapped into every Feedback error.
func Down(id string, reason error) DownScanner {
	return DownScanner{id: id, reason: reason}
}

// ID is the configured scanner id.
func (d DownScanner) ID() string { return d.id }

// Run delivers nothing; it blocks until ctx ends and returns nil.
func (d DownScanner) Run(ctx context.Context, _ func(context.Context, Read)) error {
	<-ctx.Done()
	return nil
}

// Connected reports false: a down scanner never has a device open.
func (d DownScanner) Connected() bool { return false }

// Feedback fails with an error matching ErrNotConnected, and the reason
// given to Down.
func (d DownScanner) Feedback(sig Signal) error {
	if d.reason != nil {
		return fmt.Errorf("feedback %s to %s: %w: %w", sig, d.id, ErrNotConnected, d.reason)
	}
	return fmt.Errorf("feedback %s to %s: %w", sig, d.id, ErrNotConnected)
}
