package device

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDown(t *testing.T) {
	unavailable := errors.New("HID scanners need a cgo build")
	for _, tc := range []struct {
		name     string
		reason   error
		wantText string
	}{
		{name: "no reason", wantText: "feedback bad to fixed-2: scanner not connected"},
		{name: "reason", reason: unavailable, wantText: "feedback bad to fixed-2: scanner not connected: HID scanners need a cgo build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Down("fixed-2", tc.reason)
			if d.ID() != "fixed-2" {
				t.Errorf("ID() = %q, want fixed-2", d.ID())
			}
			// The station's health asks this of every scanner; without it
			// a down scanner counted as up.
			var c interface{ Connected() bool } = d
			if c.Connected() {
				t.Error("Connected() = true, want false")
			}
			err := d.Feedback(Bad)
			if !errors.Is(err, ErrNotConnected) {
				t.Errorf("Feedback = %v, want one matching ErrNotConnected", err)
			}
			if tc.reason != nil && !errors.Is(err, tc.reason) {
				t.Errorf("Feedback = %v, want one matching the reason", err)
			}
			if err == nil || err.Error() != tc.wantText {
				t.Errorf("Feedback = %v, want %q", err, tc.wantText)
			}
		})
	}
}

func TestDownRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Down("fixed-2", nil).Run(ctx, func(context.Context, Read) {
			t.Error("a down scanner delivered a read")
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before ctx ended", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after ctx ended, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}
