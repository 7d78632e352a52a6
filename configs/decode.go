package configs

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// schemaCheck walks the YAML node tree alongside the Config type. It finds
// what yaml.v3's strict decoder finds (unknown keys, duplicate keys, values
// of the wrong kind) but names each by its config path instead of by Go
// type ("mqtt.brokr: unknown key", not "field brokr not found in type
// configs.MQTT"), so the operator reading a refusal to start knows which
// key to fix. It also records which strings were written as an explicit "",
// because for a few keys that differs from leaving the key out.
type schemaCheck struct {
	files    map[*yaml.Node]string // where each node came from, or nil
	problems []Problem
	// empty maps the path of every string key given in the file to whether
	// its value was an explicit empty string.
	empty map[string]bool
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

func newSchemaCheck(files map[*yaml.Node]string) *schemaCheck {
	return &schemaCheck{files: files, empty: map[string]bool{}}
}

func (s *schemaCheck) add(path string, n *yaml.Node, format string, args ...any) {
	p := Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.File = n.Line, s.files[n]
	}
	s.problems = append(s.problems, p)
}

// value checks n against t. Aliases were already bounded by yaml.v3's
// decoder (it refuses excessive aliasing), which runs first.
func (s *schemaCheck) value(n *yaml.Node, t reflect.Type, path string) {
	n = deref(n)
	if n == nil || isNull(n) {
		if t.Kind() == reflect.String {
			s.empty[path] = false
		}
		return
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			s.add(path, n, "want a duration like 30s or 250ms")
		} else if _, err := parseDuration(n.Value); err != nil {
			s.add(path, n, "%v", err)
		}
	case t == sizeType:
		if _, err := parseSize(n); err != nil {
			s.add(path, n, "%v", err)
		}
	case t.Kind() == reflect.Float64:
		if n.Kind != yaml.ScalarNode || n.Decode(new(float64)) != nil {
			s.add(path, n, "want a number, got %s", kindName(n))
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			s.add(path, n, "want a string, got %s", kindName(n))
			return
		}
		s.empty[path] = n.Value == "" && n.ShortTag() == "!!str"
	case t.Kind() == reflect.Int, t.Kind() == reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Decode(new(int)) != nil {
			s.add(path, n, "want an integer, got %s", kindName(n))
		}
	case t.Kind() == reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Decode(new(uint64)) != nil {
			s.add(path, n, "want an integer of 0 or more, got %s", kindName(n))
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Decode(new(bool)) != nil {
			s.add(path, n, "want true or false, got %s", kindName(n))
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.add(path, n, "want a list, got %s", kindName(n))
			return
		}
		for i, e := range n.Content {
			s.value(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Struct:
		s.mapping(n, t, path, map[string]bool{})
	}
}

// mapping checks a mapping node against struct type t. done holds the keys
// already set by a mapping of higher precedence: yaml.v3 lets keys written
// in a mapping win over keys merged into it with "<<", and earlier merges
// win over later ones.
func (s *schemaCheck) mapping(n *yaml.Node, t reflect.Type, path string, done map[string]bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		what := "a mapping of keys"
		if path == "" {
			what = "the config to be " + what
		}
		s.add(path, n, "want %s, got %s", what, kindName(n))
		return
	}
	fields, names := yamlFields(t)
	seen := map[string]int{} // key -> line, for duplicates within this mapping
	var merge *yaml.Node     // like yaml.v3, only the last "<<" counts
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			merge = v
			continue
		}
		if k.Kind != yaml.ScalarNode {
			s.add(path, k, "keys must be plain words, got %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			s.add(p, k, "duplicate key, first given on line %d", line)
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			s.add(p, k, "unknown key; want one of %s", strings.Join(names, ", "))
			continue
		}
		if done[k.Value] {
			continue
		}
		done[k.Value] = true
		s.value(v, ft, p)
	}
	if merge = deref(merge); merge == nil {
		return
	}
	if merge.Kind == yaml.SequenceNode {
		for _, e := range merge.Content {
			s.mapping(e, t, path, done)
		}
		return
	}
	s.mapping(merge, t, path, done)
}

// yamlFields returns t's fields by YAML key, and the keys in order.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	return fields, names
}

func deref(n *yaml.Node) *yaml.Node {
	// An alias points at an anchored node; yaml.v3's parser refuses cycles,
	// and the bound only guards against a hand-built tree.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// under reports whether path p is root or inside it.
func under(p, root string) bool {
	return root == "" || p == root ||
		strings.HasPrefix(p, root+".") || strings.HasPrefix(p, root+"[")
}
