// Package buffer is scangw's durable store: the queue of scans waiting for
// the broker, the gateway's scan sequence, and the small state that must
// survive a reboot. It sits on Badger, tuned for a 1 GB board.
//
// # The queue
//
// Every message is stored under its sequence number (an 8-byte big-endian
// key), so Badger's key order is the send order. The number is assigned in
// the same transaction that stores the message and advances a "next" counter
// in that transaction too, so the sequence is gap-free across crashes: a
// message either committed with its number or the number was never used.
// (Badger's own GetSequence leases blocks of numbers and leaves gaps after a
// crash.)
//
// # Group commit
//
// One goroutine, the committer, owns all writes. Appends queue up while a
// commit is in flight and the next transaction takes them all, so one sync
// covers many scans; a lone scan is committed at once, without a timer.
// Deletes ride along in the same transactions. Append returns only after the
// sync that covers the message returned: that is what makes a good-read
// beep a promise.
//
// # Draining
//
// Peek reads in order from the lowest sequence that may still be present,
// which the buffer tracks in memory as acknowledgements commit, so a drain
// never iterates over the tombstones of what it already deleted.
package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// FormatVersion is the on-disk layout version this build writes.
const FormatVersion = 1

// maxDeletes caps the deletes in one transaction.
const maxDeletes = 4096

// ErrClosed is returned by operations on a closed buffer.
var ErrClosed = errors.New("buffer closed")

// Key space. Single-byte prefixes keep keys short: the queue key is 9 bytes.
var (
	prefixQueue = []byte{'q'}
	keyNext     = []byte("m/next")
	keyFormat   = []byte("m/format")
	keyEpoch    = []byte("m/epoch")
)

// Entry is one stored message.
type Entry struct {
	Seq     uint64
	Time    time.Time // when it was appended
	Topic   string
	Payload []byte
}

// Options configure Open.
type Options struct {
	// Dir is the Badger directory; created when missing.
	Dir string
	// Logger receives Badger's warnings and the buffer's own lines.
	Logger *slog.Logger
	// Registerer receives the buffer's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// MaxBatch caps the messages in one commit (default 256).
	MaxBatch int
	// OnCommit, when set, is called by the committer after each durable
	// commit, before any appender is released, with the sequence numbers it
	// made durable. Tests use it to prove feedback follows the sync.
	OnCommit func(seqs []uint64)
}

// Buffer is an open durable queue. It is safe for concurrent use.
type Buffer struct {
	db    *badger.DB
	log   *slog.Logger
	epoch string
	opts  Options
	m     *metrics

	reqs     chan *appendReq
	wake     chan struct{} // deletes queued
	appended chan struct{} // signalled after each commit that stored messages
	stop     chan struct{}
	done     chan struct{}
	closeMu  sync.Once

	depth atomic.Int64

	mu          sync.Mutex
	next        uint64              // next sequence to assign; written by the committer under mu
	low         uint64              // every seq below it is deleted
	pendingDel  map[uint64]struct{} // acked, delete not yet committed
	deletedHigh map[uint64]struct{} // committed deletes above low
}

type appendReq struct {
	topic string
	build func(seq uint64) ([]byte, error)
	at    time.Time
	done  chan appendResult
}

type appendResult struct {
	seq uint64
	err error
}

// Open opens (creating if needed) the buffer in opts.Dir.
func Open(opts Options) (*Buffer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create buffer dir: %w", err)
	}
	db, err := badger.Open(badgerOptions(opts.Dir, opts.Logger))
	if err != nil {
		return nil, fmt.Errorf("open buffer %s: %w", opts.Dir, err)
	}
	b := &Buffer{
		db:          db,
		log:         opts.Logger,
		opts:        opts,
		reqs:        make(chan *appendReq, 1024),
		wake:        make(chan struct{}, 1),
		appended:    make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		pendingDel:  make(map[uint64]struct{}),
		deletedHigh: make(map[uint64]struct{}),
	}
	if err := b.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open buffer %s: %w", opts.Dir, err)
	}
	if opts.Registerer != nil {
		b.m = newMetrics(opts.Registerer, b)
	}
	go b.commitLoop()
	return b, nil
}

// badgerOptions are tuned for a Pi-class board: two 8 MiB memtables, no
// block cache or compression, small value-log files (Badger maps them at
// twice their size, which matters on 32-bit armv7), and a value threshold
// that keeps scan-sized values in the LSM tree.
func badgerOptions(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithCompression(options.None).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithMetricsEnabled(false)
}

