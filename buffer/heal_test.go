package buffer

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/prometheus/client_golang/prometheus"
)

// healBase describes the buffer TestHealCorruptBuffer damages.
type healBase struct {
	dir     string
	epoch   string
	next    uint64          // next seq
	unacked map[uint64]bool // seqs (== positions) still waiting
}

// Sizes of the payloads in the heal base: seqs up to baseTables are 900 B
// and end up in tables; the later ones stay in the write-ahead log, every
// tenth of them 2 KiB so that its value goes to the value log.
const (
	baseTables   = 16_000
	baseWAL      = 3_000
	baseAckTable = 1_000
	baseAckWAL   = 500
)

func baseSize(seq uint64) int {
	switch {
	case seq <= baseTables:
		return 900
	case seq%10 == 0:
		return 2 << 10
	default:
		return 300
	}
}

// makeHealBase builds a buffer the way a gateway leaves it after a power
// cut: tables from a clean close, then a write-ahead log and a value log
// from a process killed with SIGKILL. Some messages of each part are acked.
func makeHealBase(t *testing.T) healBase {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	epoch := b.Epoch()
	appendConcurrently(t, b, baseTables, 256, baseSize)
	for pos := uint64(1); pos <= baseAckTable; pos++ {
		b.Ack(pos)
	}
	settled(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(ssts) < 2 {
		t.Fatalf("the base has %d tables, want several:%s", len(ssts), fileSizes(dir))
	}

	c := startChild(t, "TestCrashChild", crashChildEnv+"="+dir,
		fmt.Sprintf("%s=n=%d,size=300,big=10,ack=%d", crashSpecEnv, baseWAL, baseAckWAL))
	done := c.expect(t, "DONE ", time.Minute)
	c.kill(t)
	next := uint64(baseTables + baseWAL + 1)
	if done != fmt.Sprintf("DONE %d", next) {
		t.Fatalf("child said %q, want DONE %d", done, next)
	}
	for _, pattern := range []string{"*.sst", "*.mem", "*.vlog", "MANIFEST"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pattern)); len(m) == 0 {
			t.Fatalf("the base has no %s:%s", pattern, fileSizes(dir))
		}
	}
	// The child acked the oldest waiting messages: the next ones of the
	// tables' part.
	unacked := map[uint64]bool{}
	for seq := uint64(baseAckTable + baseAckWAL + 1); seq < next; seq++ {
		unacked[seq] = true
	}
	return healBase{dir: dir, epoch: epoch, next: next, unacked: unacked}
}

// copyDir copies a flat directory.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := copyFiles(src, dst); err != nil {
		t.Fatal(err)
	}
}

// snapshot reads every file of a directory but the lock file.
func snapshot(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

// sameContent compares two snapshots. A log file may have lost zeros at
// its end: Badger trims the pre-allocated tail of a write-ahead log it
// replays, which loses nothing. For the same reason an older value log
// that holds only its header may be gone: Badger deletes those at open.
func sameContent(before, after map[string][]byte) error {
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok && strings.HasSuffix(name, ".vlog") && len(b) <= 20:
		case !ok:
			return fmt.Errorf("%s is gone", name)
		case bytes.Equal(a, b):
		case (strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) &&
			len(a) < len(b) && bytes.Equal(a, b[:len(a)]) && allZero(b[len(a):]):
		default:
			return fmt.Errorf("%s changed (%d bytes, was %d)", name, len(a), len(b))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			return fmt.Errorf("%s appeared", name)
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// overwrite puts n bytes of garbage into a file at off.
func overwrite(t testing.TB, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := make([]byte, n)
	for i := range g {
		g[i] = byte(i*131 + 7)
	}
	if _, err := f.WriteAt(g, off); err != nil {
		t.Fatal(err)
	}
}

func truncateTo(t testing.TB, path string, size func(int64) int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size(fi.Size())); err != nil {
		t.Fatal(err)
	}
}

// largest returns the largest file matching pattern in dir.
func largest(t testing.TB, dir, pattern string) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, pattern))
	best, size := "", int64(-1)
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			best, size = p, fi.Size()
		}
	}
	if best == "" {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	return best
}

// largestTable is the largest table the MANIFEST lists. The base is left
// by a kill, so it may also hold a table a compaction had replaced but not
// yet deleted: Badger removes that one at open, and damage to it harms
// nothing.
func largestTable(t testing.TB, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		t.Fatal(err)
	}
	mf, _, err := badger.ReplayManifestFile(f, 0, badgerOptions(dir, slog.New(slog.DiscardHandler)))
	f.Close()
	if err != nil {
		t.Fatalf("read MANIFEST: %v", err)
	}
	best, size := "", int64(-1)
	for id := range mf.Tables {
		p := table.NewFilename(id, dir)
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			best, size = p, fi.Size()
		}
	}
	if best == "" {
		t.Fatalf("the MANIFEST in %s lists no table", dir)
	}
	return best
}

