package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// maxDeletes caps the deletes in one transaction, well under Badger's
// per-transaction entry limit; maxAuditedDeletes when each delete also
// writes an audit copy (scan-sized values stay under 1 KiB in the tree, so
// 512 of them plus a full batch of appends stay under Badger's ~1.2 MiB).
const (
	maxDeletes        = 4096
	maxAuditedDeletes = 512
)

// ackDelay is how long an acknowledgement may wait for company before its
// delete is committed. Every commit is synced, and a synced delete costs
// as much as a synced write; but a delete lost in a crash only means a
// resend, which the event id makes harmless. Waiting lets a drain delete
// thousands of messages per sync instead of a window's worth, and appends
// take any waiting deletes along for free.
const ackDelay = 50 * time.Millisecond

var (
	// ErrClosed is returned by operations on a closed buffer.
	ErrClosed = errors.New("buffer closed")
	// ErrFull is returned when an append would pass a configured limit.
	ErrFull = errors.New("buffer full")
	// ErrLocked reports that another process (a running scangw) holds the
	// buffer directory.
	ErrLocked = errors.New("buffer directory is in use by another process")
	// ErrReadOnly is returned by writes to a buffer opened read-only.
	ErrReadOnly = errors.New("buffer opened read-only")
)

// Entry is one stored message.
type Entry struct {
	// Pos is the message's queue position: the handle to Ack it by.
	Pos  uint64
	Time time.Time // when it was appended
	// Seq is the event seq the message was born with, in Epoch. 0 means
	// unknown: the entry was stored by a scangw older than entry encoding
	// v2 (its seq is only inside the payload), or salvaged from such an
	// entry, or from a directory whose epoch could not be read. A seq
	// range (Resend) never matches such an entry.
	Seq uint64
	// Epoch is the epoch of the buffer the message was born in: this
	// buffer's for its own appends, the old buffer's for salvaged ones.
	// It is empty exactly when Seq is 0.
	Epoch string
	// Stream is whatever the appender named the message by: a station
	// passes its stream ("scans/dock-1"); entries written by older scangw
	// versions hold a full MQTT topic. The buffer treats it as opaque.
	Stream  string
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
	// Limits bound what the buffer accepts.
	Limits Limits
	// ReadOnly opens without the committer (for tools on a stopped
	// gateway's directory); it fails with ErrLocked while a daemon runs.
	ReadOnly bool
	// Heal moves a directory that Badger proves corrupt aside and starts a
	// fresh buffer (a new epoch), salvaging what can be read.
	Heal bool
	// AuditWindow keeps delivered messages this long after their PUBACK
	// (0: deleted at once), so that the central side can ask for a range
	// again (Resend) to repair a gap it detected.
	AuditWindow time.Duration
	// SeenRetention bounds how long the seen-serial index remembers a
	// serial (default 400 days).
	SeenRetention time.Duration
	// OnCommit, when set, is called by the committer after each durable
	// commit, before any appender is released, with the event seqs it made
	// durable. Tests use it to prove feedback follows the sync.
	OnCommit func(seqs []uint64)
}

// Buffer is an open durable queue. It is safe for concurrent use.
type Buffer struct {
	db       *badger.DB
	snapshot string // scratch copy a read-only open reads instead of Dir
	log      *slog.Logger
	opts     Options
	m        *metrics
	meta     meta

	reqs     chan *appendReq
	tasks    chan func()   // run on the committer between commits
	wake     chan struct{} // commit now: seen marks or a full batch of deletes
	acked    chan struct{} // deletes are waiting: commit within ackDelay
	appended chan struct{}
	stop     chan struct{}
	done     chan struct{}
	closeMu  sync.Once

	depth      atomic.Int64
	lastAppend atomic.Int64 // unix ns of the last committed append
	busy       atomic.Int64 // unix ns the commit in progress began; 0 between commits (Busy)

	mu           sync.Mutex
	nextPos      uint64              // written by the committer under mu
	nextSeq      uint64              // written by the committer under mu
	low          uint64              // every position below it is deleted
	dropMark     uint64              // nextPos at the last Reclaim
	pendingDel   map[uint64]struct{} // acked, delete not yet committed
	ackSignalled bool                // b.acked was signalled since the last commit took the deletes
	marks        map[string][]byte   // seen-index writes not yet committed
	deletedHigh  map[uint64]struct{} // committed deletes above low
	disk         diskState
}

