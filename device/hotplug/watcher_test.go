package hotplug

import (
	"context"
	"testing"
	"time"
)

const waitLimit = 5 * time.Second

// woken reports whether ch holds a wake, without waiting: Wake sends
// before it returns, so a pending wake is already there.
func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWakeWakesEverySubscriber(t *testing.T) {
	w := New(nil)
	a, unsubA := w.Subscribe()
	defer unsubA()
	b, unsubB := w.Subscribe()
	defer unsubB()

	w.Wake()
	if !woken(a) || !woken(b) {
		t.Fatal("a subscriber was not woken")
	}
	if woken(a) || woken(b) {
		t.Fatal("one Wake delivered twice")
	}
}

func TestWakeDoesNotBlockOnASlowSubscriber(t *testing.T) {
	w := New(nil)
	slow, unsubSlow := w.Subscribe()
	defer unsubSlow()
	fast, unsubFast := w.Subscribe()
	defer unsubFast()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			w.Wake()
		}
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("Wake blocked on a subscriber that does not receive")
	}
	if !woken(fast) || !woken(slow) {
		t.Fatal("pending wake lost")
	}
	// Three wakes collapse into the one slot: a wake means "look again".
	if woken(slow) {
		t.Error("more than one wake pending")
	}
}

func TestUnsubscribeStopsWakes(t *testing.T) {
	w := New(nil)
	ch, unsub := w.Subscribe()
	unsub()
	unsub() // harmless twice
	w.Wake()
	if woken(ch) {
		t.Error("woken after unsubscribe")
	}
}

func TestHandleWakesOnRelevantEventsOnly(t *testing.T) {
	w := New(nil)
	ch, unsub := w.Subscribe()
	defer unsub()
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"usb add", usbAdd, true},
		{"usb bind", usbBind, true},
		{"tty add", ttyAdd, true},
		{"hidraw add", hidrawAdd, true},
		{"usbmisc add", usbmiscAdd, true},
		{"tty remove", ttyRemove, false},
		{"hidraw remove", hidrawRemove, false},
		{"net add", netAdd, false},
		{"libudev", libudev, false},
		{"garbage", []byte("\xff\x00"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.handle(tc.in); got != tc.want {
				t.Errorf("handle = %v, want %v", got, tc.want)
			}
			if got := woken(ch); got != tc.want {
				t.Errorf("woken = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRunStopsOnCancel holds whether or not this machine lets the test
// open a uevent socket: Run either listens until cancel or gives up at
// once, and returns nil both ways.
func TestRunStopsOnCancel(t *testing.T) {
	w := New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %v of cancel", waitLimit)
	}
}

// TestRunStopsWhileBlocked cancels a Run that listens (if netlink works
// here), not merely one starting up.
func TestRunStopsWhileBlocked(t *testing.T) {
	w := New(nil)
	listening := make(chan struct{})
	w.onListen = func() { close(listening) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		t.Log("netlink uevents unavailable here; Run fell back to polling")
		return
	case <-listening:
		t.Log("listening for kernel uevents")
	case <-time.After(waitLimit):
		t.Fatalf("Run neither listened nor returned within %v", waitLimit)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %v of cancel", waitLimit)
	}
}
