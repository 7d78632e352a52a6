package buffer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
)

// IsCorrupt reports whether an Open error proves that the directory's
// content is damaged. Only such errors justify moving a buffer aside. A
// held lock, a permission problem, a full or read-only disk, or an I/O error
// from a failing card are not proof: they are reported and retried, since
// moving the directory would change nothing (or lose it).
func IsCorrupt(err error) bool {
	if err == nil || errors.Is(err, ErrLocked) || errors.Is(err, ErrNewerFormat) {
		return false
	}
	// A read-only open of a buffer whose writer died: its write-ahead log
	// has a tail to trim, which only a writer may do. Badger's wrapping
	// keeps only the text.
	if errors.Is(err, badger.ErrTruncateNeeded) || strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error()) {
		return false
	}
	// A manifest written by a newer Badger (a scangw downgrade) is no more
	// damage than a newer buffer format.
	if strings.Contains(err.Error(), "manifest has unsupported version") {
		return false
	}
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.ENOSPC, syscall.EROFS, syscall.EIO, syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE} {
		if errors.Is(err, errno) {
			return false
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return false
	}
	if errors.Is(err, y.ErrChecksumMismatch) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, sign := range []string{"checksum", "bad magic", "manifest", "corrupt", "truncat", "unexpected eof", "invalid", "table", "magic"} {
		if strings.Contains(msg, sign) {
			return true
		}
	}
	return false
}

// healing carries a moved-aside directory to the fresh buffer.
type healing struct {
	aside string
	cause error
}

