package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	cmd := exec.Command(straceBin, "-f", "-qq", "-s", "64", "-e", "trace=read,write,fsync,fdatasync,msync",
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

	const scans = 20
	for i := range scans {
		code := fmt.Sprintf("SYNC-%03d", i)
		b, err := line.Send(context.Background(), code, "\r\n", 30*time.Second)
		if err != nil || b != 0x06 {
			out, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
			t.Fatalf("%s: feedback %#x, %v\n%s", code, b, err, out)
		}
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
	acks, lastRead, syncedSinceRead := 0, -1, false
	for i, l := range lines {
		if r := readAt[i]; r[0] == ptyFD && r[1] != "" {
			lastRead, syncedSinceRead = i, false
			continue
		}
		if reSyncDone.MatchString(l) && lastRead >= 0 {
			syncedSinceRead = true
			continue
		}
		if ackAt[i] == ptyFD {
			acks++
			if lastRead < 0 {
				t.Fatalf("ACK #%d at trace line %d before any scan was read", acks, i+1)
			}
			if !syncedSinceRead {
				t.Fatalf("ACK #%d written at trace line %d with no completed sync since the scan was read (line %d):\n%s",
					acks, i+1, lastRead+1, strings.Join(lines[max(0, lastRead-8):i+1], "\n"))
			}
			syncedSinceRead = false
		}
	}
	if acks != scans {
		t.Fatalf("found %d ACK writes in the trace, want %d", acks, scans)
	}
	t.Logf("%d scans: each ACK followed a completed sync (%d trace lines)", acks, len(lines))
}
