package serials

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// issueAll issues until the counter is exhausted and returns the numbers.
func issueAll(t *testing.T, c Counter, maxSeq uint64) ([]uint64, Counter) {
	t.Helper()
	var got []uint64
	for range 100 {
		seq, next, err := c.Issue(maxSeq)
		if errors.Is(err, ErrExhausted) {
			return got, c
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seq)
		c = next
	}
	t.Fatal("counter never ran out")
	return nil, c
}

func TestIssueFree(t *testing.T) {
	c := Counter{Next: 7}
	if n := c.Remaining(9); n != 3 {
		t.Fatalf("Remaining = %d, want 3", n)
	}
	got, last := issueAll(t, c, 9)
	if !reflect.DeepEqual(got, []uint64{7, 8, 9}) {
		t.Fatalf("issued %v", got)
	}
	if c.Next != 7 {
		t.Fatalf("Issue changed its counter: %+v", c)
	}
	if n := last.Remaining(9); n != 0 {
		t.Fatalf("Remaining = %d after exhaustion", n)
	}
	_, _, err := last.Issue(9)
	if want := "serials: no number left: the counter is at 10, past the largest number 9"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if _, err := c.Grant(Grant{Scheme: "bench", From: 100, To: 200}, 999); err == nil || !strings.Contains(err.Error(), "counts freely") {
		t.Fatalf("Grant on a free counter: %v", err)
	}
}

// The counter never wraps, whatever maxSeq the caller passes.
func TestIssueAtTheTop(t *testing.T) {
	c := Counter{Next: math.MaxInt64}
	seq, next, err := c.Issue(math.MaxUint64)
	if err != nil || seq != math.MaxInt64 {
		t.Fatalf("Issue = %d, %v", seq, err)
	}
	if _, _, err := next.Issue(math.MaxUint64); !errors.Is(err, ErrExhausted) {
		t.Fatalf("issued past 2^63-1: %v", err)
	}
}

func TestIssueGranted(t *testing.T) {
	c := Counter{Granted: true}
	if _, _, err := c.Issue(999); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "no granted block left") {
		t.Fatalf("Issue without blocks: %v", err)
	}
	var err error
	for _, g := range []Grant{{From: 20, To: 21}, {From: 10, To: 12}, {From: 30, To: 30}} {
		if c, err = c.Grant(g, 999); err != nil {
			t.Fatal(err)
		}
	}
	if want := []Block{{10, 12}, {20, 21}, {30, 30}}; !reflect.DeepEqual(c.Blocks, want) {
		t.Fatalf("blocks %v, want them in order %v", c.Blocks, want)
	}
	if n := c.Remaining(999); n != 6 {
		t.Fatalf("Remaining = %d, want 6", n)
	}
	seq, next, err := c.Issue(999)
	if err != nil || seq != 10 {
		t.Fatalf("Issue = %d, %v", seq, err)
	}
	next.Blocks[0].To = 11 // next is the caller's; c must not see it
	if c.Blocks[0].To != 12 || c.Next != 0 {
		t.Fatalf("Issue's result shares state with its counter: %+v", c)
	}
	got, last := issueAll(t, c, 999)
	if want := []uint64{10, 11, 12, 20, 21, 30}; !reflect.DeepEqual(got, want) {
		t.Fatalf("issued %v, want %v", got, want)
	}
	if len(last.Blocks) != 0 || last.Next != 31 {
		t.Fatalf("used-up blocks were kept: %+v", last)
	}
	// A block the template's width no longer reaches issues nothing.
	c = Counter{Granted: true, Blocks: []Block{{5000, 6000}}}
	if _, _, err := c.Issue(999); !errors.Is(err, ErrExhausted) {
		t.Fatalf("issued past the width: %v", err)
	}
	if n := c.Remaining(999); n != 0 {
		t.Fatalf("Remaining = %d past the width", n)
	}
}