// load reads the metadata, creating it for a new directory, and finds the
// queue's extent.
func (b *Buffer) load() error {
	return b.db.Update(func(txn *badger.Txn) error {
		format, err := getUint(txn, keyFormat)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if err := putUint(txn, keyFormat, FormatVersion); err != nil {
				return err
			}
			b.epoch = uuid.Must(uuid.NewV7()).String()
			if err := txn.Set(keyEpoch, []byte(b.epoch)); err != nil {
				return err
			}
		case err != nil:
			return err
		case format > FormatVersion:
			return fmt.Errorf("buffer format %d is newer than this build understands (%d): run a newer scangw or move the directory aside", format, FormatVersion)
		default:
			item, err := txn.Get(keyEpoch)
			if err != nil {
				return fmt.Errorf("read epoch: %w", err)
			}
			ep, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			b.epoch = string(ep)
		}
		next, err := getUint(txn, keyNext)
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if next == 0 {
			next = 1 // seq starts at 1 in every epoch
		}
		b.next = next

		// One walk over the queue at start-up finds its low end and depth;
		// after this, drains seek past tombstones instead.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixQueue})
		defer it.Close()
		var n int64
		b.low = next
		for it.Rewind(); it.Valid(); it.Next() {
			seq := seqOf(it.Item().Key())
			if n == 0 {
				b.low = seq
			}
			n++
		}
		b.depth.Store(n)
		return nil
	})
}

// Epoch names this buffer's life: it changes only when the buffer had to be
// started afresh, and tells consumers that seq restarted.
func (b *Buffer) Epoch() string { return b.epoch }

// Depth is the number of messages stored and not yet acknowledged.
func (b *Buffer) Depth() int64 { return b.depth.Load() }

// Appended is signalled after each commit that stored new messages. It has
// one slot: one reader (the uplink) is expected.
func (b *Buffer) Appended() <-chan struct{} { return b.appended }

