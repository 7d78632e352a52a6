package serials

import (
	"fmt"
	"strconv"
	"strings"
)

// maxIDLen is the longest site, gateway or station id (wire.ValidID).
const maxIDLen = 64

// Check reports whether serial is one this template makes, check
// character included, and returns its counter value. This is how `scangw
// inspect` tells a serial of a configured scheme.
//
// A field of known that is set (an id, GTIN, lot, expiry) must appear
// as it is; one that is empty is matched by its shape, so that a serial
// made by another gateway of the fleet still checks: an id as 1 to 64 of
// [A-Za-z0-9._-], a GTIN as 14 digits with their check digit, a lot as 1
// to 20 characters, an expiry as a date YYMMDD. known.Time and known.Seq
// are ignored: the date parts are the serial's date of issue and are
// matched as such (month 01 to 12, day 01 to 31, day of the year 001 to
// 366).
//
// Two variable-length parts that are not known can make a serial fit in
// several ways ({site}-{seq:4}-{lot} and "A-1234-5678-B"). When those
// ways disagree on the counter, Check says so and wants the ids: an
// *AmbiguousError. A serial of the template's shape whose check
// character is wrong gives a *CheckError.
func (t *Template) Check(serial string, known Values) (uint64, error) {
	if len(serial) > t.maxLen {
		return 0, fmt.Errorf("serial: %d characters, over the limit of %d", len(serial), t.maxLen)
	}
	body := serial
	if t.check != nil {
		if len(serial) <= t.checkWidth {
			return 0, fmt.Errorf("serial: offset 0: too short for %s", t.src)
		}
		body = serial[:len(serial)-t.checkWidth]
	}
	m := newMatcher(t, body, known)
	seqs := m.seqs()
	if len(seqs) == 0 {
		return 0, m.failure()
	}
	if t.check != nil {
		want, err := t.check.Compute(t.covered(body))
		if err != nil {
			return 0, fmt.Errorf("serial: %s: %w", t.checkSrc, err)
		}
		if got := serial[len(body):]; got != want {
			return 0, &CheckError{Offset: len(body), Got: got, Want: want, Alg: t.checkSrc}
		}
	}
	if len(seqs) > 1 {
		return 0, &AmbiguousError{Template: t.src, Seqs: [2]uint64{seqs[0], seqs[1]}}
	}
	return seqs[0], nil
}

// CheckError is Check's error for a serial that has the template's
// shape but the wrong check character: a mistyped or misread serial of
// the scheme, where any other error of Check means a serial of some
// other scheme.
type CheckError struct {
	Offset    int    // of the check character in the serial
	Got, Want string // the check character the serial has, and the right one
	Alg       string // the placeholder, as in {check:mod37-2}
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("serial: offset %d: check character %q is wrong (%s wants %q)", e.Offset, e.Got, e.Alg, e.Want)
}

// AmbiguousError is Check's error for a serial that fits the template,
// check character included, in ways that disagree on the counter; the
// ids it was made with tell which.
type AmbiguousError struct {
	Template string
	Seqs     [2]uint64 // two of the counter values it may have
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("serial: fits %s in more than one way (counter %d or %d); give the ids it was made with", e.Template, e.Seqs[0], e.Seqs[1])
}

// matcher finds every way the parts can cover s: fwd marks the positions
// the first i parts can reach from the start, bwd the positions from
// which parts i.. reach the end. Both are (parts+1) × (len(s)+1) tables,
// so an ambiguous template costs polynomial time, not exponential.
type matcher struct {
	t        *Template
	s        string
	known    Values
	fwd, bwd []bool
}

func newMatcher(t *Template, s string, known Values) *matcher {
	n, l := len(t.parts), len(s)
	m := &matcher{t: t, s: s, known: known, fwd: make([]bool, (n+1)*(l+1)), bwd: make([]bool, (n+1)*(l+1))}
	*m.cell(m.fwd, 0, 0) = true
	for i := range n {
		for p := 0; p <= l; p++ {
			if *m.cell(m.fwd, i, p) {
				m.ends(i, p, func(q int) { *m.cell(m.fwd, i+1, q) = true })
			}
		}
	}
	*m.cell(m.bwd, n, l) = true
	for i := n - 1; i >= 0; i-- {
		for p := 0; p <= l; p++ {
			m.ends(i, p, func(q int) {
				if *m.cell(m.bwd, i+1, q) {
					*m.cell(m.bwd, i, p) = true
				}
			})
		}
	}
	return m
}

func (m *matcher) cell(tab []bool, i, p int) *bool { return &tab[i*(len(m.s)+1)+p] }

// seqs returns the distinct counter values of the ways s fits, at most
// two: one is the answer, two are enough to say it is ambiguous.
func (m *matcher) seqs() []uint64 {
	var out []uint64
	w := m.t.parts[m.t.seq].width
	for p := 0; p+w <= len(m.s); p++ {
		if *m.cell(m.fwd, m.t.seq, p) && *m.cell(m.bwd, m.t.seq, p) {
			n, _ := strconv.ParseUint(m.s[p:p+w], 10, 64) // ends matched the digits
			if len(out) == 0 || out[0] != n {
				if out = append(out, n); len(out) == 2 {
					break
				}
			}
		}
	}
	return out
}

// failure names the part expected where the match got furthest: most
// parts matched first, then the furthest position (an unknown id could
// run on to the end, which says little).
func (m *matcher) failure() error {
	far, at := 0, 0
	for i := range len(m.t.parts) + 1 {
		for p := 0; p <= len(m.s); p++ {
			if *m.cell(m.fwd, i, p) {
				far, at = p, i
			}
		}
	}
	if at == len(m.t.parts) {
		return fmt.Errorf("serial: offset %d: %q is more than %s makes", far, m.s[far:], m.t.src)
	}
	return fmt.Errorf("serial: offset %d: does not fit %s: want %s", far, m.t.src, m.t.parts[at])
}

// ends calls f with every q for which part i matches s[p:q].
func (m *matcher) ends(i, p int, f func(q int)) {
	part, s := m.t.parts[i], m.s[p:]
	want := part.text
	if part.kind != kText {
		want = m.known.field(part.kind)
	}
	switch {
	case want != "":
		if strings.HasPrefix(s, want) {
			f(p + len(want))
		}
	case part.width == 0: // an id or a lot, not known
		limit, ok := maxIDLen, isIDChar
		if part.kind == kLot {
			limit, ok = maxLotLen, func(c byte) bool { return m.t.charset[c] }
		}
		for q := 1; q <= len(s) && q <= limit && ok(s[q-1]); q++ {
			f(p + q)
		}
	case len(s) >= part.width && fits(part.kind, s[:part.width]):
		f(p + part.width)
	}
}

// field is the value known gives for a placeholder, "" for those it
// never gives (the date parts and the counter).
func (v Values) field(k kind) string {
	switch k {
	case kSite, kGateway, kStation:
		return v.id(k)
	case kGTIN:
		return v.GTIN
	case kLot:
		return v.Lot
	case kExpiry:
		return v.Expiry
	}
	return ""
}

// fits reports whether s, as wide as the placeholder, has its shape.
func fits(k kind, s string) bool {
	switch k {
	case kMM:
		return inRange(s, 1, 12)
	case kDD:
		return inRange(s, 1, 31)
	case kDDD:
		return inRange(s, 1, 366)
	case kGTIN:
		return validGTIN(s)
	case kExpiry:
		return validExpiry(s)
	}
	return allDigits(s) // yy, yyyy, seq
}

func isIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
