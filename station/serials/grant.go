package serials

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/scangw/scangw/station/wire"
)

// Grant is the args of the grant_serials command: the central system
// gives the gateway the numbers From to To (inclusive) of a scheme's
// counter.
type Grant struct {
	Scheme string `json:"scheme"`
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
}

// ParseGrant decodes the args of grant_serials strictly: one JSON object
// with exactly the fields scheme (an id), from and to (whole numbers 0 to
// 2^63-1 written as JSON integers: no fraction, exponent, sign or
// quotes), each once, and to >= from. The error names the field.
func ParseGrant(args []byte) (Grant, error) {
	g, err := parseGrant(args)
	if err != nil {
		return Grant{}, err
	}
	return g, nil
}

func parseGrant(args []byte) (Grant, error) {
	var g Grant
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return g, errors.New(`grant_serials: args must be a JSON object {"scheme": ID, "from": N, "to": N}`)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return g, fmt.Errorf("grant_serials: %s", syntaxMsg(err))
		}
		key, _ := tok.(string) // inside an object the decoder yields only string keys
		if key != "scheme" && key != "from" && key != "to" {
			return g, fmt.Errorf("grant_serials: %q: unknown field", key)
		}
		if seen[key] {
			return g, fmt.Errorf("grant_serials: %s: given twice", key)
		}
		seen[key] = true
		val, err := dec.Token()
		if err != nil {
			return g, fmt.Errorf("grant_serials: %s: %s", key, syntaxMsg(err))
		}
		switch key {
		case "scheme":
			s, ok := val.(string)
			if !ok || !wire.ValidID(s) {
				return g, errors.New("grant_serials: scheme: must be an id, 1 to 64 of [A-Za-z0-9._-]")
			}
			g.Scheme = s
		case "from":
			if g.From, err = wholeNumber(val); err != nil {
				return g, fmt.Errorf("grant_serials: from: %w", err)
			}
		case "to":
			if g.To, err = wholeNumber(val); err != nil {
				return g, fmt.Errorf("grant_serials: to: %w", err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return g, fmt.Errorf("grant_serials: %s", syntaxMsg(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return g, errors.New("grant_serials: more after the args object")
	}
	for _, k := range []string{"scheme", "from", "to"} {
		if !seen[k] {
			return g, fmt.Errorf("grant_serials: %s: missing", k)
		}
	}
	if g.To < g.From {
		return g, errors.New("grant_serials: to: must be >= from")
	}
	return g, nil
}

func syntaxMsg(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the args object is cut short"
	}
	return err.Error()
}

// wholeNumber takes only the JSON integer form: encoding/json would
// accept 1e3 or 5.0 into a uint64 field's json.Number.
func wholeNumber(v json.Token) (uint64, error) {
	num, ok := v.(json.Number)
	s := string(num)
	if !ok || s == "" || !allDigits(s) || len(s) > 1 && s[0] == '0' {
		return 0, errors.New("must be a whole number 0 to 9223372036854775807")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxNumber {
		return 0, errors.New("must be a whole number 0 to 9223372036854775807")
	}
	return n, nil
}
