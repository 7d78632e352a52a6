package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// scangwBinary is the daemon built once per test binary by buildScangw.
// Its directory outlives any single test (a t.TempDir would vanish with
// the first test that asked for the binary), so TestMain removes it.
var scangwBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if scangwBinary.dir != "" {
		os.RemoveAll(scangwBinary.dir)
	}
	os.Exit(code)
}

// buildScangw returns the path of the scangw binary, built once per test
// binary with plain `go build` (no -race: the child is the system under
// test, not the test), for tests that run the daemon as a child process.
func buildScangw(t testing.TB) string {
	t.Helper()
	scangwBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "scangw-test-bin-")
		if err != nil {
			scangwBinary.err = err
			return
		}
		scangwBinary.dir = dir
		path := filepath.Join(dir, "scangw")
		// `go test` puts its own GOROOT/bin first on PATH, so this is the
		// toolchain that built the test.
		out, err := exec.Command("go", "build", "-o", path, "github.com/scangw/scangw/cmd/scangw").CombinedOutput()
		if err != nil {
			scangwBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		scangwBinary.path = path
	})
	if scangwBinary.err != nil {
		t.Fatalf("build scangw: %v", scangwBinary.err)
	}
	return scangwBinary.path
}
