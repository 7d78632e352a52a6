package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A gateway's config is one main file and the fragments in conf.d/ beside
// it (/etc/scangw/scangw.yaml + /etc/scangw/conf.d/*.yaml), so that a fleet
// tool can ship the site's broker settings in one file and a box's stations
// in another. The fragments are merged over the main file in name order:
// mappings merge key by key, anything else (a list, a value) replaces
// what came before. A list is replaced whole, never appended to, so that
// "stations:" in a fragment is the whole list of stations, not a guess.
//
// Before merging, ${VAR} and ${VAR:-default} in a value are replaced from
// the environment (an unset VAR without a default is an error naming it;
// HOSTNAME falls back to the kernel's host name, since systemd does not set
// it). $${ stands for a literal ${. A plain value that was a reference is
// read again as YAML after the replacement: inflight: ${INFLIGHT:-20} is
// the number 20, and ${X:-} is "not given".

// confDir is the fragments' directory, beside the main file.
const confDir = "conf.d"

// source is one file of a config.
type source struct {
	name string // "" for a single document given to Parse
	data []byte
}

// readSources reads the main file at path and the fragments beside it.
// Files whose names start with a dot (an editor's, a fleet tool's
// temporary files) are not fragments.
func readSources(path string) ([]source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, pathError(err)
	}
	srcs := []source{{name: path, data: data}}
	dir := filepath.Join(filepath.Dir(path), confDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return srcs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, pathError(err))
	}
	for _, e := range entries { // in name order
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || filepath.Ext(name) != ".yaml" {
			continue
		}
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, pathError(err))
		}
		srcs = append(srcs, source{name: p, data: data})
	}
	return srcs, nil
}

// pathError keeps an fs error's cause without repeating its path, which
// the caller has already named.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// Files lists the files the config at path is made of: the main file and
// its fragments, in merge order.
func Files(path string) ([]string, error) {
	srcs, err := readSources(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	return names, nil
}

// document is the merged YAML of a config's sources, with where each node
// came from.
type document struct {
	root *yaml.Node
	// files names the file of each node when there was more than one.
	files    map[*yaml.Node]string
	problems []Problem // unset variables
}

func parseSources(srcs []source, env func(string) (string, bool)) (*document, error) {
	d := &document{}
	if len(srcs) > 1 {
		d.files = map[*yaml.Node]string{}
	}
	for _, s := range srcs {
		n, err := parseDocument(s.data)
		if err != nil {
			if len(srcs) > 1 {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			return nil, err
		}
		if n == nil {
			continue
		}
		if d.files != nil {
			markFile(n, s.name, d.files)
		}
		d.expand(n, "", env)
		d.root = merge(d.root, n)
	}
	return d, nil
}

func markFile(n *yaml.Node, name string, files map[*yaml.Node]string) {
	if n == nil || files[n] != "" {
		return
	}
	files[n] = name
	for _, c := range n.Content {
		markFile(c, name, files)
	}
}

// merge lays src over dst: mappings merge by key, anything else replaces.
func merge(dst, src *yaml.Node) *yaml.Node {
	if dst == nil {
		return src
	}
	d, s := deref(dst), deref(src)
	if d == nil || s == nil || d.Kind != yaml.MappingNode || s.Kind != yaml.MappingNode {
		return src
	}
	if dst.Kind == yaml.AliasNode {
		// The anchored mapping may be used elsewhere too: merge into a copy.
		c := *d
		c.Content = slices.Clone(d.Content)
		d = &c
	}
	for i := 0; i+1 < len(s.Content); i += 2 {
		k, v := s.Content[i], s.Content[i+1]
		j := -1
		if !isMergeKey(k) {
			j = findKey(d, k.Value)
		}
		if j < 0 {
			d.Content = append(d.Content, k, v)
			continue
		}
		d.Content[j+1] = merge(d.Content[j+1], v)
	}
	return d
}

// findKey returns the index of key k in mapping m, or -1.
func findKey(m *yaml.Node, k string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if c := m.Content[i]; c.Kind == yaml.ScalarNode && c.Value == k && !isMergeKey(c) {
			return i
		}
	}
	return -1
}

// expand replaces the variable references in n's values; path names n.
// Aliases are expanded where their anchor is.
func (d *document) expand(n *yaml.Node, path string, env func(string) (string, bool)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := path
			if !isMergeKey(k) {
				p = join(path, k.Value)
			}
			d.expand(n.Content[i+1], p, env)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expand(c, fmt.Sprintf("%s[%d]", path, i), env)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		v, err := expandVars(n.Value, env)
		if err != nil {
			d.problems = append(d.problems, Problem{Path: path, Message: err.Error(), Line: n.Line, File: d.files[n]})
			return
		}
		n.Value = v
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!str" {
			n.Tag = "" // read the new value as YAML would have
		}
	}
}

// expandVars replaces ${VAR} and ${VAR:-default} in s; $${ is a literal ${.
func expandVars(s string, env func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i]) // ends in the first $ of $${
			b.WriteString("{")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: ${ without a closing }", s[i:])
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validVarName(name) {
			return "", fmt.Errorf("${%s}: %q is not a variable name (letters, digits and _, not starting with a digit)", ref, name)
		}
		v, ok := env(name)
		switch {
		case ok:
		case hasDef:
			v = def
		default:
			return "", fmt.Errorf("${%s}: the environment variable %s is not set and the reference has no default (write ${%s:-default} for one)", ref, name, name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func validVarName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Env is the environment a config's ${VAR} references are taken from: the
// process's, with HOSTNAME from the kernel where it is not set (systemd
// does not set it, and gateway.id: ${HOSTNAME} is the usual per-box id).
func Env(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	if name == "HOSTNAME" {
		if h, err := os.Hostname(); err == nil {
			return h, true
		}
	}
	return "", false
}

// locate finds the node a problem's path names in the merged document, or
// the nearest node above it (a required key that is missing is reported at
// its mapping).
func locate(root *yaml.Node, path string) *yaml.Node {
	n := deref(root)
	for path != "" && n != nil {
		var seg string
		if path[0] == '[' {
			end := strings.IndexByte(path, ']')
			if end < 0 || n.Kind != yaml.SequenceNode {
				return n
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil || i < 0 || i >= len(n.Content) {
				return n
			}
			n, path = deref(n.Content[i]), strings.TrimPrefix(path[end+1:], ".")
			continue
		}
		seg, path = path, ""
		if i := strings.IndexAny(seg, ".["); i >= 0 {
			seg, path = seg[:i], strings.TrimPrefix(seg[i:], ".")
		}
		if n.Kind != yaml.MappingNode {
			return n
		}
		j := findKey(n, seg)
		if j < 0 {
			return n
		}
		n = deref(n.Content[j+1])
	}
	return n
}