type appendReq struct {
	stream string
	build  func(seq uint64) ([]byte, error)
	// group, when set, is a Write: its records and state, all or none
	// (stream and build are unused).
	group *Write
	raw   []byte // salvage and requeue: stored as is, takes no seq
	seq   uint64 // raw: the seq it was born with (0: unknown)
	epoch string // raw: the epoch it was born in ("" with seq 0)
	at    time.Time
	done  chan appendResult
}

// rawReq is a request to store e again, as it is, at a new position.
func rawReq(e Entry) *appendReq {
	return &appendReq{stream: e.Stream, raw: e.Payload, seq: e.Seq, epoch: e.Epoch, at: e.Time, done: make(chan appendResult, 1)}
}

type appendResult struct {
	seq  uint64
	seqs []uint64 // a Write's, one per record
	err  error
}

// Open opens (creating if needed) the buffer in opts.Dir and, unless
// opts.ReadOnly, starts its committer, so that Append works without Run:
// tools and tests append without maintenance. Close stops the committer;
// see the package comment for why Run does not own it.
func Open(opts Options) (*Buffer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.SeenRetention <= 0 {
		opts.SeenRetention = 400 * 24 * time.Hour
	}
	opts.Limits = opts.Limits.withDefaults()
	if !opts.ReadOnly {
		if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("create buffer dir: %w", err)
		}
	}
	db, err := openBadger(opts.Dir, opts.ReadOnly, opts.Logger)
	var snapshot string
	// Badger wraps with %+v, not %w: only the text carries its sentinel.
	if err != nil && opts.ReadOnly && strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error()) {
		// Stopped uncleanly: Badger must cut its logs at the last whole
		// entry, which a reader may not do. Read a scratch copy instead;
		// the directory itself is not touched.
		snapshot, db, err = openSnapshot(opts.Dir, opts.Logger)
	}
	var healed *healing
	if err != nil && opts.Heal && !opts.ReadOnly && IsCorrupt(err) {
		if healed, err = moveAside(opts.Dir, err, opts.Logger); err == nil {
			db, err = openBadger(opts.Dir, false, opts.Logger)
		}
	}
	if err != nil {
		return nil, err
	}
	b := &Buffer{
		db:          db,
		snapshot:    snapshot,
		log:         opts.Logger,
		opts:        opts,
		reqs:        make(chan *appendReq, 1024),
		tasks:       make(chan func()),
		wake:        make(chan struct{}, 1),
		acked:       make(chan struct{}, 1),
		appended:    make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		pendingDel:  make(map[uint64]struct{}),
		marks:       make(map[string][]byte),
		deletedHigh: make(map[uint64]struct{}),
	}
	if err := b.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open buffer %s: %w", opts.Dir, err)
	}
	if opts.Registerer != nil {
		b.m = newMetrics(opts.Registerer, b)
	}
	if opts.ReadOnly {
		close(b.done)
		return b, nil
	}
	b.refreshDisk()
	go b.commitLoop()
	if healed != nil {
		b.finishHealing(healed)
	}
	return b, nil
}

