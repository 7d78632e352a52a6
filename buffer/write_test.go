package buffer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestWriteAllOrNone: a Write's records get consecutive seqs and its
// state is set in the same commit; one record that fails to build, or a
// Write the limits cannot take whole, stores none of it, state included.
func TestWriteAllOrNone(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "buffer")
	b, err := Open(Options{Dir: dir, Limits: Limits{MaxScans: 4}})
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := b.SubmitWrite(ctx, Write{
		Records: []Record{{Stream: "scans/d", Build: payload("scan")}, {Stream: "events/d", Build: payload("order")}},
		State:   []StateValue{{Key: "flow/d", Value: []byte("v1")}, {Key: "flow/d/u/1", Value: []byte{}}},
	})()
	if err != nil || !slices.Equal(seqs, []uint64{1, 2}) {
		t.Fatalf("SubmitWrite: %v %v, want seqs [1 2]", seqs, err)
	}
	if v, err := b.LoadState("flow/d"); err != nil || string(v) != "v1" {
		t.Fatalf("state after the write: %q %v", v, err)
	}

	bad := errors.New("boom")
	_, err = b.SubmitWrite(ctx, Write{
		Records: []Record{{Stream: "scans/d", Build: payload("ok")}, {Stream: "events/d", Build: func(uint64) ([]byte, error) { return nil, bad }}},
		State:   []StateValue{{Key: "flow/d", Value: []byte("v2")}},
	})()
	if !errors.Is(err, bad) {
		t.Fatalf("a record that does not build: %v, want it reported", err)
	}
	// Two waiting; a Write of three does not fit under 4 whole.
	_, err = b.SubmitWrite(ctx, Write{
		Records: []Record{{Stream: "scans/d", Build: payload("a")}, {Stream: "scans/d", Build: payload("b")}, {Stream: "scans/d", Build: payload("c")}},
		State:   []StateValue{{Key: "flow/d", Value: []byte("v3")}},
	})()
	if !errors.Is(err, ErrFull) {
		t.Fatalf("a Write over the limit: %v, want ErrFull", err)
	}
	if v, _ := b.LoadState("flow/d"); string(v) != "v1" {
		t.Fatalf("state after refused writes: %q, want v1", v)
	}
	es, err := b.Peek(0, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("queue after refused writes: %d entries, %v; want the first write's 2", len(es), err)
	}
	// The next seq follows the stored ones: a refused Write used none.
	if seq, err := b.Append(ctx, "scans/d", payload("next")); err != nil || seq != 3 {
		t.Fatalf("next append: seq %d %v, want 3", seq, err)
	}
	// State alone, and a delete.
	if _, err := b.SubmitWrite(ctx, Write{State: []StateValue{{Key: "flow/d/u/1"}, {Key: "flow/d/u/2", Value: []byte("x")}}})(); err != nil {
		t.Fatal(err)
	}
	b.Close()

	r, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	list, err := r.ListState("flow/d/")
	if err != nil || len(list) != 1 || list[0].Key != "flow/d/u/2" || string(list[0].Value) != "x" {
		t.Fatalf("ListState after reopen: %+v %v", list, err)
	}
	if list, _ := r.ListState("flow/"); len(list) != 2 {
		t.Fatalf("ListState(flow/): %+v, want flow/d and flow/d/u/2", list)
	}
}

// TestWriteSharesCommits: Writes queued together with plain appends go
// in one commit, in the order submitted.
func TestWriteSharesCommits(t *testing.T) {
	ctx := context.Background()
	var commits [][]uint64
	b := open(t, filepath.Join(t.TempDir(), "buffer"), func(s []uint64) { commits = append(commits, slices.Clone(s)) })
	// Hold the committer so everything below queues up behind it.
	release := make(chan struct{})
	held := make(chan struct{})
	go b.onCommitter(ctx, func() error { close(held); <-release; return nil })
	<-held
	w1 := b.Submit(ctx, "scans/d", payload("a"))
	w2 := b.SubmitWrite(ctx, Write{Records: []Record{{Stream: "scans/d", Build: payload("b")}, {Stream: "events/d", Build: payload("c")}}})
	w3 := b.Submit(ctx, "scans/d", payload("d"))
	close(release)
	s1, e1 := w1()
	s2, e2 := w2()
	s3, e3 := w3()
	if e1 != nil || e2 != nil || e3 != nil || s1 != 1 || !slices.Equal(s2, []uint64{2, 3}) || s3 != 4 {
		t.Fatalf("seqs %d %v %d, errors %v %v %v", s1, s2, s3, e1, e2, e3)
	}
	if len(commits) != 1 || !slices.Equal(commits[0], []uint64{1, 2, 3, 4}) {
		t.Fatalf("commits %v, want one of [1 2 3 4]", commits)
	}
}

// TestWriteCompanion: a companion record is stored behind its record,
// built with that record's seq, and takes none of its own.
func TestWriteCompanion(t *testing.T) {
	ctx := context.Background()
	b := open(t, filepath.Join(t.TempDir(), "buffer"), nil)
	var built []uint64
	rec := func(s string) func(uint64) ([]byte, error) {
		return func(seq uint64) ([]byte, error) { built = append(built, seq); return payload(s)(seq) }
	}
	seqs, err := b.SubmitWrite(ctx, Write{Records: []Record{
		{Stream: "scans/d", Build: rec("scan")},
		{Stream: "epcis/d", Build: rec("doc"), Companion: true},
		{Stream: "events/d", Build: rec("order")},
	}})()
	if err != nil || !slices.Equal(seqs, []uint64{1, 2}) || !slices.Equal(built, []uint64{1, 1, 2}) {
		t.Fatalf("seqs %v built with %v (%v), want [1 2] and [1 1 2]", seqs, built, err)
	}
	es, err := b.Peek(0, 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("peek: %d entries %v", len(es), err)
	}
	if es[1].Stream != "epcis/d" || es[1].Seq != 0 || string(es[1].Payload) != "doc#1" || es[2].Seq != 2 {
		t.Fatalf("entries %+v", es)
	}
	if seq, _ := b.Append(ctx, "scans/d", payload("next")); seq != 3 {
		t.Fatalf("next seq %d, want 3", seq)
	}
}

// TestWriteTooBigAlone: a Write too big for one transaction is refused
// alone; the appends batched with it are stored.
func TestWriteTooBigAlone(t *testing.T) {
	ctx := context.Background()
	b := open(t, filepath.Join(t.TempDir(), "buffer"), nil)
	var state []StateValue
	for i := range 100_000 {
		state = append(state, StateValue{Key: fmt.Sprintf("workflow/child/%06d", i), Value: []byte(`{"parent":"gs1:(00)095060001343500019","open":false}`)})
	}
	release := make(chan struct{})
	held := make(chan struct{})
	go b.onCommitter(ctx, func() error { close(held); <-release; return nil })
	<-held
	w1 := b.Submit(ctx, "scans/a", payload("before"))
	w2 := b.SubmitWrite(ctx, Write{Records: []Record{{Stream: "events/b", Build: payload("huge")}}, State: state})
	w3 := b.Submit(ctx, "scans/a", payload("after"))
	close(release)
	s1, e1 := w1()
	_, e2 := w2()
	s3, e3 := w3()
	if e1 != nil || e3 != nil || s1 != 1 || s3 != 2 {
		t.Fatalf("the appends beside a too-big Write: seqs %d %d, errors %v %v", s1, s3, e1, e3)
	}
	if !errors.Is(e2, badger.ErrTxnTooBig) {
		t.Fatalf("the too-big Write: %v, want ErrTxnTooBig", e2)
	}
}
