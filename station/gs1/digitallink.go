package gs1

import "strings"

// GS1 Digital Link (GS1 Digital Link Standard: URI Syntax 1.4) writes GS1
// data as an http(s) URI, so one QR code serves both a consumer's phone and
// a warehouse scanner:
//
//	https://id.example.com/some/stem/01/09506000134352/10/ABC/21/123?17=271231
//
// The path ends in a primary key (an AI with the dictionary's "dlpkey"
// attribute) and its value, followed by that key's qualifiers in the order
// the dictionary gives ("dlpkey=22,10,21|235"); anything before the key is
// the resolver's own path and ignored. Query parameters whose names are
// all digits are AIs, allowed only if the dictionary flags them "?" (data
// attributes); other parameters (linkType, context …) belong to the
// resolver and are ignored, as is the fragment. Values are percent-decoded.
// A GTIN-8, -12 or -13 in the path is padded to 14 digits.
//
// Compressed Digital Link URIs (binary AIs in base64) are not supported.

// segment is a piece of the URI with its offset.
type segment struct {
	text string
	pos  int
}

func (p Parser) digitalLink(data string, off int, r *Result, s *state) {
	u, ok := splitDLURI(data[off:], off, s)
	if !ok {
		s.broken = true
		return
	}
	var segBuf [12]segment // typical URIs fit: no allocation
	segs := u.segments(segBuf[:0])
	keyAt := primaryKeyAt(segs)
	if keyAt < 0 {
		s.fail(CodeDLNoKey, "", segs0Pos(segs, u.pathPos), "the path does not end in a GS1 primary key and its qualifiers")
		s.broken = true
		return
	}
	p.pathAIs(segs, keyAt, r, s)
	p.queryAIs(u.query, u.queryPos, r, s)
}

// dlURI is a Digital Link URI cut at its path and query, with their
// offsets in the scan.
type dlURI struct {
	path     string // without its leading slash; "" for "https://host/"
	pathPos  int
	query    string
	queryPos int
}

// splitDLURI checks the scheme and host name of uri, which starts at off,
// and cuts off the fragment. It reports a problem and returns false if the
// URI cannot be read further.
func splitDLURI(uri string, off int, s *state) (dlURI, bool) {
	var u dlURI
	var rest int
	switch {
	case hasPrefixFold(uri, "https://"):
		rest = len("https://")
	case hasPrefixFold(uri, "http://"):
		rest = len("http://")
	default:
		s.fail(CodeBadURI, "", off, "a GS1 Digital Link URI starts with http:// or https://")
		return u, false
	}
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		u.query, u.queryPos = uri[i+1:], off+i+1
		uri = uri[:i]
	}
	hostEnd := strings.IndexByte(uri[rest:], '/')
	if hostEnd == 0 || rest == len(uri) {
		s.fail(CodeBadURI, "", off+rest, "no host name")
		return u, false
	}
	if hostEnd < 0 {
		s.fail(CodeDLNoKey, "", off+len(uri), "no path, so no GS1 key")
		return u, false
	}
	for i := rest; i < rest+hostEnd; i++ {
		if c := uri[i]; c <= ' ' || c >= 0x7f {
			s.fail(CodeBadURI, "", off+i, "invalid character in host name")
			return u, false
		}
	}
	pathStart := rest + hostEnd + 1
	u.path, u.pathPos = uri[pathStart:], off+pathStart
	return u, true
}

// segments appends the path's segments to segs, dropping the empty one a
// trailing slash leaves.
func (u dlURI) segments(segs []segment) []segment {
	for i := 0; ; {
		j := strings.IndexByte(u.path[i:], '/')
		if j < 0 {
			segs = append(segs, segment{u.path[i:], u.pathPos + i})
			break
		}
		segs = append(segs, segment{u.path[i : i+j], u.pathPos + i})
		i += j + 1
	}
	if len(segs) > 0 && segs[len(segs)-1].text == "" {
		segs = segs[:len(segs)-1] // a trailing slash
	}
	return segs
}

// primaryKeyAt walks back from the end of the path over AI/value pairs to
// the primary key and returns its index, or -1 if there is none; the rest
// of the path in front of it is the resolver's stem.
func primaryKeyAt(segs []segment) int {
	for i := len(segs) - 2; i >= 0; i -= 2 {
		d := dict.exact(segs[i].text)
		if d == nil {
			break
		}
		if d.dlKey {
			return i
		}
	}
	return -1
}

// pathAIs adds the primary key at segs[keyAt] and the qualifiers after
// it, checking that they are the key's qualifiers in the key's order.
func (p Parser) pathAIs(segs []segment, keyAt int, r *Result, s *state) {
	key := dict.exact(segs[keyAt].text)
	var qualBuf [4]string
	quals := qualBuf[:0]
	for i := keyAt; i+1 < len(segs); i += 2 {
		d := dict.exact(segs[i].text)
		if i > keyAt {
			quals = append(quals, d.ai)
			if !qualifiersOK(key, quals) {
				s.fail(CodeDLBadQualifier, d.ai, segs[i].pos,
					"("+d.ai+") is not a qualifier of ("+key.ai+") in this position")
			}
		}
		raw := segs[i+1].text
		v, good := percentDecode(raw)
		if !good {
			s.fail(CodeBadURI, d.ai, segs[i+1].pos, "bad percent-encoding")
			s.broken = true
			continue
		}
		pad := 0
		if d.ai == "01" && allDigits(v) && (len(v) == 8 || len(v) == 12 || len(v) == 13) {
			pad = 14 - len(v)
			v = strings.Repeat("0", pad) + v
		}
		p.addDL(d, v, raw, pad, segs[i].pos, segs[i+1].pos, r, s)
	}
}

