package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// writeFormat1 writes a format-1 buffer by hand, the way an older scangw
// left it: the queue keyed by seq, m/next the next seq, no m/seq. The
// messages of seqs 1..acked were delivered and deleted.
func writeFormat1(t testing.TB, dir string, n, acked int, at time.Time) {
	t.Helper()
	db, err := badger.Open(badgerOptions(dir, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(txn *badger.Txn) error {
		if err := putUint(txn, keyFormat, 1); err != nil {
			return err
		}
		if err := txn.Set(keyEpoch, []byte("epoch-of-format-1")); err != nil {
			return err
		}
		if err := putUint(txn, keyNext, uint64(n+1)); err != nil {
			return err
		}
		for seq := 1; seq <= n; seq++ {
			v := encodeEntry(at.Add(time.Duration(seq)*time.Millisecond), "t/v1", fmt.Appendf(nil, `{"seq":%d}`, seq))
			if err := txn.Set(queueKey(uint64(seq)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for seq := 1; seq <= acked; seq++ {
			if err := txn.Delete(queueKey(uint64(seq))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func storedFormat(t testing.TB, b *Buffer) (format, nextPos, nextSeq uint64) {
	t.Helper()
	err := b.db.View(func(txn *badger.Txn) error {
		var err error
		if format, err = getUint(txn, keyFormat); err != nil {
			return err
		}
		if nextPos, err = getUint(txn, keyNext); err != nil {
			return err
		}
		nextSeq, err = getUint(txn, keySeq)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return format, nextPos, nextSeq
}

// TestMigrateFromFormat1 opens a format-1 buffer: it becomes format 2,
// its messages keep their positions (their old seqs), and seq and position
// go on from there.
func TestMigrateFromFormat1(t *testing.T) {
	const n, acked = 1000, 300
	dir := filepath.Join(t.TempDir(), "buffer")
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	writeFormat1(t, dir, n, acked, at)

	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if f, pos, seq := storedFormat(t, b); f != FormatVersion || pos != n+1 || seq != n+1 {
		t.Errorf("after migration: m/format %d, m/next %d, m/seq %d; want %d, %d, %d", f, pos, seq, FormatVersion, n+1, n+1)
	}
	if b.Epoch() != "epoch-of-format-1" {
		t.Errorf("epoch %q: a migration is not a new life", b.Epoch())
	}
	if d := b.Depth(); d != n-acked {
		t.Errorf("depth %d, want %d", d, n-acked)
	}
	es := peekAll(t, b)
	if len(es) != n-acked {
		t.Fatalf("%d messages after migration, want %d", len(es), n-acked)
	}
	for i, e := range es {
		seq := uint64(acked + 1 + i)
		if e.Pos != seq || e.Topic != "t/v1" || string(e.Payload) != fmt.Sprintf(`{"seq":%d}`, seq) ||
			!e.Time.Equal(at.Add(time.Duration(seq)*time.Millisecond)) {
			t.Fatalf("entry %d = {%d %v %q %q}, want position %d", i, e.Pos, e.Time, e.Topic, e.Payload, seq)
		}
	}
	seq, err := b.Append(context.Background(), "t/v2", payload("new"))
	if err != nil || seq != n+1 {
		t.Fatalf("first append after migration: seq %d, %v; want %d", seq, err, n+1)
	}
	es = peekAll(t, b)
	if last := es[len(es)-1]; last.Pos != n+1 || string(last.Payload) != fmt.Sprintf("new#%d", n+1) {
		t.Fatalf("first append after migration at position %d: %q", last.Pos, last.Payload)
	}
	b.Ack(acked + 1)
	settled(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening a migrated buffer migrates nothing again.
	b = open(t, dir, nil)
	if f, pos, seq := storedFormat(t, b); f != FormatVersion || pos != n+2 || seq != n+2 {
		t.Errorf("after reopen: m/format %d, m/next %d, m/seq %d; want %d, %d, %d", f, pos, seq, FormatVersion, n+2, n+2)
	}
	if b.meta.migrated != 0 {
		t.Errorf("migrated again from format %d", b.meta.migrated)
	}
	if es := peekAll(t, b); len(es) != n-acked || es[0].Pos != acked+2 || es[len(es)-1].Pos != n+1 {
		t.Fatalf("after reopen: %d messages, positions %d..%d", len(es), es[0].Pos, es[len(es)-1].Pos)
	}
	if s := appendN(t, b, 1, "t")[0]; s != n+2 {
		t.Fatalf("seq after reopen %d, want %d", s, n+2)
	}
}

// TestNewerFormatRefusedUntouched: a buffer written by a newer scangw is
// refused, is not corrupt, and is neither moved nor its data changed, even
// with Heal.
func TestNewerFormatRefusedUntouched(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buffer")
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 10, "t")
	b.Close()
	db, err := badger.Open(badgerOptions(dir, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return putUint(txn, keyFormat, 3) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := snapshot(t, dir)

	for _, ro := range []bool{false, true} {
		_, err = Open(Options{Dir: dir, Heal: true, ReadOnly: ro})
		if !errors.Is(err, ErrNewerFormat) || IsCorrupt(err) {
			t.Fatalf("Open(ReadOnly: %v) of format 3 = %v (IsCorrupt %v), want ErrNewerFormat, not corrupt", ro, err, IsCorrupt(err))
		}
	}
	if asides, _ := filepath.Glob(dir + ".corrupt-*"); len(asides) != 0 {
		t.Fatalf("a newer buffer was moved aside: %v", asides)
	}
	// A writable open lets Badger keep house (it starts a new value log
	// and deletes empty ones), so files may differ; the data must not.
	if err := sameContent(before, snapshot(t, dir)); err != nil {
		t.Logf("files after the refusal: %v", err)
	}
	db, err = badger.Open(badgerOptions(dir, slog.New(slog.DiscardHandler)).WithReadOnly(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		if f, err := getUint(txn, keyFormat); err != nil || f != 3 {
			return fmt.Errorf("m/format %d, %v", f, err)
		}
		n := 0
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixQueue})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		if n != 10 {
			return fmt.Errorf("%d messages, want 10", n)
		}
		return nil
	})
	if err != nil {
		t.Errorf("the refused buffer: %v", err)
	}
}
