package buffer

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tortureKills is how many times TestTortureKill9 kills its child.
const tortureKills = 110

// tortureEnv names the buffer directory of TestTortureChild.
const tortureEnv = "SCANGW_TORTURE_DIR"

// TestTortureKill9 kills a child process that appends, acks, drains and
// reclaims, with SIGKILL at random moments, and checks the buffer after
// every kill: it opens without healing, keeps its epoch, has lost no
// committed message, has no gap or duplicate in seq, and keeps its queue in
// order.
//
// The child's report is what it knew when it was killed: "C <seq>" after
// Append returned (committed), "A <pos> <seq>" before Ack (the delete may
// or may not have persisted), "G" before a Reclaim and "R" after one
// returned.
func TestTortureKill9(t *testing.T) {
	t.Parallel() // slow, and much of it waiting: overlap with the other slow tests
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SCANGW_TORTURE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set SCANGW_TORTURE_SEED to repeat the kill times)", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5ca9))

	dir := filepath.Join(t.TempDir(), "buffer")
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	epoch := b.Epoch()
	b.Close()

	var (
		committed = map[uint64]bool{} // known durable: "C", or seen by a check
		acked     = map[uint64]bool{} // an ack was (or was about to be) asked
		lastNext  = uint64(1)
		maxSeq    uint64
		st        struct{ commits, acks, reclaims, inReclaim, resent, rawLines int }
		start     = time.Now()
	)
	for cycle := range tortureKills {
		c := startChild(t, "TestTortureChild", tortureEnv+"="+dir)
		ready := c.expect(t, "READY ", time.Minute)
		if f := strings.Fields(ready); len(f) != 3 || f[1] != epoch {
			t.Fatalf("cycle %d: child opened %q, want epoch %s", cycle, ready, epoch)
		}
		// The random delay is the fault injection: the kill lands in
		// whatever the child is doing then.
		kill := time.NewTimer(time.Duration(5+rng.IntN(76)) * time.Millisecond * emulatorSlowdown())
		<-kill.C
		lines := c.kill(t)
		ws, _ := c.state.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: child ended by itself (%v); last lines %q; stderr:\n%s", cycle, c.state, tail(lines, 5), c.stderr)
		}
		inReclaim := false
		for _, line := range lines {
			st.rawLines++
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "C":
				seq := mustUint(t, f[1])
				committed[seq] = true
				maxSeq = max(maxSeq, seq)
				st.commits++
			case len(f) == 3 && f[0] == "A":
				acked[mustUint(t, f[2])] = true
				st.acks++
			case len(f) == 1 && f[0] == "G":
				inReclaim = true
			case len(f) == 2 && f[0] == "R":
				inReclaim = false
				st.reclaims++
			default:
				t.Fatalf("cycle %d: child said %q; stderr:\n%s", cycle, line, c.stderr)
			}
		}
		if inReclaim {
			st.inReclaim++
		}

		// (a) it opens, without healing.
		b, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("cycle %d: open after kill: %v", cycle, err)
		}
		// (d) same epoch.
		if b.Epoch() != epoch {
			t.Fatalf("cycle %d: epoch changed %s -> %s", cycle, epoch, b.Epoch())
		}
		next := b.NextSeq()
		if next < lastNext {
			t.Fatalf("cycle %d: next seq went back from %d to %d", cycle, lastNext, next)
		}
		lastNext = next
		es := peekAll(t, b)
		if int64(len(es)) != b.Depth() {
			t.Errorf("cycle %d: depth %d, but %d entries", cycle, b.Depth(), len(es))
		}
		present := make(map[uint64]bool, len(es))
		var lastPos, lastSeq uint64
		for _, e := range es {
			seq, ok := payloadSeq(e.Payload)
			if !ok || !bytes.Equal(e.Payload, seqPayload(seq, len(e.Payload))) {
				t.Fatalf("cycle %d: position %d holds a damaged payload %.40q", cycle, e.Pos, e.Payload)
			}
			// (e) positions strictly increase, and so do seqs with them.
			if e.Pos <= lastPos || seq <= lastSeq {
				t.Fatalf("cycle %d: position %d seq %d after position %d seq %d", cycle, e.Pos, seq, lastPos, lastSeq)
			}
			lastPos, lastSeq = e.Pos, seq
			if present[seq] {
				t.Fatalf("cycle %d: seq %d twice in the queue", cycle, seq)
			}
			if seq >= next {
				t.Fatalf("cycle %d: seq %d stored, but next seq is %d", cycle, seq, next)
			}
			present[seq] = true
			if acked[seq] {
				st.resent++ // its delete did not persist: it will be resent
			}
		}
		// (b) nothing committed is lost: present, or acknowledged.
		for seq := range committed {
			if !present[seq] && !acked[seq] {
				t.Fatalf("cycle %d: committed seq %d lost (neither in the queue nor acked)", cycle, seq)
			}
		}
		// (c) no gap: every seq handed out is present or was acked. An
		// acked seq may lack its "C" line: the drain can peek a message
		// before its appender is woken.
		if maxSeq >= next {
			t.Fatalf("cycle %d: seq %d was committed, but next seq is %d", cycle, maxSeq, next)
		}
		for seq := uint64(1); seq < next; seq++ {
			if !present[seq] && !acked[seq] {
				t.Fatalf("cycle %d: seq %d (of 1..%d) neither in the queue nor acked: a gap", cycle, seq, next-1)
			}
		}
		// What this check saw is durable once it closed cleanly.
		for seq := range present {
			committed[seq] = true
		}
		if err := b.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", cycle, err)
		}
	}
	t.Logf("%d kills in %v: %d commits, %d acks, %d reclaims seen, %d kills inside a reclaim, %d acked messages back after a kill (resent), max committed seq %d, next seq %d",
		tortureKills, time.Since(start).Round(time.Millisecond), st.commits, st.acks, st.reclaims, st.inReclaim, st.resent, maxSeq, lastNext)
	if st.commits == 0 || st.acks == 0 || st.reclaims == 0 {
		t.Errorf("the children did too little to test anything: %+v", st)
	}
}