func openBadger(dir string, readOnly bool, log *slog.Logger) (*badger.DB, error) {
	err := underLock(dir, readOnly, func() error {
		if !readOnly {
			removeEmptyLogs(dir, log)
		}
		return checkDir(dir, log)
	})
	if err != nil {
		return nil, fmt.Errorf("open buffer %s: %w", dir, err)
	}
	// Badger releases its directory lock by closing the descriptor, so
	// after a Close in this process the lock stays held for as long as a
	// child forked meanwhile has not yet exec'd: try again briefly before
	// calling the directory taken.
	for attempt := 0; ; attempt++ {
		db, err := badger.Open(badgerOptions(dir, log).WithReadOnly(readOnly))
		if err == nil {
			return db, nil
		}
		if !strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open buffer %s: %w", dir, err)
		}
		if attempt == 4 {
			return nil, fmt.Errorf("open buffer %s: %w", dir, ErrLocked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// underLock runs f holding the lock Badger takes on dir (flock on the
// directory; shared for a reader), and reports ErrLocked when another
// process holds it. A running buffer creates and deletes files: one that
// is being created is empty for a moment, and one that is being deleted is
// truncated first, so that neither removeEmptyLogs nor checkDir may look
// while it runs. The lock is released before Badger takes it again.
func underLock(dir string, shared bool, f func() error) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // Badger reports it
	}
	defer d.Close()
	how := unix.LOCK_EX | unix.LOCK_NB
	if shared {
		how = unix.LOCK_SH | unix.LOCK_NB
	}
	if err := unix.Flock(int(d.Fd()), how); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return ErrLocked
		}
		return nil // Badger reports it
	}
	// Unlock explicitly: Close alone leaves the lock held while a child
	// forked meanwhile by another goroutine still shares the descriptor
	// (until its exec), and Badger's own lock would then be refused.
	defer unix.Flock(int(d.Fd()), unix.LOCK_UN)
	return f()
}

// removeEmptyLogs deletes zero-length memtable and value-log files. Badger
// deletes such a file by truncating it first and creates one by opening
// then sizing it; a SIGKILL or power cut in between leaves a 0-byte file
// that Badger then refuses to open ("while opening memtables ... Create a
// new file", badger issue #2207). A live one always has a header, so an
// empty one holds no data and removing it loses nothing.
func removeEmptyLogs(dir string, log *slog.Logger) {
	for _, pattern := range []string{"*.mem", "*.vlog"} {
		paths, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range paths {
			if fi, err := os.Stat(p); err == nil && fi.Size() == 0 {
				if err := os.Remove(p); err == nil {
					log.Info("removed empty log file left by an interrupted create or delete", "file", p)
				}
			}
		}
	}
}

// badgerOptions are tuned for a Pi-class board: two 8 MiB memtables, no
// block cache or compression, a bounded index cache, small value-log files
// (Badger maps them at twice their size, which matters on 32-bit armv7),
// and a value threshold that keeps scan-sized values in the LSM tree.
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
		WithIndexCacheSize(4 << 20).
		WithCompression(options.None).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithMetricsEnabled(false)
}

// load reads the metadata, creating or migrating it, and finds the queue's
// extent.
func (b *Buffer) load() error {
	walk := func(txn *badger.Txn) error {
		// One walk over the queue at start-up finds its low end and depth;
		// after this, drains seek past tombstones instead.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixQueue})
		defer it.Close()
		var n int64
		b.low = b.nextPos
		// From position 1: a marker Reclaim left at 0 is no message.
		for it.Seek(queueKey(1)); it.Valid(); it.Next() {
			if n == 0 {
				b.low = posOf(it.Item().Key())
			}
			n++
		}
		b.depth.Store(n)
		return nil
	}
	load := func(txn *badger.Txn) error {
		m, err := loadMeta(txn, b.opts.ReadOnly)
		if err != nil {
			return err
		}
		b.meta, b.nextPos, b.nextSeq = m, m.nextPos, m.nextSeq
		return walk(txn)
	}
	if b.opts.ReadOnly {
		return b.db.View(load)
	}
	if err := b.db.Update(load); err != nil {
		return err
	}
	if b.meta.migrated != 0 {
		b.log.Info("buffer format migrated", "from", b.meta.migrated, "to", FormatVersion)
	}
	return nil
}

// Epoch names this buffer's life: it changes only when the buffer had to be
// started afresh, and tells consumers that seq restarted.
func (b *Buffer) Epoch() string { return b.meta.epoch }

// Format is the on-disk layout version of the open directory.
func (b *Buffer) Format() uint64 { return b.meta.format }

// DiskBytes is the space the directory takes on disk (last measurement).
func (b *Buffer) DiskBytes() int64 {
	if b.opts.ReadOnly {
		return dirSize(b.opts.Dir)
	}
	return b.diskUsed()
}

// Depth is the number of messages stored and not yet acknowledged.
func (b *Buffer) Depth() int64 { return b.depth.Load() }

// NextSeq is the seq the next appended event will get.
func (b *Buffer) NextSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nextSeq
}

