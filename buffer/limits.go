package buffer

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound the buffer. When an append would pass one, it is refused
// (ErrFull); nothing stored is dropped to make room. Zero fields get the
// defaults, which a healthy small disk never trips.
type Limits struct {
	// MaxScans caps the messages waiting (default 5,000,000).
	MaxScans int64
	// MaxBytes caps the directory's size on disk (default 4 GiB).
	MaxBytes int64
	// MinFreeBytes is the free space the buffer leaves on its filesystem
	// (default 256 MiB). It also keeps Badger clear of ENOSPC on its
	// memory-mapped files, which would kill the process with SIGBUS.
	MinFreeBytes int64
	// HighWater is the fraction of MaxScans or MaxBytes at which the
	// buffer warns (default 0.8).
	HighWater float64
}

func (l Limits) withDefaults() Limits {
	if l.MaxScans <= 0 {
		l.MaxScans = 5_000_000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 4 << 30
	}
	if l.MinFreeBytes <= 0 {
		l.MinFreeBytes = 256 << 20
	}
	if l.HighWater <= 0 || l.HighWater >= 1 {
		l.HighWater = 0.8
	}
	return l
}

// diskState is the last measurement of the directory and its filesystem,
// plus what was written since, so that limits hold between measurements.
type diskState struct {
	used     int64     // bytes in the directory
	free     int64     // bytes available on the filesystem
	written  int64     // bytes committed since the measurement
	measured time.Time // zero: never
}

// estimate is the expected use and free space now. Badger writes a
// message twice (WAL, then a table) before compaction settles.
func (d diskState) estimate() (used, free int64) {
	return d.used + 2*d.written, d.free - 2*d.written
}

// refreshDisk measures the directory and its filesystem.
func (b *Buffer) refreshDisk() {
	used := dirSize(b.opts.Dir)
	var st unix.Statfs_t
	free := int64(-1)
	if err := unix.Statfs(b.opts.Dir, &st); err == nil {
		free = int64(st.Bavail) * int64(st.Bsize)
	}
	b.mu.Lock()
	b.disk = diskState{used: used, free: free, measured: time.Now()}
	b.mu.Unlock()
}

// admit reports whether one more message may be stored, with pending
// messages already admitted in this commit. It runs on the committer.
func (b *Buffer) admit(pending int64) error {
	l := b.opts.Limits
	if n := b.depth.Load() + pending; n >= l.MaxScans {
		return fmt.Errorf("%w: %d messages waiting, limit %d", ErrFull, n, l.MaxScans)
	}
	// Measure again at most once a second, whether the estimate admits or
	// refuses. While refusing, space may have come back (a drain, an
	// operator's cleanup). While admitting, another writer may have taken
	// it: the estimate only counts this buffer's own writes, and Badger
	// dies of SIGBUS when a memory-mapped file meets a full disk.
	if b.diskMeasuredBefore(time.Second) {
		b.refreshDisk()
	}
	return b.diskFull()
}

func (b *Buffer) diskMeasuredBefore(d time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Since(b.disk.measured) > d
}

func (b *Buffer) diskFull() error {
	l := b.opts.Limits
	b.mu.Lock()
	used, free := b.disk.estimate()
	measured := b.disk.free >= 0
	b.mu.Unlock()
	if used >= l.MaxBytes {
		return fmt.Errorf("%w: about %d MiB on disk, limit %d MiB", ErrFull, used>>20, l.MaxBytes>>20)
	}
	if measured && free < l.MinFreeBytes {
		return fmt.Errorf("%w: about %d MiB free on the buffer's filesystem, floor %d MiB", ErrFull, max(free, 0)>>20, l.MinFreeBytes>>20)
	}
	return nil
}

// highWater reports whether the buffer passed its warning level.
func (b *Buffer) highWater() bool {
	l := b.opts.Limits
	b.mu.Lock()
	used, _ := b.disk.estimate()
	b.mu.Unlock()
	return float64(b.depth.Load()) >= l.HighWater*float64(l.MaxScans) ||
		float64(used) >= l.HighWater*float64(l.MaxBytes)
}

// dirSize is the space the directory's files take on disk: allocated
// blocks, not apparent sizes (Badger's memtable files are sparse).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	return n
}
