package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module's root, from this package's directory.
const repoRoot = "../.."

// TestEveryTypeHasASchema holds Types and schema/ to each other: an event
// type without a schema, or a schema of no type, fails.
func TestEveryTypeHasASchema(t *testing.T) {
	files, err := filepath.Glob("schema/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var fromFiles []string
	for _, f := range files {
		fromFiles = append(fromFiles, "io.scangw."+strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	slices.Sort(fromFiles)
	types := slices.Sorted(slices.Values(Types))
	if !slices.Equal(types, fromFiles) {
		t.Fatalf("event types %v, schemas for %v", types, fromFiles)
	}
	carried := map[string]bool{}
	for _, r := range Routes {
		for _, typ := range r.Types {
			carried[typ] = true
			if !slices.Contains(Types, typ) {
				t.Errorf("%s carries %q, which Types does not list", r.Pattern, typ)
			}
		}
	}
	for _, typ := range Types {
		if !carried[typ] {
			t.Errorf("no topic carries %q", typ)
		}
	}
}

// readmeTable renders Routes as README's topic table.
func readmeTable() string {
	var b strings.Builder
	b.WriteString("| topic | direction | retained | QoS | event type | what |\n|---|---|---|---|---|---|\n")
	for _, r := range Routes {
		dir, ret, types := "down", "no", "—"
		if r.Up {
			dir = "up"
		}
		if r.Retained {
			ret = "yes"
		}
		if len(r.Types) > 0 {
			types = "`" + strings.Join(r.Types, "` `") + "`"
		}
		b.WriteString("| `" + r.Pattern + "` | " + dir + " | " + ret + " | " + strconv.Itoa(int(r.QoS)) + " | " + types + " | " + r.What + " |\n")
	}
	return b.String()
}

// TestREADMETopicTable: the README's wire contract lists exactly the
// topics the code uses, each as the code uses it.
func TestREADMETopicTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := readmeTable(); !strings.Contains(string(readme), want) {
		t.Fatalf("README.md's topic table does not match wire.Routes; it should read:\n\n%s", want)
	}
}

func TestRoute(t *testing.T) {
	tp := TopicsFor("scangw/v1", "plant-a", "gw-1")
	for _, tc := range []struct {
		topic, pattern, station string
	}{
		{"scangw/v1/plant-a/gw-1/scans/dock-3", "<prefix>/<site>/<gateway>/scans/<station>", "dock-3"},
		{tp.Of(EventStream("d")), "<prefix>/<site>/<gateway>/events/<station>", "d"},
		{tp.Of(IndicatorStream("d")), "<prefix>/<site>/<gateway>/indicator/<station>", "d"},
		{tp.Status, "<prefix>/<site>/<gateway>/status", ""},
		{tp.Heartbeat, "<prefix>/<site>/<gateway>/heartbeat", ""},
		{tp.Reply, "<prefix>/<site>/<gateway>/reply", ""},
		{tp.Cmd, "<prefix>/<site>/<gateway>/cmd", ""},
		{tp.SiteRules, "<prefix>/<site>/rules", ""},
		{tp.GatewayRules, "<prefix>/<site>/<gateway>/rules", ""},
		{"scangw/v1/plant-a/gw-1/scans/dock-3/x", "", ""},
		{"scangw/v1/plant-a/gw-1/scans/", "", ""},
		{"scangw/v1/plant-a/gw-1/unknown", "", ""},
		{"scangw/v1/plant-a/gw-2/status", "", ""},
		{"other/plant-a/gw-1/status", "", ""},
	} {
		r, st, ok := tp.Route(tc.topic)
		if ok != (tc.pattern != "") || r.Pattern != tc.pattern || st != tc.station {
			t.Errorf("Route(%q) = %q %q %v, want %q %q", tc.topic, r.Pattern, st, ok, tc.pattern, tc.station)
		}
	}
	// A stream stored as a whole topic by an older scangw goes out as it is.
	if got := tp.Of("old/prefix/plant-a/gw-1/scans/d"); got != "old/prefix/plant-a/gw-1/scans/d" {
		t.Errorf("legacy topic became %q", got)
	}
}

var (
	typeLiteral = regexp.MustCompile(`io\.scangw\.[a-z_]+\.v[0-9]+`)
	// A topic or type may also be put together from pieces: the bare
	// topic kinds and the type prefix are not to be spelled either.
	pieceLiteral = regexp.MustCompile(`^/?(scans|events|epcis|indicator|status|heartbeat|reply|cmd)/?$`)
	typePrefix   = regexp.MustCompile(`io\.scangw\.`)
	topicLiteral = regexp.MustCompile(`^(.*/)?(scans|events|epcis|indicator)/|/(status|heartbeat|reply|cmd|rules)$`)
	filePath     = regexp.MustCompile(`^/(proc|sys|dev|etc|var|run|tmp)/`)
)

// TestNoContractOutsideWire reads every Go file of the module: an event
// type the contract does not list fails anywhere, and code outside this
// package that spells a topic, a topic's kind or an event type (rather
// than asking Topics and the constants) fails. Tests may spell the topics
// they expect. It reads literals: a name computed some other way is for
// review to catch.
func TestNoContractOutsideWire(t *testing.T) {
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if rel == "third_party" || rel == filepath.Join("station", "wire") || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		test := strings.HasSuffix(path, "_test.go")
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			stack = append(stack, n)
			if _, imp := n.(*ast.ImportSpec); imp {
				stack = stack[:len(stack)-1]
				return false
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if !test && (typePrefix.MatchString(s) && !typeLiteral.MatchString(s) || pieceLiteral.MatchString(s) && joined(stack)) {
				t.Errorf("%s: %q looks like a piece of a topic or event type built outside package wire", rel, s)
			}
			for _, typ := range typeLiteral.FindAllString(s, -1) {
				if !slices.Contains(Types, typ) {
					t.Errorf("%s: event type %q is not in the wire contract", rel, typ)
				} else if !test {
					t.Errorf("%s: spells event type %q; use the wire constant", rel, typ)
				}
			}
			// HTTP patterns ("GET /status") have a space, topics never do;
			// and topics are not file names.
			// URLs (GS1's EPCIS context is under /epcis/) are not topics.
			if !test && !strings.Contains(s, " ") && !strings.Contains(s, "://") && !filePath.MatchString(s) && topicLiteral.MatchString(s) {
				t.Errorf("%s: %q looks like a topic built outside package wire", rel, s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// joined reports whether the literal on top of stack is joined with
// others into a name (a "+", a Join or Sprintf argument) or named as a
// constant or variable: how a topic's kind would be put together.
func joined(stack []ast.Node) bool {
	if len(stack) < 2 {
		return false
	}
	switch p := stack[len(stack)-2].(type) {
	case *ast.BinaryExpr:
		return p.Op == token.ADD
	case *ast.ValueSpec:
		return true
	case *ast.CallExpr:
		if sel, ok := p.Fun.(*ast.SelectorExpr); ok {
			switch sel.Sel.Name {
			case "Join", "Sprintf", "Appendf", "Sprint":
				return true
			}
		}
	}
	return false
}
