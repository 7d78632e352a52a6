package buffer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestReadOnly: a read-only open is refused while a daemon holds the
// directory, and reads a stopped one without writing to it.
func TestReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buffer")
	w, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	epoch := w.Epoch()
	appendN(t, w, 5, "t")
	w.Ack(1)
	settled(t, w)

	if _, err := Open(Options{Dir: dir, ReadOnly: true}); !errors.Is(err, ErrLocked) || IsCorrupt(err) {
		t.Fatalf("read-only open of a held buffer = %v, want ErrLocked", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	r, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a stopped buffer: %v", err)
	}
	if r.Epoch() != epoch || r.Depth() != 4 || r.NextSeq() != 6 {
		t.Errorf("read-only: epoch %s depth %d next %d; want %s, 4, 6", r.Epoch(), r.Depth(), r.NextSeq(), epoch)
	}
	es := peekAll(t, r)
	if got := posOfAll(es); fmt.Sprint(got) != "[2 3 4 5]" || string(es[0].Payload) != "1#2" {
		t.Errorf("read-only peek: %v %q", got, es[0].Payload)
	}
	if _, err := r.Append(context.Background(), "t", payload("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("append to a read-only buffer: %v, want ErrReadOnly", err)
	}
	// Writes other than appends refuse too, at once: nothing commits them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Reclaim(ctx); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Reclaim on a read-only buffer: %v, want ErrReadOnly", err)
	}
	src := filepath.Join(t.TempDir(), "src")
	s, err := Open(Options{Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 3, "t/other")
	s.Close()
	if _, err := r.Salvage(ctx, src); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Salvage into a read-only buffer: %v, want ErrReadOnly", err)
	}
	// Two readers may share a stopped buffer.
	r2, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Errorf("second read-only open: %v", err)
	} else {
		r2.Close()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sameContent(before, snapshot(t, dir)); err != nil {
		t.Errorf("a read-only open changed the directory: %v", err)
	}

	// And a writer takes it back.
	w = open(t, dir, nil)
	if s := appendN(t, w, 1, "t")[0]; s != 6 {
		t.Fatalf("seq after read-only use %d, want 6", s)
	}
}

// TestReadOnlyAfterKill opens read-only a buffer whose writer was killed
// with SIGKILL: its write-ahead log still has the zeroed tail that Badger
// pre-allocates, which a writer trims at open but a reader may not.
func TestReadOnlyAfterKill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buffer")
	c := startChild(t, "TestCrashChild", crashChildEnv+"="+dir, crashSpecEnv+"=n=200,size=300,big=0,ack=50")
	c.expect(t, "DONE 201", time.Minute)
	c.kill(t)
	before := snapshot(t, dir)

	// Badger would refuse (ErrTruncateNeeded): the tools read a scratch
	// copy instead, and the directory stays as the kill left it.
	r, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open after a kill: %v", err)
	}
	if r.Depth() != 150 || r.NextSeq() != 201 {
		t.Errorf("read-only after a kill: depth %d next %d, want 150, 201", r.Depth(), r.NextSeq())
	}
	if _, err := r.Append(context.Background(), "t", func(uint64) ([]byte, error) { return nil, nil }); !errors.Is(err, ErrReadOnly) {
		t.Errorf("append on a read-only snapshot: %v", err)
	}
	r.Close()
	if err := sameContent(before, snapshot(t, dir)); err != nil {
		t.Errorf("a read-only open changed the directory: %v", err)
	}
	// A writer recovers it, and then a reader can read it.
	w, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if w.Depth() != 150 || w.NextSeq() != 201 {
		t.Errorf("after a kill: depth %d next %d, want 150, 201", w.Depth(), w.NextSeq())
	}
	w.Close()
	r, err = Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open after a writer's clean close: %v", err)
	}
	defer r.Close()
	if es := peekAll(t, r); len(es) != 150 || es[0].Pos != 51 {
		t.Errorf("read-only: %d messages from position %d", len(es), es[0].Pos)
	}
}