// moveAside renames a corrupt buffer directory to <dir>.corrupt-<time>.
func moveAside(dir string, cause error, log *slog.Logger) (*healing, error) {
	aside := fmt.Sprintf("%s.corrupt-%s", filepath.Clean(dir), time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(dir, aside); err != nil {
		return nil, fmt.Errorf("buffer corrupt (%v), and moving it aside failed: %w", cause, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create fresh buffer dir: %w", err)
	}
	log.Error("BUFFER CORRUPT: moved aside, starting a fresh buffer with a new epoch",
		"dir", dir, "moved_to", aside, "cause", cause)
	return &healing{aside: aside, cause: cause}, nil
}

// finishHealing salvages the moved-aside directory into the fresh buffer.
func (b *Buffer) finishHealing(h *healing) {
	if b.m != nil {
		b.m.healed.Inc()
	}
	n, err := b.Salvage(context.Background(), h.aside)
	if err != nil {
		b.log.Error("buffer salvage incomplete", "from", h.aside, "salvaged", n, "err", err)
		return
	}
	b.log.Error("buffer salvaged after corruption", "from", h.aside, "salvaged", n, "epoch", b.Epoch())
}

// Salvage reads every message it can from another buffer directory (one
// moved aside as corrupt, or a copy) and queues those not already in this
// buffer, in their original order, unchanged: they keep the seq and epoch
// they were born with, and their entries name that epoch (the source
// directory's, unless they were salvaged into it from yet another). Entries
// whose seq the source did not know (encoding v1), or whose epoch cannot
// be told because the source's epoch is unreadable, are stored with the
// seq unknown. A message is "already here" when a stored payload is
// byte-for-byte the same (the payload carries the event id). It returns the
// number of messages queued. The source directory is not modified.
func (b *Buffer) Salvage(ctx context.Context, dir string) (int, error) {
	if b.opts.ReadOnly {
		return 0, ErrReadOnly // no committer would take the messages
	}
	found, state, readErr := readAny(dir, b.log)
	if err := b.salvageState(state); err != nil {
		return 0, fmt.Errorf("salvage state: %w", err)
	}
	if len(found) == 0 {
		return 0, readErr
	}
	have, err := b.payloadHashes()
	if err != nil {
		return 0, err
	}
	var reqs []*appendReq
	for _, e := range found {
		h := sha256.Sum256(e.Payload)
		if _, dup := have[h]; dup {
			continue
		}
		have[h] = struct{}{}
		reqs = append(reqs, rawReq(e))
	}
	n, err := b.enqueueRaw(ctx, reqs)
	if b.m != nil {
		b.m.salvaged.Add(float64(n))
	}
	if err != nil {
		return n, fmt.Errorf("salvage: %w", err)
	}
	return n, readErr
}

// enqueueRaw queues stored-as-is messages and waits for them. It queues
// them all before waiting, so they commit in large groups and in order.
func (b *Buffer) enqueueRaw(ctx context.Context, reqs []*appendReq) (int, error) {
	if b.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	sent := 0
send:
	for _, r := range reqs {
		select {
		case b.reqs <- r:
			sent++
		case <-b.stop:
			break send
		case <-ctx.Done():
			break send
		}
	}
	n := 0
	for _, r := range reqs[:sent] {
		if res := b.wait(r); res.err != nil {
			return n, res.err
		}
		n++
	}
	if sent < len(reqs) {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, ErrClosed
	}
	return n, nil
}

// checkDir looks for damage that Badger would handle badly, before Badger
// opens the directory. It opens every table the manifest lists and
// verifies its blocks' checksums, and it checks the headers of the logs.
// Badger cannot be left to find these:
//
//   - it opens tables on goroutines of its own and panics on a truncated
//     one (table.initIndex reads its footer past the end of the file),
//     which would kill the process at every start instead of returning an
//     error that Heal can act on;
//   - by default it checks only a table's index, so a damaged data block
//     silently hides every message after it; and its own check at open
//     (OnTableRead) dereferences a nil block on the first unreadable one
//     (table.VerifyChecksum), another panic on its goroutine;
//   - an open that fails late has already changed the directory that Heal
//     then moves aside: it truncated the manifest, and flushed and deleted
//     write-ahead logs.
//
// Only proof of damage is reported. Tables the manifest does not list are
// left to Badger (an interrupted flush or compaction leaves those, and
// Badger deletes them), and so are files that cannot be read at all.
func checkDir(dir string, log *slog.Logger) error {
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return nil
	}
	mf, _, err := badger.ReplayManifestFile(f, 0, badgerOptions(dir, log))
	f.Close()
	if err != nil {
		return fmt.Errorf("read MANIFEST: %w", err)
	}
	for id, tm := range mf.Tables {
		path := table.NewFilename(id, dir)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			// Badger deletes a table only after the manifest says so.
			return fmt.Errorf("corrupt: the manifest lists table %s, which does not exist", filepath.Base(path))
		}
		if err := checkTable(path, tm.Compression); err != nil {
			return err
		}
	}
	for _, pattern := range []string{"*.mem", "*.vlog"} {
		paths, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, path := range paths {
			if err := checkLogHeader(path); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkLogHeader checks the header of a write-ahead or value log: its
// first 8 bytes name the encryption key, and this buffer encrypts nothing.
// Badger would find the bad key only after it replayed the logs before it.
func checkLogHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var key [8]byte
	if _, err := io.ReadFull(f, key[:]); err != nil {
		return nil // too short for a header: Badger starts it afresh
	}
	if id := binary.BigEndian.Uint64(key[:]); id != 0 {
		return fmt.Errorf("corrupt log %s: its header names encryption key %d, and the buffer is not encrypted", filepath.Base(path), id)
	}
	return nil
}

func checkTable(path string, c options.CompressionType) (err error) {
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	defer mf.Close(-1)
	defer func() {
		if r := recover(); r != nil {
			// Badger's panic may carry a multi-line dump.
			err = fmt.Errorf("corrupt table %s: unreadable (%s)", filepath.Base(path), strings.Join(strings.Fields(fmt.Sprint(r)), " "))
		}
	}()
	// Not DecrRef: at zero references a Table deletes its file.
	t, err := table.OpenTable(mf, table.Options{ChkMode: options.NoVerification, BlockSize: 4 << 10, Compression: c})
	if err == nil {
		err = t.VerifyChecksum()
	}
	if err != nil {
		return fmt.Errorf("corrupt table %s: %w", filepath.Base(path), err)
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (b *Buffer) payloadHashes() (map[[32]byte]struct{}, error) {
	have := map[[32]byte]struct{}{}
	var from uint64
	for {
		es, err := b.Peek(from, 1024)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return have, nil
		}
		for _, e := range es {
			have[sha256.Sum256(e.Payload)] = struct{}{}
			from = e.Pos + 1
		}
	}
}

// readAny recovers queue entries from a possibly damaged directory, working
// on a scratch copy. First as a whole database; if Badger refuses it, table
// by table, then the write-ahead logs on their own. The entries' epochs are
// filled in with the directory's, wherever it was found.
func readAny(dir string, log *slog.Logger) ([]Entry, map[string]stateItem, error) {
	scratch, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".scangw-salvage-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(scratch)
	if err := copyFiles(dir, scratch); err != nil {
		return nil, nil, fmt.Errorf("copy %s: %w", dir, err)
	}
	state := map[string]stateItem{}
	if checkDir(scratch, log) == nil {
		if db, err := badger.Open(badgerOptions(scratch, log)); err == nil {
			es, epoch, err := readQueue(db)
			readState(db, state)
			db.Close()
			return inBuffer(es, epoch), state, err
		}
	}

	// Damaged beyond opening: every readable table, then the WAL files
	// replayed into an otherwise empty database. Later sources win. The
	// directory's epoch was written once, at its creation: any copy of it
	// found is the one.
	byPos := map[uint64]Entry{}
	var (
		epoch string
		errs  []error
	)
	tables, _ := filepath.Glob(filepath.Join(scratch, "*.sst"))
	slices.Sort(tables) // table ids grow with age: newer tables last
	for _, path := range tables {
		ep, err := readTable(path, byPos, state)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(path), err))
		}
		epoch = cmp.Or(ep, epoch)
	}
	for _, path := range append(tables, filepath.Join(scratch, "MANIFEST")) {
		os.Remove(path)
	}
	if db, err := badger.Open(badgerOptions(scratch, log)); err == nil {
		es, ep, err := readQueue(db)
		readState(db, state)
		db.Close()
		for _, e := range es {
			byPos[e.Pos] = e
		}
		epoch = cmp.Or(ep, epoch)
		if err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("write-ahead logs: %w", err))
	}
	out := make([]Entry, 0, len(byPos))
	for _, e := range byPos {
		if e.Payload != nil {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Pos, b.Pos) })
	return inBuffer(out, epoch), state, errors.Join(errs...)
}

