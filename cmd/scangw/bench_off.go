//go:build !bench

package main

import (
	"context"
	"io"
)

// benchBuffer is built in only with the bench tag (make bench-tool).
func benchBuffer(context.Context, io.Writer, []string) error {
	return errNotBuilt("buffer bench", "bench")
}
