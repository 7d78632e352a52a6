package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scangw/scangw/device/serialsim"
)

// TestGoodByteFollowsSync proves, from the daemon's own system calls, that
// the good-read byte for a scan is written only after a sync that began
// after the scan was read has returned. A SIGKILL cannot catch an ACK sent
// before the sync (the page cache survives a killed process); strace can.
func TestGoodByteFollowsSync(t *testing.T) {
	straceBin, err := exec.LookPath("strace")
	if err != nil {
		t.Fatal("strace not found: run `make test`, which installs it")
	}
	bin := buildScangw(t)
	dir := t.TempDir()
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	cfg := filepath.Join(dir, "scangw.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
gateway: {id: gw-strace, site: lab}
buffer:  {dir: %q}
mqtt:    {broker: "tcp://127.0.0.1:1"}
http:    {listen: ""}
log:     {level: warn}
stations:
  - id: st
    scanners: [{id: h1, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}]
`, filepath.Join(dir, "buf"), line.Path())), 0o644)
	tracePath := filepath.Join(dir, "trace.txt")
	cmd := exec.Command(straceBin, "-f", "-qq", "-s", "4096", "-e", "trace=read,write,fsync,fdatasync,msync",
		"-o", tracePath, bin, "run", "--config", cfg)
	logf, _ := os.Create(filepath.Join(dir, "daemon.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that cleanup reaches the daemon too: a
	// daemon left running would keep reopening its port path, and ptys
	// reuse their numbers — it would steal later tests' scans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()

	// One at a time, as a handheld scans, then a burst in one write, as
	// a streaming reader sends: its frames share commits, and each ACK
	// must still follow a sync that began after its frame was read.
	const single, burst = 20, 60
	const scans = single + burst
	for i := range single {
		code := fmt.Sprintf("SYNC-%03d", i)
		b, err := line.Send(context.Background(), code, "\r\n", 30*time.Second)
		if err != nil || b != 0x06 {
			out, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
			t.Fatalf("%s: feedback %#x, %v\n%s", code, b, err, out)
		}
	}
	var codes strings.Builder
	for i := range burst {
		fmt.Fprintf(&codes, "SYNC-%03d\r\n", single+i)
	}
	if _, err := line.Master().Write([]byte(codes.String())); err != nil {
		t.Fatal(err)
	}
	line.Master().SetReadDeadline(time.Now().Add(30 * time.Second))
	acks := make([]byte, burst)
	if _, err := io.ReadFull(line.Master(), acks); err != nil || strings.Trim(string(acks), "\x06") != "" {
		out, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
		t.Fatalf("burst answers %q, %v\n%s", acks, err, out)
	}
	// SIGTERM goes to the daemon itself: strace, signalled, would detach
	// and leave it running.
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil || len(strings.Fields(string(kids))) != 1 {
		t.Fatalf("daemon pid under strace: %q, %v", kids, err)
	}
	var pid int
	fmt.Sscan(string(kids), &pid)
	syscall.Kill(pid, syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon under strace: %v", err)
	}
	checkSyncBeforeAck(t, tracePath, scans)
}

var (
	// A read, whole, or the start or end of one interrupted by another
	// thread's line ("<unfinished ...>" / "<... read resumed>").
	reRead        = regexp.MustCompile(`^(\d+)\s+read\((\d+), "([^"]*)"`)
	reReadStart   = regexp.MustCompile(`^(\d+)\s+read\((\d+),\s+<unfinished \.\.\.>`)
	reReadResumed = regexp.MustCompile(`^(\d+)\s+<\.\.\. read resumed>"([^"]*)"`)
	// An ACK written: whole, or resumed after another thread's line. A
	// write interrupted (ERESTARTSYS, then restarted) counts once, when it
	// returns 1.
	reAck        = regexp.MustCompile(`^(\d+)\s+write\((\d+), "\\6", 1\)\s+= 1$`)
	reAckStart   = regexp.MustCompile(`^(\d+)\s+write\((\d+), "\\6", 1\s+<unfinished \.\.\.>`)
	reAckResumed = regexp.MustCompile(`^(\d+)\s+<\.\.\. write resumed>\)\s+= 1$`)
	// A sync that returned 0, whole or resumed.
	reSyncDone = regexp.MustCompile(`^\d+\s+(?:(?:msync|fsync|fdatasync)\(.*\)|<\.\.\. (?:msync|fsync|fdatasync) resumed>.*)\s+= 0$`)
)