// tableSeqs reads the positions whose messages a table holds.
func tableSeqs(t testing.TB, path string) map[uint64]bool {
	t.Helper()
	// readTable deletes the file it read (a Table deletes its file at zero
	// references): read a copy.
	cp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := copyFile(path, cp); err != nil {
		t.Fatal(err)
	}
	byPos := map[uint64]Entry{}
	if _, err := readTable(cp, byPos, map[string]stateItem{}); err != nil {
		t.Fatal(err)
	}
	seqs := map[uint64]bool{}
	for pos, e := range byPos {
		if e.Payload != nil {
			seqs[pos] = true
		}
	}
	return seqs
}

// TestHealCorruptBuffer damages copies of a buffer in different ways and
// opens each with Heal: the damaged directory is moved aside untouched, a
// fresh buffer with a new epoch starts, and every message that can still
// be read is salvaged into it, byte for byte, once.
func TestHealCorruptBuffer(t *testing.T) {
	t.Parallel() // slow, and much of it waiting: overlap with the other slow tests
	base := makeHealBase(t)
	t.Logf("base:%s", fileSizes(base.dir))

	type damage struct {
		name string
		// damage harms dir and returns the seqs that must come back.
		damage func(t *testing.T, dir string) map[uint64]bool
		// tablesWhole: every table is intact, so the old epoch (written
		// once, flushed to a table at the clean close) can be read and
		// every salvaged message keeps its seq.
		tablesWhole bool
	}
	allUnacked := func(*testing.T, string) map[uint64]bool { return base.unacked }
	inTables := func(seq uint64) bool { return seq <= baseTables }
	except := func(t *testing.T, lost map[uint64]bool, keep func(uint64) bool) map[uint64]bool {
		want := map[uint64]bool{}
		for seq := range base.unacked {
			if !lost[seq] && keep(seq) {
				want[seq] = true
			}
		}
		t.Logf("%d unacked messages must come back, %d may be lost with the damaged file", len(want), len(base.unacked)-len(want))
		return want
	}
	cases := []damage{
		{"manifest truncated to zero", func(t *testing.T, dir string) map[uint64]bool {
			truncateTo(t, filepath.Join(dir, "MANIFEST"), func(int64) int64 { return 0 })
			return base.unacked
		}, true},
		{"manifest garbage", func(t *testing.T, dir string) map[uint64]bool {
			p := filepath.Join(dir, "MANIFEST")
			fi, _ := os.Stat(p)
			overwrite(t, p, 0, int(fi.Size()))
			return allUnacked(t, dir)
		}, true},
		{"table truncated", func(t *testing.T, dir string) map[uint64]bool {
			p := largestTable(t, dir)
			lost := tableSeqs(t, p)
			truncateTo(t, p, func(n int64) int64 { return n / 2 })
			return except(t, lost, func(uint64) bool { return true })
		}, false},
		{"table garbage in the middle", func(t *testing.T, dir string) map[uint64]bool {
			p := largestTable(t, dir)
			lost := tableSeqs(t, p)
			fi, _ := os.Stat(p)
			overwrite(t, p, fi.Size()/2, 4096)
			return except(t, lost, func(uint64) bool { return true })
		}, false},
		{"value log header garbage", func(t *testing.T, dir string) map[uint64]bool {
			overwrite(t, largest(t, dir, "*.vlog"), 0, 20)
			// Badger then refuses the write-ahead log too: what
			// the tables hold must come back.
			return except(t, nil, inTables)
		}, true},
		{"write-ahead log header garbage", func(t *testing.T, dir string) map[uint64]bool {
			overwrite(t, largest(t, dir, "*.mem"), 0, 20)
			return except(t, nil, inTables)
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "buffer")
			copyDir(t, base.dir, dir)
			want := tc.damage(t, dir)
			before := snapshot(t, dir)
			// What Badger says, on another copy: a failed open can
			// leave files behind.
			probe := filepath.Join(t.TempDir(), "probe")
			copyDir(t, dir, probe)
			if db, err := openBadger(probe, false, slog.New(slog.DiscardHandler)); err != nil {
				t.Logf("Badger says: %v (IsCorrupt %v)", err, IsCorrupt(err))
			} else {
				db.Close()
				t.Fatalf("Badger opens the damaged buffer without an error")
			}

			reg := prometheus.NewRegistry()
			b, err := Open(Options{Dir: dir, Heal: true, Registerer: reg})
			if err != nil {
				t.Fatalf("Open with Heal: %v", err)
			}
			defer b.Close()
			asides, _ := filepath.Glob(dir + ".corrupt-*")
			if len(asides) != 1 {
				t.Fatalf("moved aside: %v, want one %s.corrupt-<time>", asides, filepath.Base(dir))
			}
			aside := asides[0]
			if err := sameContent(before, snapshot(t, aside)); err != nil {
				t.Errorf("the moved-aside directory is not the damaged one as it was: %v", err)
			}
			if b.Epoch() == base.epoch || b.Epoch() == "" {
				t.Errorf("epoch %q after healing, want a new one (was %s)", b.Epoch(), base.epoch)
			}
			if got := counterValue(t, reg, "scangw_buffer_corruption_recoveries_total"); got != 1 {
				t.Errorf("corruption recoveries metric = %v, want 1", got)
			}

			es := peekAll(t, b)
			got := map[uint64]bool{}
			var lastSeq uint64
			resurrected, unknown := 0, 0
			for _, e := range es {
				seq, ok := payloadSeq(e.Payload)
				if !ok || seq == 0 || seq >= base.next || !bytes.Equal(e.Payload, seqPayload(seq, baseSize(seq))) {
					t.Fatalf("salvaged payload at position %d is not an original: %.60q", e.Pos, e.Payload)
				}
				if got[seq] {
					t.Fatalf("seq %d salvaged twice", seq)
				}
				if seq <= lastSeq {
					t.Errorf("salvaged out of order: seq %d after %d", seq, lastSeq)
				}
				if e.Stream != "t/scan" {
					t.Errorf("seq %d salvaged with stream %q", seq, e.Stream)
				}
				// Its seq and epoch are kept, or unknown when the
				// damage took the old epoch: never the new one's.
				if e.Seq == 0 {
					unknown++
				} else if e.Seq != seq || e.Epoch != base.epoch {
					t.Fatalf("seq %d salvaged as seq %d of epoch %q, want %d of %s", seq, e.Seq, e.Epoch, seq, base.epoch)
				}
				lastSeq = seq
				got[seq] = true
				if !base.unacked[seq] {
					resurrected++
				}
			}
			missing := 0
			for seq := range want {
				if !got[seq] {
					missing++
				}
			}
			t.Logf("salvaged %d of %d unacked messages (%d acked ones came back: they will be resent; %d with their seq unknown)", len(es), len(base.unacked), resurrected, unknown)
			if tc.tablesWhole && unknown > 0 {
				t.Errorf("%d messages salvaged with their seq unknown, though the old epoch was readable", unknown)
			}
			if missing > 0 {
				t.Errorf("%d messages that were still readable were not salvaged", missing)
			}
			if len(want) > 0 && len(es) == 0 {
				t.Errorf("nothing salvaged")
			}
			if got := counterValue(t, reg, "scangw_buffer_salvaged_total"); got != float64(len(es)) {
				t.Errorf("salvaged metric = %v, want %d", got, len(es))
			}

			// The fresh buffer has its own seq, from 1; salvaged messages
			// kept theirs (in the payload) and took positions only.
			if s := b.NextSeq(); s != 1 {
				t.Errorf("next seq of the healed buffer %d, want 1", s)
			}
			seq, err := b.Append(context.Background(), "t/new", payload("new"))
			if err != nil || seq != 1 {
				t.Fatalf("append to the healed buffer: seq %d, %v", seq, err)
			}
			// A second salvage of the same directory finds every message
			// already here.
			n, err := b.Salvage(context.Background(), aside)
			if n != 0 {
				t.Errorf("second Salvage queued %d messages again (err %v)", n, err)
			}
			if len(peekAll(t, b)) != len(es)+1 {
				t.Errorf("queue changed by the second salvage")
			}
			if err := sameContent(before, snapshot(t, aside)); err != nil {
				t.Errorf("Salvage changed its source: %v", err)
			}
		})
	}

	// Undamaged, the same base opens as it is, with no healing.
	t.Run("undamaged", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "buffer")
		copyDir(t, base.dir, dir)
		b, err := Open(Options{Dir: dir, Heal: true})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if asides, _ := filepath.Glob(dir + ".corrupt-*"); len(asides) != 0 || b.Epoch() != base.epoch {
			t.Fatalf("healthy buffer healed: %v, epoch %s (was %s)", asides, b.Epoch(), base.epoch)
		}
		es := peekAll(t, b)
		if len(es) != len(base.unacked) || b.NextSeq() != base.next {
			t.Fatalf("%d messages, next seq %d; want %d, %d", len(es), b.NextSeq(), len(base.unacked), base.next)
		}
		for _, e := range es {
			if seq, _ := payloadSeq(e.Payload); !base.unacked[seq] || e.Pos != seq || !bytes.Equal(e.Payload, seqPayload(seq, baseSize(seq))) {
				t.Fatalf("position %d: %.60q", e.Pos, e.Payload)
			}
		}
	})
}

