package buffer

import (
	"context"
	"encoding/binary"
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
			v := encodeEntryV1(at.Add(time.Duration(seq)*time.Millisecond), "t/v1", fmt.Appendf(nil, `{"seq":%d}`, seq))
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
		if e.Pos != seq || e.Stream != "t/v1" || string(e.Payload) != fmt.Sprintf(`{"seq":%d}`, seq) ||
			!e.Time.Equal(at.Add(time.Duration(seq)*time.Millisecond)) || e.Seq != 0 || e.Epoch != "" {
			t.Fatalf("entry %d = {%d %v %q %q seq %d epoch %q}, want position %d, seq and epoch unknown", i, e.Pos, e.Time, e.Stream, e.Payload, e.Seq, e.Epoch, seq)
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
	if err := db.Update(func(txn *badger.Txn) error { return putUint(txn, keyFormat, FormatVersion+1) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := snapshot(t, dir)

	for _, ro := range []bool{false, true} {
		_, err = Open(Options{Dir: dir, Heal: true, ReadOnly: ro})
		if !errors.Is(err, ErrNewerFormat) || IsCorrupt(err) {
			t.Fatalf("Open(ReadOnly: %v) of format %d = %v (IsCorrupt %v), want ErrNewerFormat, not corrupt", ro, FormatVersion+1, err, IsCorrupt(err))
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
		if f, err := getUint(txn, keyFormat); err != nil || f != FormatVersion+1 {
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

// encodeEntryV1 encodes an entry the way scangw did before entry encoding
// v2: no seq, no epoch.
func encodeEntryV1(at time.Time, topic string, payload []byte) []byte {
	buf := []byte{entryV1}
	buf = binary.BigEndian.AppendUint64(buf, uint64(at.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(topic)))
	buf = append(buf, topic...)
	return append(buf, payload...)
}

// TestEntryEncoding: what each stored form decodes to in a buffer whose
// epoch is "holder", and what v2 costs over v1.
func TestEntryEncoding(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC)
	for _, tc := range []struct {
		name      string
		v         []byte
		holder    string
		seq       uint64
		epoch     string
		stream    string
		payload   string
		wantSize  int // 0: not checked
		wantError bool
	}{
		{name: "v2 born here", v: encodeEntry(at, 1000, "", "scans/dock-1", []byte("{}")), holder: "H",
			seq: 1000, epoch: "H", stream: "scans/dock-1", payload: "{}",
			// v1 plus two bytes of seq and one of epoch length.
			wantSize: len(encodeEntryV1(at, "scans/dock-1", []byte("{}"))) + 3},
		{name: "v2 salvaged from another epoch", v: encodeEntry(at, 7, "old-epoch", "t", []byte("p")), holder: "H",
			seq: 7, epoch: "old-epoch", stream: "t", payload: "p"},
		{name: "v2 seq unknown", v: encodeEntry(at, 0, "", "t", []byte("p")), holder: "H",
			stream: "t", payload: "p"},
		{name: "v2 seq unknown ignores a stored epoch", v: encodeEntry(at, 0, "old-epoch", "t", nil), holder: "H",
			stream: "t"},
		{name: "v2 born in a buffer whose epoch is unknown", v: encodeEntry(at, 7, "", "t", []byte("p")), holder: "",
			stream: "t", payload: "p"},
		{name: "v1: seq and epoch unknown, not the holder's", v: encodeEntryV1(at, "gw/scans/dock-1", []byte(`{"seq":3}`)), holder: "H",
			stream: "gw/scans/dock-1", payload: `{"seq":3}`},
		{name: "v2 empty stream and payload", v: encodeEntry(at, 1, "", "", nil), holder: "H", seq: 1, epoch: "H"},
		{name: "unknown version", v: append([]byte{9}, encodeEntry(at, 1, "", "t", nil)[1:]...), holder: "H", wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := decodeEntry(3, tc.v, tc.holder)
			if tc.wantError {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Pos != 3 || !e.Time.Equal(at) || e.Seq != tc.seq || e.Epoch != tc.epoch || e.Stream != tc.stream || string(e.Payload) != tc.payload {
				t.Errorf("decoded {pos %d, %v, seq %d, epoch %q, stream %q, %q}, want {3, %v, %d, %q, %q, %q}",
					e.Pos, e.Time, e.Seq, e.Epoch, e.Stream, e.Payload, at, tc.seq, tc.epoch, tc.stream, tc.payload)
			}
			if tc.wantSize != 0 && len(tc.v) != tc.wantSize {
				t.Errorf("%d bytes, want %d", len(tc.v), tc.wantSize)
			}
		})
	}
}

// writeFormat2 writes a format-2 buffer by hand, the way the scangw before
// entry encoding v2 left it: v1 entries at positions 1..n, seqs equal.
func writeFormat2(t testing.TB, dir, epoch string, n int, at time.Time) {
	t.Helper()
	db, err := badger.Open(badgerOptions(dir, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(txn *badger.Txn) error {
		for k, v := range map[string]uint64{string(keyFormat): 2, string(keyNext): uint64(n + 1), string(keySeq): uint64(n + 1)} {
			if err := putUint(txn, []byte(k), v); err != nil {
				return err
			}
		}
		if err := txn.Set(keyEpoch, []byte(epoch)); err != nil {
			return err
		}
		for seq := 1; seq <= n; seq++ {
			v := encodeEntryV1(at, "gw/scans/s", fmt.Appendf(nil, `{"seq":%d,"epoch":%q}`, seq, epoch))
			if err := txn.Set(queueKey(uint64(seq)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromFormat2: a format-2 buffer becomes format 3 without a
// rewrite; its v1 entries read with their seq unknown, in the buffer's
// epoch or not, and new appends are v2. A read-only open migrates nothing.
func TestMigrateFromFormat2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buffer")
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	writeFormat2(t, dir, "epoch-of-format-2", 3, at)

	r, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != 2 || r.NextSeq() != 4 {
		t.Errorf("read-only open: format %d, next seq %d; want 2, 4", r.Format(), r.NextSeq())
	}
	if f, _, _ := storedFormat(t, r); f != 2 {
		t.Errorf("a read-only open migrated to %d", f)
	}
	r.Close()

	b := open(t, dir, nil)
	if f, pos, seq := storedFormat(t, b); f != FormatVersion || pos != 4 || seq != 4 || b.meta.migrated != 2 {
		t.Errorf("after migration: m/format %d, m/next %d, m/seq %d, migrated from %d; want %d, 4, 4, 2", f, pos, seq, b.meta.migrated, FormatVersion)
	}
	if b.Epoch() != "epoch-of-format-2" {
		t.Errorf("epoch %q after migration", b.Epoch())
	}
	if s := appendN(t, b, 1, "scans/s")[0]; s != 4 {
		t.Fatalf("first seq after migration %d, want 4", s)
	}
	es := peekAll(t, b)
	if len(es) != 4 {
		t.Fatalf("%d messages, want 4", len(es))
	}
	for _, e := range es[:3] {
		if e.Seq != 0 || e.Epoch != "" || e.Stream != "gw/scans/s" {
			t.Errorf("v1 entry at %d: seq %d, epoch %q, stream %q; want the seq unknown", e.Pos, e.Seq, e.Epoch, e.Stream)
		}
	}
	if e := es[3]; e.Seq != 4 || e.Epoch != b.Epoch() || e.Stream != "scans/s" {
		t.Errorf("new entry: seq %d, epoch %q, stream %q", e.Seq, e.Epoch, e.Stream)
	}
}
