package buffer

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// TestState: a saved value survives a reopen; a missing one is ErrNoState,
// which a consumer that does not import this package can recognise as
// fs.ErrNotExist.
func TestState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buffer")
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.LoadState("station/dock-1")
	if !errors.Is(err, ErrNoState) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadState of a missing key: %v, want ErrNoState and fs.ErrNotExist", err)
	}
	if err := b.SaveState("station/dock-1", []byte(`{"mode":"ship"}`)); err != nil {
		t.Fatal(err)
	}
	b.Close()

	r, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if v, err := r.LoadState("station/dock-1"); err != nil || string(v) != `{"mode":"ship"}` {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if _, err := r.LoadState("station/dock-2"); !errors.Is(err, ErrNoState) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadState of another key: %v", err)
	}
	if err := r.SaveState("k", nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("SaveState read-only: %v", err)
	}
}