// counterValue reads an unlabelled counter from reg.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestHealLeavesLockedBufferAlone: a directory held by a running buffer
// is not corrupt; Open with Heal reports ErrLocked and moves nothing.
func TestHealLeavesLockedBufferAlone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buffer")
	b := open(t, dir, nil)
	appendN(t, b, 5, "t")
	// A log file that the running buffer would be creating this very
	// moment is empty: a second Open must not take it for a leftover.
	creating := filepath.Join(dir, "00099.mem")
	if err := os.WriteFile(creating, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: dir, Heal: true})
	if !errors.Is(err, ErrLocked) || IsCorrupt(err) {
		t.Fatalf("second open = %v (IsCorrupt %v), want ErrLocked, not corrupt", err, IsCorrupt(err))
	}
	if asides, _ := filepath.Glob(dir + ".corrupt-*"); len(asides) != 0 {
		t.Fatalf("a locked buffer was moved aside: %v", asides)
	}
	if _, err := os.Stat(creating); err != nil {
		t.Fatalf("a second Open removed a file of the running buffer: %v", err)
	}
	os.Remove(creating)
	if s := appendN(t, b, 1, "t")[0]; s != 6 {
		t.Fatalf("the first buffer's next seq %d, want 6", s)
	}
	if es := peekAll(t, b); len(es) != 6 {
		t.Fatalf("the first buffer holds %d messages", len(es))
	}
}