// Append stores one message durably and returns its sequence number. build
// makes the payload once the number is known; it runs on the committer
// goroutine and must be quick. Append returns only after the sync that
// covers the message returned, or with an error: then nothing was stored
// and no number was used.
func (b *Buffer) Append(ctx context.Context, topic string, build func(seq uint64) ([]byte, error)) (uint64, error) {
	req := &appendReq{topic: topic, build: build, at: time.Now(), done: make(chan appendResult, 1)}
	select {
	case b.reqs <- req:
	case <-b.stop:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Once queued, wait for the verdict even if ctx ends: the committer may
	// be syncing this very message, and the caller must learn the truth.
	res := <-req.done
	return res.seq, res.err
}

// Ack marks seq delivered. The delete is committed with the next
// transaction; a delete lost in a crash only causes a resend.
func (b *Buffer) Ack(seq uint64) {
	b.mu.Lock()
	if seq >= b.low && seq < b.next {
		b.pendingDel[seq] = struct{}{}
	}
	b.mu.Unlock()
	b.signal(b.wake)
}

// Peek returns up to max messages in sequence order, starting at from (or
// at the lowest stored one, if that is higher), skipping acknowledged ones.
func (b *Buffer) Peek(from uint64, max int) ([]Entry, error) {
	b.mu.Lock()
	if from < b.low {
		from = b.low
	}
	b.mu.Unlock()
	var out []Entry
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixQueue, PrefetchValues: false})
		defer it.Close()
		for it.Seek(queueKey(from)); it.Valid() && len(out) < max; it.Next() {
			item := it.Item()
			seq := seqOf(item.Key())
			b.mu.Lock()
			_, acked := b.pendingDel[seq]
			b.mu.Unlock()
			if acked {
				continue
			}
			var e Entry
			err := item.Value(func(v []byte) error {
				var err error
				e, err = decodeEntry(seq, v)
				return err
			})
			if err != nil {
				return fmt.Errorf("read seq %d: %w", seq, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("peek: %w", err)
	}
	return out, nil
}

// Oldest returns the append time of the oldest unacknowledged message.
func (b *Buffer) Oldest() (time.Time, bool) {
	es, err := b.Peek(0, 1)
	if err != nil || len(es) == 0 {
		return time.Time{}, false
	}
	return es[0].Time, true
}

// Close stops the committer, failing appends that are still queued, and
// closes Badger. It is safe to call more than once.
func (b *Buffer) Close() error {
	var err error
	b.closeMu.Do(func() {
		close(b.stop)
		<-b.done
		if b.m != nil {
			b.m.unregister()
		}
		err = b.db.Close()
	})
	return err
}

func (b *Buffer) commitLoop() {
	defer close(b.done)
	batch := make([]*appendReq, 0, b.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-b.stop:
			b.drainClosed()
			return
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.wake:
		}
		// Take whatever else queued up while we waited or committed: that
		// is the group in group commit.
	gather:
		for len(batch) < cap(batch) {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		b.commit(batch)
	}
}

// drainClosed fails appends still queued at Close.
func (b *Buffer) drainClosed() {
	for {
		select {
		case r := <-b.reqs:
			r.done <- appendResult{err: ErrClosed}
		default:
			return
		}
	}
}

func (b *Buffer) commit(batch []*appendReq) {
	b.mu.Lock()
	dels := make([]uint64, 0, min(len(b.pendingDel), maxDeletes))
	for seq := range b.pendingDel {
		if len(dels) == maxDeletes {
			// Keep the transaction well under Badger's entry cap; the
			// rest go with the next one.
			b.signal(b.wake)
			break
		}
		dels = append(dels, seq)
	}
	next := b.next
	b.mu.Unlock()
	if len(batch) == 0 && len(dels) == 0 {
		return
	}

	start := time.Now()
	results := make([]appendResult, len(batch))
	seqs := make([]uint64, 0, len(batch))
	txn := b.db.NewTransaction(true)
	err := func() error {
		for i, r := range batch {
			payload, err := r.build(next)
			if err != nil {
				results[i].err = fmt.Errorf("encode: %w", err)
				continue
			}
			if err := txn.Set(queueKey(next), encodeEntry(r.at, r.topic, payload)); err != nil {
				return err
			}
			results[i].seq = next
			seqs = append(seqs, next)
			next++
		}
		if len(seqs) > 0 {
			if err := putUint(txn, keyNext, next); err != nil {
				return err
			}
		}
		for _, seq := range dels {
			if err := txn.Delete(queueKey(seq)); err != nil {
				return err
			}
		}
		return txn.Commit()
	}()
	txn.Discard()
	if b.m != nil {
		b.m.commitSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		err = fmt.Errorf("commit: %w", err)
		b.log.Error("buffer commit failed", "err", err, "scans", len(batch), "deletes", len(dels))
		for i := range results {
			if results[i].err == nil {
				results[i] = appendResult{err: err}
			}
		}
	} else {
		b.applyCommit(next, dels)
		b.depth.Add(int64(len(seqs) - len(dels)))
		if b.opts.OnCommit != nil && len(seqs) > 0 {
			b.opts.OnCommit(seqs)
		}
	}
	for i, r := range batch {
		r.done <- results[i]
	}
	if err == nil && len(seqs) > 0 {
		b.signal(b.appended)
	}
}

// signal wakes a one-slot channel's reader without blocking.
func (b *Buffer) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// applyCommit publishes a commit's effects: the new next sequence, and the
// deletes, advancing low past every contiguous deleted sequence.
func (b *Buffer) applyCommit(next uint64, dels []uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next = next
	for _, seq := range dels {
		delete(b.pendingDel, seq)
		b.deletedHigh[seq] = struct{}{}
	}
	for {
		if _, ok := b.deletedHigh[b.low]; !ok {
			break
		}
		delete(b.deletedHigh, b.low)
		b.low++
	}
}

func queueKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixQueue[0]
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func seqOf(key []byte) uint64 {
	if len(key) != 9 {
		return 0
	}
	return binary.BigEndian.Uint64(key[1:])
}

// Entry encoding, version 1:
//
//	[1] version  [8] append time, unix ns  [uvarint] topic length  topic  payload
const entryV1 = 1

func encodeEntry(at time.Time, topic string, payload []byte) []byte {
	buf := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(topic)+len(payload))
	buf = append(buf, entryV1)
	buf = binary.BigEndian.AppendUint64(buf, uint64(at.UnixNano()))
	buf = binary.AppendUvarint(buf, uint64(len(topic)))
	buf = append(buf, topic...)
	return append(buf, payload...)
}

func decodeEntry(seq uint64, v []byte) (Entry, error) {
	if len(v) < 9 || v[0] != entryV1 {
		return Entry{}, errors.New("unknown entry encoding")
	}
	at := int64(binary.BigEndian.Uint64(v[1:9]))
	n, w := binary.Uvarint(v[9:])
	if w <= 0 || uint64(len(v)-9-w) < n {
		return Entry{}, errors.New("truncated entry")
	}
	rest := v[9+w:]
	return Entry{
		Seq:     seq,
		Time:    time.Unix(0, at),
		Topic:   string(rest[:n]),
		Payload: append([]byte(nil), rest[n:]...),
	}, nil
}

func getUint(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("%s: bad length %d", key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func putUint(txn *badger.Txn, key []byte, v uint64) error {
	return txn.Set(key, binary.BigEndian.AppendUint64(nil, v))
}

// badgerLogger forwards Badger's warnings and errors to slog; its info
// lines (compactions, flushes) are noise on a gateway's journal.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger: " + trim(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger: " + trim(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Infof(string, ...any)  {}
func (l badgerLogger) Debugf(string, ...any) {}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
