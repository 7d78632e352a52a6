//go:build !demo

package main

import (
	"context"
	"io"
)

// demo is built in only with the demo tag: a site's daemon carries no
// embedded broker (make demo builds it in).
func demo(context.Context, io.Writer, int, string) error { return errNotBuilt("demo", "demo") }