// TestIsCorrupt: only proof of damage is corruption; what the environment
// does (permissions, space, a failing card, a lock) is not.
func TestIsCorrupt(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("open buffer /var/lib/scangw: %w", err) }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{wrap(ErrLocked), false},
		{wrap(ErrNewerFormat), false},
		{wrap(fs.ErrPermission), false},
		{wrap(&fs.PathError{Op: "open", Path: "MANIFEST", Err: syscall.EACCES}), false},
		{wrap(&fs.PathError{Op: "write", Path: "00001.mem", Err: syscall.ENOSPC}), false},
		{wrap(&fs.PathError{Op: "read", Path: "000001.sst", Err: syscall.EIO}), false},
		{wrap(&fs.PathError{Op: "open", Path: "000001.vlog", Err: syscall.EROFS}), false},
		{wrap(syscall.EMFILE), false},
		{wrap(y.ErrChecksumMismatch), true},
		{wrap(errors.New("manifest has bad magic")), true},
		{wrap(io.ErrUnexpectedEOF), true},
		// Badger's own words, as seen for each kind of damage (y.Wrap
		// flattens the cause into text).
		{wrap(errors.New("file does not exist for table 1")), true},
		{wrap(errors.New("Opening table: \"/b/000012.sst\" err: failed to initialize table err: failed to read index. err: failed to verify checksum for table: /b/000012.sst err: actual: 1, expected: 2 err: checksum mismatch")), true},
		{wrap(errors.New("corrupt table 000012.sst: unreadable (runtime error: invalid memory address or nil pointer dereference)")), true},
		// Written by a newer Badger (after a downgrade): not damage.
		{wrap(errors.New("manifest has unsupported version: 9 (we support 8).\nPlease see https://github.com/dgraph-io/badger/blob/main/docs/troubleshooting.md")), false},
		// A reader cannot trim the log of a killed writer: not damage.
		{wrap(errors.New("while opening memtables err: while opening fid: 1 err: while updating skiplist err: end offset: 74614 < size: 16777216 err: Log truncate required to run DB. This might result in data loss")), false},
		{wrap(errors.New("During db.vlog.open err: Open existing file: \"/b/000001.vlog\" err: While opening vlog file 1 err: Error for the KEY ID 365388794570363744 err: Invalid datakey id")), true},
	} {
		if got := IsCorrupt(tc.err); got != tc.want {
			t.Errorf("IsCorrupt(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestSalvageUndamagedCopy: salvaging a copy of a healthy buffer into
// another keeps order and payloads, and a second salvage adds nothing.
func TestSalvageUndamagedCopy(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	a, err := Open(Options{Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, a, 20, "t/a")
	a.Ack(3)
	settled(t, a)
	srcEpoch := a.Epoch()
	a.Close()

	b := open(t, filepath.Join(t.TempDir(), "dst"), nil)
	for range 2 {
		if _, err := b.Append(context.Background(), "t/b", payload("dst")); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Salvage(context.Background(), src)
	if err != nil || n != 19 {
		t.Fatalf("Salvage = %d, %v; want 19", n, err)
	}
	es := peekAll(t, b)
	var got []string
	for _, e := range es {
		got = append(got, string(e.Payload))
	}
	want := []string{"dst#1", "dst#2"}
	for i := range 20 {
		if i != 2 {
			want = append(want, fmt.Sprintf("%d#%d", i, i+1))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after salvage: %q, want %q", got, want)
	}
	// Each keeps the seq and epoch it was born with.
	for i, e := range es {
		var n int
		var seq uint64
		fmt.Sscanf(string(e.Payload), "%d#%d", &n, &seq)
		wantEpoch := srcEpoch
		if i < 2 {
			seq, wantEpoch = uint64(i+1), b.Epoch()
		}
		if e.Seq != seq || e.Epoch != wantEpoch || (i >= 2 && e.Stream != "t/a") {
			t.Errorf("%s: seq %d of %q, stream %q; want seq %d of %q", e.Payload, e.Seq, e.Epoch, e.Stream, seq, wantEpoch)
		}
	}
	if s := b.NextSeq(); s != 3 {
		t.Fatalf("salvage used seqs: next %d, want 3", s)
	}
	if n, err := b.Salvage(context.Background(), src); n != 0 || err != nil {
		t.Fatalf("second Salvage = %d, %v", n, err)
	}
}

// TestSalvageV1KeepsSeqUnknown: messages salvaged from entries that did
// not know their seq (v1) still do not, and take no epoch: neither the old
// buffer's (they may have been salvaged into it) nor the new one's.
func TestSalvageV1KeepsSeqUnknown(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeFormat2(t, src, "epoch-of-format-2", 3, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	b := open(t, filepath.Join(t.TempDir(), "dst"), nil)
	if n, err := b.Salvage(context.Background(), src); err != nil || n != 3 {
		t.Fatalf("Salvage = %d, %v; want 3", n, err)
	}
	es := peekAll(t, b)
	if len(es) != 3 {
		t.Fatalf("%d messages, want 3", len(es))
	}
	for _, e := range es {
		if e.Seq != 0 || e.Epoch != "" || e.Stream != "gw/scans/s" {
			t.Errorf("%s salvaged as seq %d of %q, stream %q; want the seq unknown", e.Payload, e.Seq, e.Epoch, e.Stream)
		}
	}
}

// TestSalvageState: salvage brings the state back too (a serial counter
// lost to a heal would issue its numbers again): the keys the target
// lacks, with their time to live, and not those deleted or the target
// has — from an undamaged copy and from one whose manifest is garbage.
func TestSalvageState(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	a, err := Open(Options{Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = a.SubmitWrite(ctx, Write{Records: []Record{{Stream: "t/a", Build: payload("x")}}, State: []StateValue{
		{Key: "serials/u", Value: []byte(`{"next":4711}`)},
		{Key: "workflow/child/c1", Value: []byte(`{"parent":"p"}`), TTL: time.Hour},
		{Key: "gone", Value: []byte("1")},
		{Key: "station/d1", Value: []byte(`{"mode":"ship"}`)},
	}})()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SubmitWrite(ctx, Write{State: []StateValue{{Key: "gone"}}})(); err != nil {
		t.Fatal(err)
	}
	a.Close()

	for _, damaged := range []bool{false, true} {
		t.Run(fmt.Sprint("manifest damaged ", damaged), func(t *testing.T) {
			from := filepath.Join(t.TempDir(), "copy")
			copyDir(t, src, from)
			if damaged {
				p := filepath.Join(from, "MANIFEST")
				fi, _ := os.Stat(p)
				overwrite(t, p, 0, int(fi.Size()))
			}
			b := open(t, filepath.Join(t.TempDir(), "dst"), nil)
			if err := b.SaveState("station/d1", []byte(`{"mode":"receive"}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Salvage(ctx, from); err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]string{
				"serials/u":         `{"next":4711}`,
				"workflow/child/c1": `{"parent":"p"}`,
				"station/d1":        `{"mode":"receive"}`, // the target's own stands
			} {
				if v, err := b.LoadState(key); err != nil || string(v) != want {
					t.Errorf("%s after salvage: %q %v, want %q", key, v, err, want)
				}
			}
			if _, err := b.LoadState("gone"); !errors.Is(err, ErrNoState) {
				t.Errorf("a deleted key came back: %v", err)
			}
		})
	}
}