// Appended is signalled after each commit that stored new messages. It has
// one slot: one reader (the uplink) is expected.
func (b *Buffer) Appended() <-chan struct{} { return b.appended }

// Append stores one event durably under stream and returns its seq. build
// makes the payload once the seq is known; it runs on the committer
// goroutine and must be quick. Append returns only after the sync that
// covers the message returned, or with an error: then nothing was stored
// and no seq was used. A full buffer refuses with an error wrapping
// ErrFull.
func (b *Buffer) Append(ctx context.Context, stream string, build func(seq uint64) ([]byte, error)) (uint64, error) {
	return b.Submit(ctx, stream, build)()
}

// Submit queues an event like Append but returns at once: wait returns
// what Append would have. Events are stored in the order they were
// submitted; those queued while a commit syncs share the next.
func (b *Buffer) Submit(ctx context.Context, stream string, build func(seq uint64) ([]byte, error)) (wait func() (uint64, error)) {
	req := &appendReq{stream: stream, build: build}
	if err := b.submit(ctx, req); err != nil {
		return func() (uint64, error) { return 0, err }
	}
	return func() (uint64, error) {
		// Once queued, wait for the verdict even if the submitter's ctx
		// ended: the committer may be syncing this very message, and the
		// caller must learn the truth.
		res := b.wait(req)
		return res.seq, res.err
	}
}

// Record is one event of a Write: its stream and the builder of its
// payload, as Submit takes them.
type Record struct {
	Stream string
	Build  func(seq uint64) ([]byte, error)
	// Companion makes the record another rendering of the one before it
	// in the Write (an EPCIS document of a scan): it is stored right
	// behind it and takes no seq of its own, so the seqs stay gap-free
	// over the events themselves; Build gets the seq of the record it
	// accompanies, and its Entry has Seq 0 (a Resend by seq range does
	// not include it).
	Companion bool
}

// StateValue is a state key a Write sets (LoadState reads it); a nil
// Value deletes the key.
type StateValue struct {
	Key   string
	Value []byte
	// TTL, when positive, lets the key expire: an index that would grow
	// for ever (units counted per order) forgets what is that old.
	TTL time.Duration
}

// Write is events and state stored in one transaction: all of it or
// none. It is how a workflow keeps its state and the events that report
// it from drifting apart in a power cut: an order's progress and the
// scan that advanced it, a serial counter and the serial it issued.
type Write struct {
	Records []Record
	State   []StateValue
}

// SubmitWrite queues w like Submit; wait returns the seqs of its records
// in order once the whole of w is durable, or why none of it was stored.
// The limits count its records together: a Write that does not fit is
// refused whole.
func (b *Buffer) SubmitWrite(ctx context.Context, w Write) (wait func() ([]uint64, error)) {
	req := &appendReq{group: &w}
	if err := b.submit(ctx, req); err != nil {
		return func() ([]uint64, error) { return nil, err }
	}
	return func() ([]uint64, error) {
		res := b.wait(req)
		return res.seqs, res.err
	}
}

