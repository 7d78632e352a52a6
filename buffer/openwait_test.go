package buffer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineWatcher is a log sink that signals the first line containing want.
type lineWatcher struct {
	mu   sync.Mutex
	want string
	seen chan struct{}
	done bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && strings.Contains(string(p), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

// TestOpenWaitOutlastsAnotherHolder: a directory held by another buffer is
// waited for, not healed or touched, and opened once it is free.
func TestOpenWaitOutlastsAnotherHolder(t *testing.T) {
	dir := t.TempDir()
	holder, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Append(context.Background(), "scans/s1", func(seq uint64) ([]byte, error) { return []byte("kept"), nil }); err != nil {
		t.Fatal(err)
	}
	w := &lineWatcher{want: "retrying", seen: make(chan struct{})}
	got := make(chan *Buffer, 1)
	go func() {
		b, err := OpenWait(context.Background(), Options{Dir: dir, Heal: true, Logger: slog.New(slog.NewTextHandler(w, nil))})
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-w.seen: // it tried, found the directory held, and waits
	case <-time.After(30 * time.Second):
		t.Fatal("OpenWait neither opened nor logged a retry")
	}
	epoch := holder.Epoch()
	holder.Close()
	b := <-got
	if b == nil {
		t.Fatal("no buffer")
	}
	defer b.Close()
	if b.Epoch() != epoch || b.Depth() != 1 {
		t.Fatalf("after the wait: epoch %s depth %d, want the holder's %s and 1 message", b.Epoch(), b.Depth(), epoch)
	}
}

func TestOpenWaitEndsWithCtx(t *testing.T) {
	dir := t.TempDir()
	holder, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := &lineWatcher{want: "retrying", seen: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := OpenWait(ctx, Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(w, nil))})
		errc <- err
	}()
	<-w.seen
	cancel()
	if err := <-errc; !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenWait after ctx ended: %v, want ErrLocked", err)
	}
}