// checkSyncBeforeAck walks the trace: for each ACK written to the scanner's
// fd, the last read from that fd before it carried the scan's final bytes,
// and a sync must have completed between the two.
func checkSyncBeforeAck(t *testing.T, path string, scans int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// Reads with data, as (fd, data) per line, and ACKs as the fd they
	// went to; "" where the line is neither.
	unfinished := map[string]string{} // pid -> fd of its interrupted read
	ackStarted := map[string]string{} // pid -> fd of its interrupted ACK
	readAt := make([][2]string, len(lines))
	ackAt := make([]string, len(lines))
	for i, l := range lines {
		if m := reAck.FindStringSubmatch(l); m != nil {
			ackAt[i] = m[2]
		} else if m := reAckStart.FindStringSubmatch(l); m != nil {
			ackStarted[m[1]] = m[2]
		} else if m := reAckResumed.FindStringSubmatch(l); m != nil && ackStarted[m[1]] != "" {
			ackAt[i] = ackStarted[m[1]]
			delete(ackStarted, m[1])
		} else if m := reRead.FindStringSubmatch(l); m != nil {
			readAt[i] = [2]string{m[2], m[3]}
		} else if m := reReadStart.FindStringSubmatch(l); m != nil {
			unfinished[m[1]] = m[2]
		} else if m := reReadResumed.FindStringSubmatch(l); m != nil {
			readAt[i] = [2]string{unfinished[m[1]], m[2]}
		}
	}
	ptyFD := ""
	for _, r := range readAt {
		if strings.Contains(r[1], "SYNC-") {
			ptyFD = r[0]
			break
		}
	}
	if ptyFD == "" {
		t.Fatalf("no read of a scan in the trace (%d lines)", len(lines))
	}
	// Frame k (in the order the reads carried them) is answered by ACK k
	// (answers go in read order); a sync must have completed between the
	// read that carried the frame's last byte and its ACK.
	var frameRead, syncs, ackLines []int
	partial := ""
	for i, l := range lines {
		switch {
		case readAt[i][0] == ptyFD && readAt[i][1] != "":
			partial += readAt[i][1]
			for {
				k := strings.Index(partial, `\r\n`)
				if k < 0 {
					break
				}
				frameRead = append(frameRead, i)
				partial = partial[k+len(`\r\n`):]
			}
		case reSyncDone.MatchString(l):
			syncs = append(syncs, i)
		case ackAt[i] == ptyFD:
			ackLines = append(ackLines, i)
		}
	}
	if len(ackLines) != scans || len(frameRead) != scans {
		t.Fatalf("found %d ACK writes and %d frames read in the trace, want %d of each", len(ackLines), len(frameRead), scans)
	}
	shared := 0
	for k, a := range ackLines {
		r := frameRead[k]
		if a < r {
			t.Fatalf("ACK #%d at trace line %d before its frame was read (line %d)", k+1, a+1, r+1)
		}
		i := sort.SearchInts(syncs, r) // the first sync after the read
		if i == len(syncs) || syncs[i] > a {
			t.Fatalf("ACK #%d written at trace line %d with no completed sync since its frame was read (line %d):\n%s",
				k+1, a+1, r+1, strings.Join(lines[max(0, r-8):a+1], "\n"))
		}
		if k > 0 && frameRead[k-1] > syncsBefore(syncs, r) {
			shared++ // no sync between this frame's read and the last one's: one commit serves both
		}
	}
	t.Logf("%d scans: each ACK followed a sync completed after its frame was read; %d frames shared a commit with the frame before (%d trace lines)",
		scans, shared, len(lines))
}

// syncsBefore is the line of the last sync before line r, or -1.
func syncsBefore(syncs []int, r int) int {
	i := sort.SearchInts(syncs, r)
	if i == 0 {
		return -1
	}
	return syncs[i-1]
}
