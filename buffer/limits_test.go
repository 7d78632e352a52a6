package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

// refusedFull reads scangw_buffer_refused_total{reason="full"}.
func refusedFull(t testing.TB, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "scangw_buffer_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "full" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// appendUntilFull appends from writers goroutines until each is refused
// and returns the seqs stored and the refusals.
func appendUntilFull(t testing.TB, b *Buffer, writers, size int) (seqs []uint64, refusals []error) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq, err := b.Append(context.Background(), "t/scan", func(seq uint64) ([]byte, error) {
					return seqPayload(seq, size), nil
				})
				mu.Lock()
				if err != nil {
					refusals = append(refusals, err)
				} else {
					seqs = append(seqs, seq)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	slices.Sort(seqs)
	return seqs, refusals
}

// checkQueue checks that the queue holds exactly the seqs from..to, in
// order, with their payloads intact.
func checkQueue(t testing.TB, b *Buffer, from, to uint64) {
	t.Helper()
	es := peekAll(t, b)
	if want := int(to - from + 1); len(es) != want {
		t.Fatalf("queue holds %d messages, want %d (seqs %d..%d)", len(es), want, from, to)
	}
	for i, e := range es {
		seq, ok := payloadSeq(e.Payload)
		if !ok || seq != from+uint64(i) || !bytes.Equal(e.Payload, seqPayload(seq, len(e.Payload))) {
			t.Fatalf("queue[%d] (position %d) = %.40q, want seq %d", i, e.Pos, e.Payload, from+uint64(i))
		}
	}
}

func contiguous(seqs []uint64, from uint64) bool {
	for i, s := range seqs {
		if s != from+uint64(i) {
			return false
		}
	}
	return true
}

// TestLimitsRefuseAndRecover fills a buffer to its message limit, then to
// its byte limit: appends are refused with ErrFull and use no seq, nothing
// stored is dropped, and appends are accepted again once there is room.
func TestLimitsRefuseAndRecover(t *testing.T) {
	t.Run("messages", func(t *testing.T) {
		dir := t.TempDir()
		reg := prometheus.NewRegistry()
		b, err := Open(Options{Dir: dir, Registerer: reg, Limits: Limits{MaxScans: 50}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { b.Close() }()
		// Twenty writers race for the last places, so that refusals come
		// in the middle of group commits.
		seqs, refusals := appendUntilFull(t, b, 20, 200)
		if len(seqs) != 50 || !contiguous(seqs, 1) {
			t.Fatalf("stored seqs %v, want 1..50", seqs)
		}
		for _, err := range refusals {
			if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "limit 50") {
				t.Fatalf("refusal %q does not wrap ErrFull or name the limit", err)
			}
		}
		if _, err := b.Append(context.Background(), "t", payload("x")); !errors.Is(err, ErrFull) {
			t.Fatalf("append to a full buffer: %v", err)
		}
		if got, want := refusedFull(t, reg), float64(len(refusals)+1); got != want {
			t.Errorf(`scangw_buffer_refused_total{reason="full"} = %v, want %v`, got, want)
		}
		checkQueue(t, b, 1, 50)

		for pos := uint64(1); pos <= 10; pos++ {
			b.Ack(pos)
		}
		settled(t, b)
		// The refusals used no seq: the next one is 51.
		seqs, refusals = appendUntilFull(t, b, 4, 200)
		if len(seqs) != 10 || !contiguous(seqs, 51) || len(refusals) != 4 {
			t.Fatalf("after 10 acks: stored %v with %d refusals, want 51..60 and 4", seqs, len(refusals))
		}
		checkQueue(t, b, 11, 60)

		// The limit holds across a restart.
		b.Close()
		b, err = Open(Options{Dir: dir, Limits: Limits{MaxScans: 50}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(context.Background(), "t", payload("x")); !errors.Is(err, ErrFull) {
			t.Fatalf("append to a full buffer after reopen: %v", err)
		}
		checkQueue(t, b, 11, 60)
	})

	t.Run("bytes", func(t *testing.T) {
		dir := t.TempDir()
		reg := prometheus.NewRegistry()
		const limit = 4 << 20
		b, err := Open(Options{Dir: dir, Registerer: reg, Limits: Limits{MaxBytes: limit}})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		seqs, refusals := appendUntilFull(t, b, 8, 900)
		if len(seqs) == 0 || !contiguous(seqs, 1) {
			t.Fatalf("stored seqs not 1..n: %v", seqs)
		}
		for _, err := range refusals {
			if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "limit 4 MiB") {
				t.Fatalf("refusal %q does not wrap ErrFull or name the byte limit", err)
			}
		}
		last := seqs[len(seqs)-1]
		t.Logf("%d x 900 B stored under a %d MiB limit, %.1f MiB on disk", len(seqs), limit>>20, mib(dirSize(dir)))
		if stored := int64(len(seqs)) * 900; stored > limit || stored < limit/8 {
			t.Errorf("%d bytes of payload stored under a %d byte limit", stored, limit)
		}
		if got := refusedFull(t, reg); got != float64(len(refusals)) {
			t.Errorf(`scangw_buffer_refused_total{reason="full"} = %v, want %d`, got, len(refusals))
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP scangw_buffer_refused_total Appends refused, by reason: full (a limit), error (the commit failed).
# TYPE scangw_buffer_refused_total counter
scangw_buffer_refused_total{reason="full"} %d
`, len(refusals))), "scangw_buffer_refused_total"); err != nil {
			t.Error(err)
		}
		checkQueue(t, b, 1, last)

		// Room comes back once the backlog is delivered and reclaimed.
		for _, e := range peekAll(t, b) {
			b.Ack(e.Pos)
		}
		settled(t, b)
		if dropped, err := b.Reclaim(context.Background()); !dropped || err != nil {
			t.Fatalf("Reclaim = %v, %v", dropped, err)
		}
		seq, err := b.Append(context.Background(), "t/scan", func(seq uint64) ([]byte, error) { return seqPayload(seq, 900), nil })
		if err != nil || seq != last+1 {
			t.Fatalf("append after reclaim: seq %d, %v; want %d", seq, err, last+1)
		}
		checkQueue(t, b, last+1, last+1)
	})
}

const diskFullEnv = "SCANGW_DISKFULL_DIR"

// TestDiskFull runs a buffer on a 64 MiB filesystem that another writer
// (a ballast file) fills: appends are refused with an error naming the
// free-space floor, the process survives (Badger's memory-mapped files
// would SIGBUS on ENOSPC), and once the space is back appends are accepted
// again with nothing lost and no gap in seq. The buffer runs in a child
// process, so that a crash fails this test with its signal and the mount
// is still cleaned up.
func TestDiskFull(t *testing.T) {
	t.Parallel() // slow, and much of it waiting: overlap with the other slow tests
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mountSmall(t, mnt, 64<<20)

	cmd := selfCommand("-test.run=^TestDiskFullChild$", "-test.count=1", "-test.v", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+mnt)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log("child: " + line)
	}
	if cmd.ProcessState == nil {
		t.Fatalf("child did not start: %v", err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the buffer's process died of %v on a full disk", ws.Signal())
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestDiskFullChild")) {
		t.Fatal("child did not run the disk-full test")
	}
}

// mountSmall mounts a filesystem of size bytes on dir: tmpfs, or an ext4
// image on a loop device where tmpfs is not allowed. It fails the test when
// neither can be mounted: a disk-full test that cannot fill a disk proves
// nothing.
func mountSmall(t *testing.T, dir string, size int64) {
	t.Helper()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		tmpfsErr := fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		img := dir + ".img"
		steps := [][]string{
			{"truncate", "-s", fmt.Sprint(size), img},
			{"mkfs.ext4", "-q", "-F", img},
			{"mount", "-o", "loop", img, dir},
		}
		for _, s := range steps {
			if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("cannot mount a small filesystem: tmpfs: %v; loop ext4: %s: %v: %s (run as root, or with CAP_SYS_ADMIN)",
					tmpfsErr, strings.Join(s, " "), err, bytes.TrimSpace(out))
			}
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
}

// TestDiskFullChild is not a test on its own: TestDiskFull runs it in a
// child process, on the small filesystem it mounted.
func TestDiskFullChild(t *testing.T) {
	mnt := os.Getenv(diskFullEnv)
	if mnt == "" {
		return
	}
	// The default floor (256 MiB) is more than this whole filesystem.
	d, err := Open(Options{Dir: filepath.Join(mnt, "default")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Append(context.Background(), "t", payload("x")); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "floor 256 MiB") {
		t.Fatalf("append under the default floor on a 64 MiB filesystem: %v", err)
	}
	d.Close()
	os.RemoveAll(filepath.Join(mnt, "default"))

	const floor = 16 << 20
	dir := filepath.Join(mnt, "buffer")
	ballast := filepath.Join(mnt, "ballast")
	b, err := Open(Options{Dir: dir, Limits: Limits{MinFreeBytes: floor}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	appendConcurrently(t, b, 500, 8, func(uint64) int { return 300 })
	t.Logf("500 scans stored; %.1f MiB free", mib(freeBytes(t, mnt)))

	// Another writer takes the disk down to half the floor.
	free := freeBytes(t, mnt)
	fillBallast(t, ballast, free-floor/2)
	t.Logf("ballast of %.1f MiB: %.1f MiB free", mib(free-floor/2), mib(freeBytes(t, mnt)))

	stored := uint64(500)
	var refusal error
	if !pollUntil(30*time.Second, func() bool {
		seq, err := b.Append(context.Background(), "t/scan", func(seq uint64) ([]byte, error) { return seqPayload(seq, 300), nil })
		if err != nil {
			refusal = err
			return true
		}
		if seq != stored+1 {
			t.Fatalf("seq %d after %d", seq, stored)
		}
		stored = seq
		return false
	}) {
		t.Fatalf("appends still accepted with %.1f MiB free, under the %d MiB floor", mib(freeBytes(t, mnt)), floor>>20)
	}
	if !errors.Is(refusal, ErrFull) || !strings.Contains(refusal.Error(), "floor 16 MiB") {
		t.Fatalf("refusal %q does not wrap ErrFull or name the free-space floor", refusal)
	}
	t.Logf("refused after %d more scans: %v", stored-500, refusal)
	// Still refusing, and still alive.
	for range 20 {
		if _, err := b.Append(context.Background(), "t", payload("x")); !errors.Is(err, ErrFull) {
			t.Fatalf("append with the disk still full: %v", err)
		}
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var accepted uint64
	start := time.Now()
	if !pollUntil(10*time.Second, func() bool {
		seq, err := b.Append(context.Background(), "t/scan", func(seq uint64) ([]byte, error) { return seqPayload(seq, 300), nil })
		if err != nil && !errors.Is(err, ErrFull) {
			t.Fatalf("append after the ballast went: %v", err)
		}
		accepted = seq
		return err == nil
	}) {
		t.Fatalf("appends still refused 10 s after the space came back (%.1f MiB free)", mib(freeBytes(t, mnt)))
	}
	t.Logf("accepted again %v after the ballast went", time.Since(start).Round(time.Millisecond))
	if accepted != stored+1 {
		t.Fatalf("first seq after the refusals %d, want %d", accepted, stored+1)
	}
	checkQueue(t, b, 1, accepted)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(Options{Dir: dir, Limits: Limits{MinFreeBytes: floor}})
	if err != nil {
		t.Fatal(err)
	}
	checkQueue(t, b, 1, accepted)
}

func freeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillBallast makes a file that takes n bytes of the filesystem.
func fillBallast(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err == nil {
		return
	}
	chunk := make([]byte, 1<<20)
	for n > 0 {
		w, err := f.Write(chunk[:min(int64(len(chunk)), n)])
		if err != nil {
			t.Fatalf("ballast: %v", err)
		}
		n -= int64(w)
	}
}