func TestGrant(t *testing.T) {
	// Numbers up to 104 are issued; 105..110 are still held.
	held := Counter{Next: 105, Granted: true, Blocks: []Block{{100, 110}, {200, 300}}}
	for _, tc := range []struct {
		name string
		g    Grant
		want string // "" for success
	}{
		{"between", Grant{From: 111, To: 199}, ""},
		{"after", Grant{From: 301, To: 999}, ""},
		{"same block again, partly issued", Grant{From: 100, To: 110}, ""},
		{"same block again", Grant{From: 200, To: 300}, ""},
		{"from > to", Grant{From: 400, To: 399}, "grant_serials: to: must be >= from"},
		{"past the width", Grant{From: 400, To: 1000}, "grant_serials: to: 1000 is past the largest number the scheme's counter holds, 999"},
		{"below issued", Grant{From: 50, To: 60}, "grant_serials: from: 50 is below the numbers already issued (next is 105)"},
		{"reaching into issued", Grant{From: 104, To: 104}, "grant_serials: from: 104 is below the numbers already issued (next is 105)"},
		{"overlap at the start", Grant{From: 150, To: 200}, "grant_serials: block 150-200 overlaps the block 200-300 granted before"},
		{"overlap at the end", Grant{From: 300, To: 400}, "grant_serials: block 300-400 overlaps the block 200-300 granted before"},
		{"inside", Grant{From: 210, To: 220}, "grant_serials: block 210-220 overlaps the block 200-300 granted before"},
		{"around", Grant{From: 150, To: 350}, "grant_serials: block 150-350 overlaps the block 200-300 granted before"},
		{"unused part of a held block", Grant{From: 105, To: 110}, "grant_serials: block 105-110 overlaps the block 100-110 granted before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := held
			before.Blocks = append([]Block(nil), held.Blocks...)
			got, err := held.Grant(tc.g, 999)
			if !reflect.DeepEqual(held, before) {
				t.Fatalf("Grant changed its counter: %+v", held)
			}
			if tc.want != "" {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("err = %v, want %s", err, tc.want)
				}
				if !reflect.DeepEqual(got, held) {
					t.Fatalf("a refused grant changed the counter: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b := Block{tc.g.From, tc.g.To}
			n := len(held.Blocks)
			if !containsBlock(held.Blocks, b) {
				n++
			}
			if len(got.Blocks) != n || !containsBlock(got.Blocks, b) || got.Next != held.Next {
				t.Fatalf("Grant = %+v", got)
			}
			if again, err := got.Grant(tc.g, 999); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("the same grant again = %+v, %v; want no change", again, err)
			}
		})
	}
	// Once a block is used up it is gone, and granting it again is
	// refused as below the numbers issued: nothing is issued twice.
	c := Counter{Granted: true}
	c, _ = c.Grant(Grant{From: 1, To: 2}, 9)
	_, c = issueAll(t, c, 9)
	if _, err := c.Grant(Grant{From: 1, To: 2}, 9); err == nil {
		t.Fatal("a used-up block was granted again")
	}
}

func containsBlock(bs []Block, b Block) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

func TestCounterJSON(t *testing.T) {
	for _, tc := range []struct {
		c    Counter
		want string
	}{
		{Counter{Next: 1}, `{"next":1}`},
		{Counter{Next: 5, Granted: true, Blocks: []Block{{5, 9}}}, `{"next":5,"granted":true,"blocks":[{"from":5,"to":9}]}`},
	} {
		b, err := json.Marshal(tc.c)
		if err != nil || string(b) != tc.want {
			t.Fatalf("Marshal = %s, %v; want %s", b, err, tc.want)
		}
		var back Counter
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tc.c) {
			t.Fatalf("Unmarshal = %+v, %v", back, err)
		}
	}
}

// TestGrantedNeverIssuesTwice drives a granted counter with random
// grants (some overlapping, retried or out of range) and issues, some of
// which are lost before their commit as in a power cut. The counter goes
// through JSON at every commit, as it does through the buffer. No number
// is issued twice or outside a block that was accepted, and Remaining
// is always the count of accepted numbers not yet passed.
func TestGrantedNeverIssuesTwice(t *testing.T) {
	const maxSeq = 9999
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 15))
		c := Counter{Granted: true}
		var accepted []Block
		issued := map[uint64]bool{}
		last := int64(-1)
		for step := range 2000 {
			var next Counter
			switch r := rng.IntN(10); {
			case r < 2:
				// Mostly near the counter, sometimes anywhere (and past the
				// width).
				from := max(c.Next, 20) - 20 + rng.Uint64N(200)
				if rng.IntN(10) == 0 {
					from = rng.Uint64N(maxSeq + 200)
				}
				g := Grant{Scheme: "s", From: from, To: from + rng.Uint64N(60) - 5}
				if r == 0 && len(c.Blocks) > 0 {
					b := c.Blocks[rng.IntN(len(c.Blocks))]
					g.From, g.To = b.From, b.To // a retried command
				}
				n, err := c.Grant(g, maxSeq)
				if err != nil {
					continue
				}
				if b := (Block{g.From, g.To}); !containsBlock(c.Blocks, b) {
					for _, a := range accepted {
						if a.From <= b.To && b.From <= a.To {
							t.Fatalf("seed %d step %d: %v overlaps %v, accepted", seed, step, b, a)
						}
					}
					accepted = append(accepted, b)
				}
				next = n
			default:
				seq, n, err := c.Issue(maxSeq)
				if errors.Is(err, ErrExhausted) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if rng.IntN(5) == 0 {
					continue // lost before the commit: the number was never used
				}
				if issued[seq] {
					t.Fatalf("seed %d step %d: %d issued twice", seed, step, seq)
				}
				if int64(seq) <= last {
					t.Fatalf("seed %d step %d: %d after %d", seed, step, seq, last)
				}
				in := false
				for _, a := range accepted {
					in = in || a.From <= seq && seq <= a.To
				}
				if !in || seq > maxSeq {
					t.Fatalf("seed %d step %d: %d is outside the blocks %v", seed, step, seq, accepted)
				}
				issued[seq], last = true, int64(seq)
				next = n
			}
			b, err := json.Marshal(next)
			if err != nil {
				t.Fatal(err)
			}
			c = Counter{}
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			var want uint64
			for _, a := range accepted {
				for n := max(a.From, uint64(last+1)); n <= a.To; n++ {
					want++
				}
			}
			if got := c.Remaining(maxSeq); got != want {
				t.Fatalf("seed %d step %d: Remaining = %d, want %d", seed, step, got, want)
			}
		}
		if len(issued) < 200 {
			t.Fatalf("seed %d: only %d numbers issued; the test exercises too little", seed, len(issued))
		}
	}
}