// TestTortureChild is not a test on its own: TestTortureKill9 runs it in a
// child process. Three goroutines append; the main one peeks and acks in
// order as the uplink does, and every few milliseconds holds the appenders,
// drains the queue completely, and reclaims.
func TestTortureChild(t *testing.T) {
	dir := os.Getenv(tortureEnv)
	if dir == "" {
		return
	}
	var out sayer
	// The child must die by the parent's SIGKILL, but never outlive it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := Open(Options{Dir: dir})
	if err != nil {
		out.fail("open: %v", err)
	}
	out.say("READY %s %d", b.Epoch(), b.NextSeq())

	var gate sync.RWMutex // appenders share it; a drain takes it whole
	for range 3 {
		go func() {
			for ctx.Err() == nil {
				size := 100 + rand.IntN(200)
				if rand.IntN(8) == 0 {
					size = 1500 // above the value threshold: the value log
				}
				gate.RLock()
				seq, err := b.Append(ctx, "t/torture", func(seq uint64) ([]byte, error) {
					return seqPayload(seq, size), nil
				})
				gate.RUnlock()
				if err != nil {
					out.fail("append: %v", err)
				}
				out.say("C %d", seq)
			}
		}()
	}

	var cursor uint64
	ack := func(es []Entry) {
		for _, e := range es {
			seq, ok := payloadSeq(e.Payload)
			if !ok {
				out.fail("position %d: payload %.40q", e.Pos, e.Payload)
			}
			out.say("A %d %d", e.Pos, seq)
			b.Ack(e.Pos)
			cursor = e.Pos + 1
		}
	}
	nextReclaim := time.Now()
	for ctx.Err() == nil {
		es, err := b.Peek(cursor, 64)
		if err != nil {
			out.fail("peek: %v", err)
		}
		ack(es)
		if time.Now().After(nextReclaim) {
			gate.Lock()
			for {
				es, err := b.Peek(cursor, 256)
				if err != nil {
					out.fail("peek: %v", err)
				}
				if len(es) == 0 {
					break
				}
				ack(es)
			}
			if !pollUntil(time.Minute, func() bool { return b.Depth() == 0 }) {
				out.fail("depth %d after a full drain", b.Depth())
			}
			out.say("G")
			dropped, err := b.Reclaim(ctx)
			if err != nil {
				out.fail("reclaim: %v", err)
			}
			out.say("R %v", dropped)
			gate.Unlock()
			nextReclaim = time.Now().Add(time.Duration(2+rand.IntN(15)) * time.Millisecond)
		}
		if len(es) == 0 {
			select {
			case <-b.Appended():
			case <-time.After(time.Millisecond):
			}
		}
	}
	out.fail("not killed in time")
}

func mustUint(t testing.TB, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return n
}

func tail(lines []string, n int) []string {
	return lines[max(0, len(lines)-n):]
}