// queryAIs adds the AIs of the query string, which starts at qpos, as data
// attributes; parameters whose names are not all digits are the
// resolver's and skipped.
func (p Parser) queryAIs(query string, qpos int, r *Result, s *state) {
	for query != "" {
		var param string
		param, query, _ = strings.Cut(query, "&")
		pos := qpos
		qpos += len(param) + 1
		name, val, eq := strings.Cut(param, "=")
		vPos := pos + len(name)
		if eq {
			vPos++
		}
		if name == "" || !allDigits(name) {
			continue // not an AI: a resolver parameter such as linkType
		}
		d := dict.exact(name)
		if d == nil {
			s.fail(CodeUnknownAI, name, pos, "("+name+") is not an AI")
			continue
		}
		if !d.dlAttr {
			s.fail(CodeDLBadAttribute, d.ai, pos, "("+d.ai+") is not allowed in the query string")
			continue
		}
		v, good := percentDecode(val)
		if !good {
			s.fail(CodeBadURI, d.ai, vPos, "bad percent-encoding")
			s.broken = true
			continue
		}
		p.addDL(d, v, val, 0, pos, vPos, r, s)
	}
}

func segs0Pos(segs []segment, def int) int {
	if len(segs) > 0 {
		return segs[0].pos
	}
	return def
}

// addDL adds and checks one AI of a URI. v is the value after
// percent-decoding and GTIN padding (pad zeros in front of raw's digits);
// error positions are mapped back onto raw so they point into the URI.
func (p Parser) addDL(d *aiDef, v, raw string, pad, aiPos, vPos int, r *Result, s *state) {
	if v == "" {
		s.fail(CodeTooShort, d.ai, vPos, "AI without data")
		s.broken = true
		return
	}
	r.Elements = append(r.Elements, Element{AI: d.ai, Value: v, Pos: aiPos})
	n := len(s.errs)
	s.validate(d, v, 0)
	for _, e := range s.errs[n:] {
		e.Pos = vPos + rawOffset(raw, e.Pos-pad)
	}
}

// rawOffset maps an offset in the percent-decoded form of raw to the
// offset of the same character in raw.
func rawOffset(raw string, decoded int) int {
	i := 0
	for ; i < len(raw) && decoded > 0; decoded-- {
		if raw[i] == '%' && i+2 < len(raw) {
			i += 3
		} else {
			i++
		}
	}
	return i
}

// qualifiersOK reports whether quals, in this order, is a subsequence of
// one of the key's qualifier sequences ("22,10,21|235": 22 then 21 is
// fine, 10 then 22 is not, and 22 with 235 mixes two alternatives).
func qualifiersOK(key *aiDef, quals []string) bool {
	for _, seq := range key.dlQual {
		if isSubsequence(quals, seq) {
			return true
		}
	}
	return false
}

func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, q := range sub {
		for i < len(seq) && seq[i] != q {
			i++
		}
		if i == len(seq) {
			return false
		}
		i++
	}
	return true
}

// percentDecode undoes RFC 3986 percent-encoding; "+" stays "+" (it is a
// CSET 82 character, not a space, in GS1 Digital Link).
func percentDecode(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return string(b), true
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// DigitalLink renders the elements as a GS1 Digital Link URI on the given
// resolver base ("https://id.gs1.org"): the first primary key and its
// qualifiers in the path, the other AIs as query attributes. It returns
// false if there is no primary key or an AI cannot be a data attribute.
func (r *Result) DigitalLink(base string) (string, bool) {
	keyAt := -1
	for i, e := range r.Elements {
		if d := dict.exact(e.AI); d != nil && d.dlKey {
			keyAt = i
			break
		}
	}
	if keyAt < 0 {
		return "", false
	}
	key := dict.exact(r.Elements[keyAt].AI)
	var b strings.Builder
	b.WriteString(strings.TrimRight(base, "/"))
	b.WriteString("/" + key.ai + "/" + percentEncode(r.Elements[keyAt].Value))
	used := make([]bool, len(r.Elements))
	used[keyAt] = true
	// Qualifiers go into the path in the key's order, from the first
	// alternative sequence that has any of them.
	for _, seq := range key.dlQual {
		found := false
		for _, q := range seq {
			for i, e := range r.Elements {
				if !used[i] && e.AI == q {
					b.WriteString("/" + q + "/" + percentEncode(e.Value))
					used[i] = true
					found = true
					break
				}
			}
		}
		if found {
			break
		}
	}
	sep := "?"
	for i, e := range r.Elements {
		if used[i] {
			continue
		}
		d := dict.exact(e.AI)
		if d == nil || !d.dlAttr {
			return "", false
		}
		b.WriteString(sep + e.AI + "=" + percentEncode(e.Value))
		sep = "&"
	}
	return b.String(), true
}

// percentEncode escapes everything but RFC 3986 unreserved characters.
func percentEncode(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}
