package buffer

import (
	"context"
	"testing"
	"time"
)

// TestBusyCoversTheCommit holds a commit in the OnCommit hook (which runs
// inside it, after the sync): Busy reports when that commit began, the
// same time for as long as it is held, and zero once it is over.
func TestBusyCoversTheCommit(t *testing.T) {
	inCommit := make(chan struct{})
	release := make(chan struct{})
	b := open(t, t.TempDir(), func([]uint64) {
		inCommit <- struct{}{}
		<-release
	})
	if got := b.Busy(); !got.IsZero() {
		t.Fatalf("Busy = %v before any commit, want zero", got)
	}
	before := time.Now().Truncate(0) // wall clock, as Busy reports it
	appended := make(chan error, 1)
	go func() {
		_, err := b.Append(context.Background(), "t/a", payload("held"))
		appended <- err
	}()
	<-inCommit
	first := b.Busy()
	if first.IsZero() || first.Before(before) {
		t.Fatalf("Busy = %v inside a commit begun after %v", first, before)
	}
	// Still the same commit: the watchdog tells one long commit from many
	// short ones by this time staying put.
	if again := b.Busy(); !again.Equal(first) {
		t.Fatalf("Busy moved from %v to %v within one commit", first, again)
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !b.Busy().IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("Busy = %v after the commit returned, want zero", b.Busy())
		}
		time.Sleep(time.Millisecond) // polling: the committer clears it just after answering
	}
}