// inBuffer fills in the epoch of the buffer that held es (see
// Entry.inBuffer), in place.
func inBuffer(es []Entry, holder string) []Entry {
	for i := range es {
		es[i] = es[i].inBuffer(holder)
	}
	return es
}

// readQueue reads a database's queue entries as stored (their epochs not
// filled in) and its epoch ("" when it has none).
func readQueue(db *badger.DB) ([]Entry, string, error) {
	var (
		out   []Entry
		epoch string
	)
	err := db.View(func(txn *badger.Txn) error {
		if item, err := txn.Get(keyEpoch); err == nil {
			if v, err := item.ValueCopy(nil); err == nil {
				epoch = string(v)
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixQueue})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			pos := posOf(it.Item().Key())
			it.Item().Value(func(v []byte) error {
				if e, err := decodeStored(pos, v); err == nil {
					out = append(out, e)
				}
				return nil // an undecodable entry is skipped, not fatal
			})
		}
		return nil
	})
	return out, epoch, err
}

// Badger's value meta bits (value.go); not exported.
const (
	metaDelete       = 1 << 0
	metaValuePointer = 1 << 1
)

// readTable reads queue entries out of one SSTable, newest version of each
// key, as stored (their epochs not filled in); a tombstone removes the
// entry (recorded with a nil payload so an older table cannot resurrect
// it). It returns the buffer's epoch if the table holds it.
func readTable(path string, byPos map[uint64]Entry, state map[string]stateItem) (epoch string, err error) {
	defer func() {
		// A damaged table can make the table reader index out of range.
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged table: %v", r)
		}
	}()
	mf, err := z.OpenMmapFile(path, os.O_RDWR, 0)
	if err != nil && !errors.Is(err, z.NewFile) {
		return "", err
	}
	t, err := table.OpenTable(mf, table.Options{ChkMode: options.NoVerification, BlockSize: 4 << 10})
	if err != nil {
		return "", err
	}
	defer t.DecrRef()
	it := t.NewIterator(0)
	defer it.Close()
	seenTs := map[uint64]uint64{}
	for it.Rewind(); it.Valid(); it.Next() {
		key := y.ParseKey(it.Key())
		if bytes.Equal(key, keyEpoch) && it.Value().Meta&(metaDelete|metaValuePointer) == 0 {
			epoch = string(it.Value().Value)
			continue
		}
		if bytes.HasPrefix(key, prefixState) {
			tableState(state, key, y.ParseTs(it.Key()), it.Value())
			continue
		}
		if len(key) != 9 || key[0] != prefixQueue[0] {
			continue
		}
		pos, ts := posOf(key), y.ParseTs(it.Key())
		if ts < seenTs[pos] {
			continue
		}
		seenTs[pos] = ts
		vs := it.Value()
		switch {
		case vs.Meta&metaDelete != 0:
			byPos[pos] = Entry{Pos: pos}
		case vs.Meta&metaValuePointer != 0:
			// The value lives in the value log; scans are below the
			// value threshold, so this is rare and skipped.
		default:
			if e, err := decodeStored(pos, vs.Value); err == nil {
				byPos[pos] = e
			}
		}
	}
	return epoch, nil
}

func copyFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// The state (prefixState: a station's mode and workflow, the rule cache,
// the serial counters and issue records, the print outbox, the workflow
// index) is salvaged too: a serial counter lost to a heal would start
// again and issue its numbers twice.

// stateItem is one salvaged state value: its newest version seen, and
// when it expires (Unix seconds, 0 never). A nil value is a delete.
type stateItem struct {
	value     []byte
	ts        uint64
	expiresAt uint64
}

// readState adds a database's live state values to state; the database's
// view wins over what the tables said (it is their merge).
func readState(db *badger.DB, state map[string]stateItem) {
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixState, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				continue // unreadable: the tables' copy, if any, stands
			}
			state[string(item.Key())] = stateItem{value: v, ts: ^uint64(0), expiresAt: item.ExpiresAt()}
		}
		return nil
	})
}

// tableState records a state key's version from an SSTable if it is newer
// than the one seen.
func tableState(state map[string]stateItem, key []byte, ts uint64, vs y.ValueStruct) {
	if old, ok := state[string(key)]; ok && old.ts >= ts {
		return
	}
	switch {
	case vs.Meta&metaDelete != 0:
		state[string(key)] = stateItem{ts: ts}
	case vs.Meta&metaValuePointer != 0:
		// In the value log: state values are small, this is rare.
	default:
		state[string(key)] = stateItem{value: bytes.Clone(vs.Value), ts: ts, expiresAt: vs.ExpiresAt}
	}
}

// salvageState writes the salvaged state values this buffer does not have
// (a heal's fresh buffer has none; a manual salvage into a running
// buffer's directory keeps what it has), with what is left of their
// time to live; expired ones and deletes are dropped.
func (b *Buffer) salvageState(state map[string]stateItem) error {
	if len(state) == 0 {
		return nil
	}
	now := uint64(time.Now().Unix())
	var missing []string
	err := b.db.View(func(txn *badger.Txn) error {
		for k, it := range state {
			if it.value == nil || (it.expiresAt != 0 && it.expiresAt <= now) {
				continue
			}
			switch _, err := txn.Get([]byte(k)); {
			case errors.Is(err, badger.ErrKeyNotFound):
				missing = append(missing, k)
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	wb := b.db.NewWriteBatch() // splits into as many transactions as it takes
	defer wb.Cancel()
	for _, k := range missing {
		it := state[k]
		e := badger.NewEntry([]byte(k), it.value)
		if it.expiresAt != 0 {
			e = e.WithTTL(time.Duration(it.expiresAt-now) * time.Second)
		}
		if err := wb.SetEntry(e); err != nil {
			return err
		}
	}
	return wb.Flush()
}