// submit queues req for the committer.
func (b *Buffer) submit(ctx context.Context, req *appendReq) error {
	if b.opts.ReadOnly {
		return ErrReadOnly
	}
	req.at = time.Now()
	req.done = make(chan appendResult, 1)
	select {
	case b.reqs <- req:
		return nil
	case <-b.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait returns a queued request's result.
func (b *Buffer) wait(req *appendReq) appendResult {
	select {
	case res := <-req.done:
		return res
	case <-b.done:
		// The committer has exited: it either answered before it did, or
		// never saw the request (queued as Close ran).
		select {
		case res := <-req.done:
			return res
		default:
			return appendResult{err: ErrClosed}
		}
	}
}

// Ack marks the message at pos delivered. The delete is committed with the
// next transaction; a delete lost in a crash only causes a resend. Acking a
// position again is harmless.
func (b *Buffer) Ack(pos uint64) {
	b.mu.Lock()
	// A repeated ack of a deleted position would be counted twice: the
	// depth would reach 0 with a message still waiting, and Reclaim would
	// drop that message.
	_, deleted := b.deletedHigh[pos]
	if pos >= b.low && pos < b.nextPos && !deleted {
		b.pendingDel[pos] = struct{}{}
	}
	full := len(b.pendingDel) >= b.deleteCap()
	notify := !full && b.markAcksSignalled()
	b.mu.Unlock()
	if full {
		signal(b.wake)
	} else if notify {
		signal(b.acked)
	}
}

// markAcksSignalled reports whether b.acked still needs a signal for the
// pending deletes, and marks it sent. One signal per round is enough to
// arm the committer's timer: a drain acks tens of thousands of messages a
// second. Called with mu held.
func (b *Buffer) markAcksSignalled() bool {
	if len(b.pendingDel) == 0 || b.ackSignalled {
		return false
	}
	b.ackSignalled = true
	return true
}

// Peek returns up to max messages in queue order, starting at position from
// (or at the lowest stored one, if that is higher), skipping acknowledged
// ones.
func (b *Buffer) Peek(from uint64, max int) ([]Entry, error) {
	b.mu.Lock()
	if from < b.low {
		from = b.low
	}
	// A transaction becomes visible to readers before the committer
	// publishes its new nextPos; Ack ignores positions at or past nextPos,
	// so Peek must not return them yet (the uplink is woken again after
	// applyCommit).
	end := b.nextPos
	b.mu.Unlock()
	var out []Entry
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixQueue})
		defer it.Close()
		for it.Seek(queueKey(from)); it.Valid() && len(out) < max; it.Next() {
			item := it.Item()
			pos := posOf(item.Key())
			if pos >= end {
				break
			}
			b.mu.Lock()
			_, acked := b.pendingDel[pos]
			// Deleted after this read's snapshot was taken: not waiting.
			_, deleted := b.deletedHigh[pos]
			deleted = deleted || pos < b.low
			b.mu.Unlock()
			if acked || deleted {
				continue
			}
			var e Entry
			err := item.Value(func(v []byte) error {
				var err error
				e, err = decodeEntry(pos, v, b.meta.epoch)
				return err
			})
			if err != nil {
				return fmt.Errorf("read position %d: %w", pos, err)
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

// Close stops the committer, after it committed the acknowledged deletes
// and failing appends that are still queued, and closes Badger. Call it
// only once every user of the buffer has returned (the daemon closes it
// after its errgroup): the committer is what their last appends and acks
// need. It is safe to call more than once.
func (b *Buffer) Close() error {
	var err error
	b.closeMu.Do(func() {
		close(b.stop)
		<-b.done
		if b.m != nil {
			b.m.unregister()
		}
		err = b.db.Close()
		if b.snapshot != "" {
			os.RemoveAll(b.snapshot)
		}
	})
	return err
}

// openSnapshot copies dir to a scratch directory and opens the copy for
// reading (Badger may repair the copy's logs).
func openSnapshot(dir string, log *slog.Logger) (string, *badger.DB, error) {
	scratch, err := os.MkdirTemp("", "scangw-buffer-snapshot-")
	if err != nil {
		return "", nil, err
	}
	if err := copyFiles(dir, scratch); err != nil {
		os.RemoveAll(scratch)
		return "", nil, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	db, err := badger.Open(badgerOptions(scratch, log))
	if err != nil {
		os.RemoveAll(scratch)
		return "", nil, fmt.Errorf("open snapshot of %s: %w", dir, err)
	}
	return scratch, db, nil
}

func (b *Buffer) commitLoop() {
	defer close(b.done)
	batch := make([]*appendReq, 0, b.opts.MaxBatch)
	ackTimer := time.NewTimer(ackDelay)
	ackTimer.Stop()
	ackArmed := false
	for {
		batch = batch[:0]
		select {
		case <-b.stop:
			// Deletes acknowledged before Close should not be resent after
			// a clean restart: commit them on the way out.
			b.flushDeletes()
			b.drainClosed()
			return
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.wake:
		case <-b.acked:
			if !ackArmed {
				ackTimer.Reset(ackDelay)
				ackArmed = true
			}
			continue
		case <-ackTimer.C:
		case task := <-b.tasks:
			task()
			continue
		}
		// Take whatever else queued up while we waited or committed: that
		// is the group in group commit. One yield first lets appenders
		// just released by the previous commit queue their next scan; it
		// costs a lone scan microseconds, not a timer's wait.
		runtime.Gosched()
	gather:
		for len(batch) < cap(batch) {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		// Whatever triggered it, this commit takes every waiting delete.
		ackTimer.Stop()
		ackArmed = false
		b.commit(batch)
	}
}

// onCommitter runs f on the committer goroutine, between commits, so that
// nothing writes while it runs.
func (b *Buffer) onCommitter(ctx context.Context, f func() error) error {
	if b.opts.ReadOnly {
		return ErrReadOnly // no committer runs: the send would wait forever
	}
	errc := make(chan error, 1)
	select {
	case b.tasks <- func() { errc <- f() }:
	case <-b.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-errc
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

// commit stores batch and the pending deletes in one transaction (more
// when the delete cap is reached) and answers every appender. It reports
// whether the transaction committed.
//
// It runs in three parts: gather takes the pending deletes and seen
// marks, write makes one attempt at the transaction, and finish answers
// the appenders and publishes what committed.
func (b *Buffer) commit(batch []*appendReq) bool {
	j := b.gather(batch)
	if len(batch) == 0 && len(j.dels) == 0 && len(j.marks) == 0 {
		return true
	}
	start := time.Now()
	b.busy.Store(start.UnixNano())
	defer b.busy.Store(0)
	var (
		w   written
		err error
	)
	for attempt := 0; ; attempt++ {
		w, err = b.write(j)
		if err == nil || attempt > 0 || len(batch) == 0 || len(j.dels)+len(j.marks) == 0 {
			break
		}
		// Scans come first: whatever is wrong with the deletes or marks
		// must not refuse them. Commit the scans alone; the deletes and
		// marks stay pending for a later transaction.
		b.log.Warn("buffer commit with deletes failed; committing the scans alone", "err", err, "deletes", len(j.dels), "marks", len(j.marks))
		j.dels, j.marks = nil, nil
	}
	if b.m != nil {
		b.m.commitSeconds.Observe(time.Since(start).Seconds())
	}
	if errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1 {
		// One Write too big for a transaction (an aggregation of
		// thousands) must not refuse the scans it was batched with:
		// commit the halves apart, in order, until it stands alone.
		mid := len(batch) / 2
		first := b.commit(batch[:mid])
		return b.commit(batch[mid:]) && first
	}
	return b.finish(j, w, err)
}

// commitJob is what one commit takes: the appends, the deletes and marks
// pending when it began, and the counters it starts from.
type commitJob struct {
	batch            []*appendReq
	dels             []uint64
	marks            []mark
	nextPos, nextSeq uint64
}

// written is what one attempt at a commit's transaction stored.
type written struct {
	results          []appendResult // one per request of the batch
	seqs             []uint64       // the event seqs it used
	stored           int
	states           int // state keys set or deleted
	storedBytes      int64
	nextPos, nextSeq uint64 // the counters after it
}

// gather takes up to the delete cap of the pending deletes, and the
// pending marks, for a commit of batch. They stay pending until the
// commit succeeded.
func (b *Buffer) gather(batch []*appendReq) *commitJob {
	capDels := b.deleteCap()
	b.mu.Lock()
	defer b.mu.Unlock()
	dels := make([]uint64, 0, min(len(b.pendingDel), capDels))
	for pos := range b.pendingDel {
		if len(dels) == capDels {
			signal(b.wake) // the rest go with the next transaction
			break
		}
		dels = append(dels, pos)
	}
	b.ackSignalled = false // acks from now on arm the timer again
	return &commitJob{batch: batch, dels: dels, marks: b.takeMarks(), nextPos: b.nextPos, nextSeq: b.nextSeq}
}

// write makes one attempt at j's transaction. Each attempt starts again
// from j's counters and builds the payloads again.
func (b *Buffer) write(j *commitJob) (written, error) {
	w := written{results: make([]appendResult, len(j.batch)), nextPos: j.nextPos, nextSeq: j.nextSeq}
	txn := b.db.NewTransaction(true)
	defer txn.Discard()
	if err := b.writeAppends(txn, j, &w); err != nil {
		return w, err
	}
	for _, pos := range j.dels {
		if err := b.keepForAudit(txn, pos); err != nil {
			return w, err
		}
		if err := txn.Delete(queueKey(pos)); err != nil {
			return w, err
		}
	}
	for _, m := range j.marks {
		if err := txn.SetEntry(badger.NewEntry(m.key, m.value).WithTTL(b.opts.SeenRetention)); err != nil {
			return w, err
		}
	}
	if w.stored == 0 && w.states == 0 && len(j.dels) == 0 && len(j.marks) == 0 {
		return w, nil
	}
	return w, txn.Commit()
}

// writeAppends stores j's appends that the limits admit and whose payload
// builds, and the counters after them. A refused request gets its error in
// w.results; an error returned fails the transaction.
func (b *Buffer) writeAppends(txn *badger.Txn, j *commitJob, w *written) error {
	for i, r := range j.batch {
		if r.group != nil {
			if err := b.writeGroup(txn, r, int64(len(j.dels)), w, &w.results[i]); err != nil {
				return err
			}
			continue
		}
		// The deletes in this transaction make room too.
		if err := b.admit(int64(w.stored - len(j.dels))); err != nil {
			w.results[i].err = err
			continue
		}
		payload, seq, epoch := r.raw, r.seq, r.epoch
		if r.raw == nil {
			var err error
			if payload, err = r.build(w.nextSeq); err != nil {
				w.results[i].err = fmt.Errorf("encode: %w", err)
				continue
			}
			seq, epoch = w.nextSeq, ""
		}
		if epoch == b.meta.epoch {
			epoch = "" // stored empty: the epoch of the buffer that holds it
		}
		v := encodeEntry(r.at, seq, epoch, r.stream, payload)
		if err := txn.Set(queueKey(w.nextPos), v); err != nil {
			return err
		}
		w.nextPos++
		if r.raw == nil {
			w.results[i].seq = seq
			w.seqs = append(w.seqs, seq)
			w.nextSeq++
		}
		w.stored++
		w.storedBytes += int64(len(v)) + 9
	}
	if w.stored == 0 {
		return nil
	}
	return b.putCounters(txn, w)
}

func (b *Buffer) putCounters(txn *badger.Txn, w *written) error {
	if err := putUint(txn, keyNext, w.nextPos); err != nil {
		return err
	}
	return putUint(txn, keySeq, w.nextSeq)
}

// finish answers j's appenders with the outcome of its commit (err from
// the last attempt, w what it stored) and, if it committed, publishes its
// effects first: OnCommit runs before any appender is released. It reports
// whether the commit succeeded.
func (b *Buffer) finish(j *commitJob, w written, err error) bool {
	if err != nil {
		err = fmt.Errorf("commit: %w", err)
		b.log.Error("buffer commit failed", "err", err, "appends", len(j.batch), "deletes", len(j.dels))
		for i := range w.results {
			if w.results[i].err == nil {
				w.results[i] = appendResult{err: err}
			}
		}
		w.stored = 0
	} else {
		b.applyCommit(w.nextPos, w.nextSeq, j.dels, w.storedBytes)
		b.clearMarks(j.marks)
		b.depth.Add(int64(w.stored - len(j.dels)))
		if w.stored > 0 {
			b.lastAppend.Store(time.Now().UnixNano())
		}
		if b.opts.OnCommit != nil && len(w.seqs) > 0 {
			b.opts.OnCommit(w.seqs)
		}
	}
	for i, r := range j.batch {
		if w.results[i].err != nil && b.m != nil {
			b.m.refused(w.results[i].err)
		}
		r.done <- w.results[i]
	}
	if w.stored > 0 {
		signal(b.appended)
	}
	// Deletes this commit left out to save its scans are tried again
	// within ackDelay. After a failed commit they wait for the next ack or
	// append instead, so a failing disk is not retried (and logged) in a
	// tight loop.
	if err == nil {
		b.mu.Lock()
		retry := b.markAcksSignalled()
		b.mu.Unlock()
		if retry {
			signal(b.acked)
		}
	}
	return err == nil
}

// flushDeletes commits every pending delete (and seen mark), in as many transactions as
// the per-transaction cap needs. It runs on the committer.
func (b *Buffer) flushDeletes() {
	for {
		b.mu.Lock()
		n := len(b.pendingDel) + len(b.marks)
		b.mu.Unlock()
		if n == 0 {
			return
		}
		if !b.commit(nil) {
			return // failed: logged; the deletes and marks stay pending
		}
	}
}

// deleteCap is the most deletes one transaction takes. Audit copies make
// each delete carry a whole message: fewer fit under Badger's
// per-transaction size cap (15 % of the memtable).
func (b *Buffer) deleteCap() int {
	if b.opts.AuditWindow > 0 {
		return maxAuditedDeletes
	}
	return maxDeletes
}

// applyCommit publishes a commit's effects: the new counters, and the
// deletes, advancing low past every contiguous deleted position.
func (b *Buffer) applyCommit(nextPos, nextSeq uint64, dels []uint64, written int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextPos, b.nextSeq = nextPos, nextSeq
	b.disk.written += written
	for _, pos := range dels {
		delete(b.pendingDel, pos)
		b.deletedHigh[pos] = struct{}{}
	}
	for {
		if _, ok := b.deletedHigh[b.low]; !ok {
			break
		}
		delete(b.deletedHigh, b.low)
		b.low++
	}
}

// signal wakes a one-slot channel's reader without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// badgerLogger forwards Badger's warnings and errors to slog; its info
// lines (compactions, flushes) are noise on a gateway's journal.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Infof(string, ...any)  {}
func (l badgerLogger) Debugf(string, ...any) {}

// writeGroup stores a Write's records and state in txn, or none of it: a
// record the limits refuse or whose payload does not build refuses the
// whole Write (in res), and nothing of it is in txn. dels are the
// deletes of the same transaction, which make room. An error returned
// fails the transaction.
func (b *Buffer) writeGroup(txn *badger.Txn, r *appendReq, dels int64, w *written, res *appendResult) error {
	g := r.group
	switch n := len(g.Records); {
	case n > 0:
		if err := b.admit(int64(w.stored) + int64(n-1) - dels); err != nil {
			res.err = err
			return nil
		}
	case slices.ContainsFunc(g.State, func(sv StateValue) bool { return sv.Value != nil }):
		// State alone takes no queue slot, but space all the same: a
		// full disk must not meet a memory-mapped write. Deletes free
		// space and always pass.
		if err := b.diskFull(); err != nil {
			res.err = err
			return nil
		}
	}
	values := make([][]byte, len(g.Records))
	seqs := make([]uint64, 0, len(g.Records))
	seq, last := w.nextSeq, uint64(0)
	for i, rec := range g.Records {
		var err error
		var payload []byte
		if rec.Companion {
			if payload, err = rec.Build(last); err == nil {
				values[i] = encodeEntry(r.at, 0, "", rec.Stream, payload)
			}
		} else if payload, err = rec.Build(seq); err == nil {
			values[i] = encodeEntry(r.at, seq, "", rec.Stream, payload)
			seqs, last = append(seqs, seq), seq
			seq++
		}
		if err != nil {
			res.err = fmt.Errorf("encode: %w", err)
			return nil
		}
	}
	for i, v := range values {
		if err := txn.Set(queueKey(w.nextPos+uint64(i)), v); err != nil {
			return err
		}
		w.storedBytes += int64(len(v)) + 9
	}
	for _, sv := range g.State {
		key := append(append([]byte(nil), prefixState...), sv.Key...)
		var err error
		switch {
		case sv.Value == nil:
			err = txn.Delete(key)
		case sv.TTL > 0:
			err = txn.SetEntry(badger.NewEntry(key, sv.Value).WithTTL(sv.TTL))
		default:
			err = txn.Set(key, sv.Value)
		}
		if err != nil {
			return err
		}
	}
	w.nextPos += uint64(len(values))
	w.nextSeq = seq
	w.stored += len(values)
	w.states += len(g.State)
	w.seqs = append(w.seqs, seqs...)
	res.seqs = seqs
	if len(seqs) > 0 {
		res.seq = seqs[0]
	}
	return nil
}
