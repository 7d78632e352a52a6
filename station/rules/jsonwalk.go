package rules

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The payload is decoded with json.Unmarshal, which reads the caller's
// bytes in place; json.Decoder, the only way to refuse unknown fields,
// would first copy a 15 MB payload into its own growing buffer. So
// unknown fields are found by this walk instead, which also names them by
// their full path ("products[3].requires"), as json's error does not.

// shape is what a JSON value may hold: the keys of an object, the
// elements of an array. A nil field means anything goes (leaves, and
// values of the wrong type, which json.Unmarshal reports).
type shape struct {
	fields map[string]*shape
	elem   *shape
}

var payloadShape = sync.OnceValue(func() *shape { return shapeOf(reflect.TypeFor[wireSet]()) })

func shapeOf(t reflect.Type) *shape {
	switch t {
	case reflect.TypeFor[hashList]():
		return &shape{}
	case reflect.TypeFor[denyList]():
		return &shape{elem: shapeOf(reflect.TypeFor[wireDeny]())}
	case reflect.TypeFor[expectedList]():
		return &shape{elem: shapeOf(reflect.TypeFor[wireExpected]())}
	case reflect.TypeFor[documentList]():
		return &shape{elem: shapeOf(reflect.TypeFor[wireDocument]())}
	case reflect.TypeFor[shippedList]():
		return &shape{elem: shapeOf(reflect.TypeFor[wireShipped]())}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return shapeOf(t.Elem())
	case reflect.Slice:
		return &shape{elem: shapeOf(t.Elem())}
	case reflect.Struct:
		s := &shape{fields: map[string]*shape{}}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "" && name != "-" {
				s.fields[name] = shapeOf(f.Type)
			}
		}
		return s
	}
	return &shape{}
}

// pathSeg is one step of a path, rendered only when a problem is found.
type pathSeg struct {
	parent *pathSeg
	key    string
	idx    int
}

func (p *pathSeg) String() string {
	if p == nil {
		return ""
	}
	parent := p.parent.String()
	if p.key == "" {
		return parent + "[" + strconv.Itoa(p.idx) + "]"
	}
	if parent == "" {
		return p.key
	}
	return parent + "." + p.key
}

// unknownFields reports every key of b, a JSON value, that sh does not
// know, through bad. It never panics on malformed input.
func unknownFields(b []byte, sh *shape, bad func(path string)) {
	walk(b, skipSpace(b, 0), sh, nil, bad)
}

// walk checks the value at b[i] and returns the index after it. It
// always advances when i < len(b), so malformed input cannot loop it.
func walk(b []byte, i int, sh *shape, at *pathSeg, bad func(path string)) int {
	if i >= len(b) {
		return i
	}
	switch {
	case b[i] == '{' && sh.fields != nil:
		i++
		for {
			i = skipSpace(b, i)
			if i >= len(b) || b[i] == '}' {
				return i + 1
			}
			if b[i] == ',' {
				i++
				continue
			}
			end := skipString(b, i)
			key := jsonString(b[i:end])
			i = skipSpace(b, end)
			if i < len(b) && b[i] == ':' {
				i++
			}
			i = skipSpace(b, i)
			child := sh.fields[key]
			if child == nil {
				bad((&pathSeg{parent: at, key: key}).String())
				i = skipValue(b, i)
				continue
			}
			i = walk(b, i, child, &pathSeg{parent: at, key: key}, bad)
		}
	case b[i] == '[' && sh.elem != nil:
		i++
		for n := 0; ; n++ {
			i = skipSpace(b, i)
			if i >= len(b) || b[i] == ']' {
				return i + 1
			}
			i = walk(b, i, sh.elem, &pathSeg{parent: at, idx: n}, bad)
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i++
			}
		}
	}
	return skipValue(b, i)
}

// skipString returns the index after the string starting at b[i] (or
// i+1 if there is none).
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return i + 1
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i]; at least
// i+1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i + 1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i + 1
	for j < len(b) && !strings.ContainsRune(",]} \t\r\n", rune(b[j])) {
		j++
	}
	return j
}

// jsonString decodes a JSON string literal (quotes included); "" if it is
// not one.
func jsonString(lit []byte) string {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return ""
	}
	body := lit[1 : len(lit)-1]
	if !strings.ContainsRune(string(body), '\\') {
		return string(body)
	}
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return ""
	}
	return s
}

// eachElement calls fn with each element of the JSON array b and its
// index. It returns a problem when b is neither an array nor null.
func eachElement(b []byte, fn func(i int, elem []byte)) string {
	i := skipSpace(b, 0)
	if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
		return ""
	}
	if i >= len(b) || b[i] != '[' {
		return "want an array"
	}
	i++
	for n := 0; ; n++ {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == ']' {
			return ""
		}
		end := min(skipValue(b, i), len(b))
		fn(n, b[i:end])
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
}

// eachMember calls fn with each member of the JSON object b: its key as
// written (escapes left in) and its value.
func eachMember(b []byte, fn func(key, val []byte)) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		if b[i] == ',' {
			i++
			continue
		}
		end := min(skipString(b, i), len(b))
		key := b[min(i+1, end):max(end-1, min(i+1, end))]
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ':' {
			i++
		}
		i = skipSpace(b, i)
		vend := min(skipValue(b, i), len(b))
		fn(key, b[min(i, vend):vend])
		i = vend
	}
}

// countKeys counts, without decoding, the keys a deny or expected array
// will make: its serials and lots, or one for an entry naming only a
// product. It may count a few too many, never too few for a valid set, so
// the hash slices are allocated once: growing them by appending would
// leave about three times their size behind for the collector.
func countKeys(list []byte) int {
	n := 0
	eachElement(list, func(_ int, elem []byte) {
		k := 0
		eachMember(elem, func(key, val []byte) {
			switch string(key) {
			case "serials", "lots":
				eachElement(val, func(int, []byte) { k++ })
			case "serial", "lot":
				k++
			}
		})
		n += max(k, 1)
	})
	return n
}
