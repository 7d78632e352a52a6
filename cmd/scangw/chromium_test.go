package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// Phone size the page is checked at (an iPhone 12-15 in CSS pixels).
const phoneWidth, phoneHeight = 390, 844

// chromiumPath finds Debian's chromium; its absence fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: apt-get install chromium (make deps does)")
	return ""
}

// startScangw runs the scangw binary on config until the test ends, its
// output in logPath, and stops it with SIGTERM.
func startScangw(t *testing.T, bin, config, logPath string) {
	t.Helper()
	d := crashNewDaemon(t, bin, config, logPath)
	d.start()
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("scangw: %v", err)
		}
		if t.Failed() {
			t.Logf("scangw log:\n%s", crashLogTail(logPath))
		}
	})
}

// latestView is what the page shows as a station's latest read.
type latestView struct {
	SameDoc     bool // the page was updated in place, not reloaded
	Verdict, Bg string
	Class       string
	FontPx      float64
}

// rect is a DOMRect as the page reports it.
type rect struct{ Left, Right, Top, Bottom, Width float64 }

// TestStatusPageInChromium drives the real daemon's status page in one
// headless Chromium at phone size: the login form (a wrong token is
// refused), reads typed into a pty appearing live, the layout at 390 px,
// the page with script off, and a screenshot in the test's artifact dir.
func TestStatusPageInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	bin := buildScangw(t)
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()

	dir := t.TempDir()
	const token = "dock-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	config := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
gateway: {id: gw-page, site: plant-c}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms, keepalive: 5s}
http:    {listen: %q, token_file: %q}
log:     {level: info}
stations:
  - id: dock-1
    mode: receive
    scanners:
      - {id: h1, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}
`, filepath.Join(dir, "buf"), broker.URL(), httpAddr, tokenFile, line.Path()), 0o600); err != nil {
		t.Fatal(err)
	}
	startScangw(t, bin, config, filepath.Join(dir, "scangw.log"))
	base := "http://" + httpAddr
	waitFor(t, "scangw ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	chromeLog := filepath.Join(dir, "chromium.log")
	chromeOut, err := os.Create(chromeLog)
	if err != nil {
		t.Fatal(err)
	}
	defer chromeOut.Close()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(phoneWidth, phoneHeight), chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.CombinedOutput(chromeOut))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(chromeLog)
			t.Logf("chromium output:\n%s", b)
		}
	}()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))

	// Every wait in the browser ends by this deadline: a failure, not a hang.
	wait := func(what, expr string) {
		t.Helper()
		start := time.Now()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
	}

	t.Run("wrong token gets 401", func(t *testing.T) {
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 401 {
			t.Fatalf("/ without a session = %d, want 401 and the login form", resp.Status)
		}
		resp, err = chromedp.RunResponse(ctx,
			chromedp.SendKeys(chromedp.ID("token"), "not-the-token-0123456789"),
			chromedp.Submit(chromedp.ID("token")))
		if err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		if resp.Status != 401 || err != nil || !strings.Contains(text, "Wrong token") {
			t.Fatalf("wrong token = %d %q (%v), want 401 and 'Wrong token'", resp.Status, text, err)
		}
	})

	t.Run("login", func(t *testing.T) {
		resp, err := chromedp.RunResponse(ctx,
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Submit(chromedp.ID("token")))
		if err != nil {
			t.Fatal(err)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || resp.Status != 200 || loc != base+"/" {
			t.Fatalf("login = %d at %q (%v), want 200 at %s/ with the token gone from the address", resp.Status, loc, err, base)
		}
		// HttpOnly: a script on the page cannot read the session.
		if c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || c != "" {
			t.Errorf("document.cookie = %q (%v), want nothing a script can read", c, err)
		}
		wait("the broker link shown up", `document.querySelector('#broker.ok') !== null`)
		wait("scanner h1 shown up", `[...document.querySelectorAll('section[data-station="dock-1"] .pill.up')].some(e => e.textContent.startsWith('h1 up'))`)
	})

	// Each read appears in the page without a reload: the script polls.
	reads := []struct{ code, shown, verdict, colour string }{
		{"PAGE-0001", "PAGE-0001", "accepted", "rgb(21, 128, 61)"},
		{"PAGE\x01BAD", "PAGE\u2401BAD", "rejected", "rgb(185, 28, 28)"},
		// One unbroken line longer than the screen is wide: it must wrap.
		{"PAGE-0002-" + strings.Repeat("0123456789", 8), "PAGE-0002-" + strings.Repeat("0123456789", 8), "accepted", "rgb(21, 128, 61)"},
	}
	for _, rd := range reads {
		t.Run("read "+rd.verdict, func(t *testing.T) {
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.scangwMark = document.getElementById('live'), true`)); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			if _, err := line.Send(context.Background(), rd.code, "\r\n", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			acked := time.Since(sent)
			expr := fmt.Sprintf(`(() => {
				const s = document.querySelector('section[data-station="dock-1"]');
				const row = s && s.querySelector('.recent li');
				const latest = s && s.querySelector('.latest');
				return !!row && row.querySelector('.data').textContent === %q &&
					latest.querySelector('.data').textContent === %[1]q;
			})()`, rd.shown)
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
				t.Fatalf("read %q never appeared in the page: %v", rd.code, err)
			}
			t.Logf("read %.20q: feedback after %v, in the page after %v", rd.code, acked.Round(time.Millisecond), time.Since(sent).Round(time.Millisecond))
			got, err := chromedp.Run(ctx, chromedp.Evaluate[latestView](`(() => {
				const l = document.querySelector('section[data-station="dock-1"] .latest');
				const v = l.querySelector('.verdict');
				return {SameDoc: window.scangwMark === document.getElementById('live'),
					Verdict: v.textContent, Bg: getComputedStyle(l).backgroundColor, Class: l.className,
					FontPx: parseFloat(getComputedStyle(v).fontSize)};
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			if !got.SameDoc {
				t.Error("the page was reloaded, not updated by its script")
			}
			if got.Verdict != rd.verdict || got.Bg != rd.colour || got.FontPx < 28 {
				t.Errorf("latest read %+v: want verdict %s on %s in large text (>= 28px)", got, rd.verdict, rd.colour)
			}
		})
	}

	// The verdict and seq of the latest row must be on screen at phone
	// width, and nothing may scroll sideways.
	checkFits := func(t *testing.T, tab context.Context) {
		t.Helper()
		type layout struct {
			InnerWidth, ScrollWidth float64
			Rects                   map[string]rect
		}
		l, err := chromedp.Run(tab, chromedp.Evaluate[layout](`(() => {
			const s = document.querySelector('section[data-station="dock-1"]');
			const r = e => { const b = e.getBoundingClientRect(); return {Left: b.left, Right: b.right, Top: b.top, Bottom: b.bottom, Width: b.width}; };
			const row = s.querySelector('.recent li');
			return {InnerWidth: innerWidth, ScrollWidth: document.documentElement.scrollWidth, Rects: {
				'row verdict': r(row.querySelector('.verdict')), 'row seq': r(row.querySelector('.seq')), 'row data': r(row.querySelector('.data')),
				'latest verdict': r(s.querySelector('.latest .verdict')), 'latest seq': r(s.querySelector('.latest .seq'))}};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if l.InnerWidth != phoneWidth {
			t.Fatalf("window is %v px wide, want %d", l.InnerWidth, phoneWidth)
		}
		if l.ScrollWidth > l.InnerWidth {
			t.Errorf("page is %v px wide in a %v px window: it scrolls sideways", l.ScrollWidth, l.InnerWidth)
		}
		for name, r := range l.Rects {
			if r.Width <= 0 || r.Left < 0 || r.Right > l.InnerWidth {
				t.Errorf("%s at %+v: not within the %v px window", name, r, l.InnerWidth)
			}
		}
		if lv := l.Rects["latest verdict"]; lv.Bottom > phoneHeight {
			t.Errorf("latest verdict at %+v: below the first %d px screen", lv, phoneHeight)
		}
	}
	t.Run("fits a phone", func(t *testing.T) { checkFits(t, ctx) })

	t.Run("screenshot", func(t *testing.T) {
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.DecodeConfig(bytes.NewReader(shot))
		if err != nil || img.Width != phoneWidth || img.Height != phoneHeight {
			t.Errorf("screenshot %dx%d (%v), want %dx%d", img.Width, img.Height, err, phoneWidth, phoneHeight)
		}
		path := filepath.Join(artifactDir(t), fmt.Sprintf("status-page-%dx%d.png", phoneWidth, phoneHeight))
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	})

	// The same page with script off: rendered by the server, reloaded by
	// its noscript refresh, in a second tab of the same browser (the
	// session cookie is shared).
	t.Run("script off", func(t *testing.T) {
		tab, cancelTab := chromedp.NewContext(ctx)
		defer cancelTab()
		if err := chromedp.Do(tab, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		resp, err := chromedp.Run(tab, chromedp.NavigateResponse(base+"/"))
		if err != nil || resp.Status != 200 {
			t.Fatalf("/ with script off: %v, %v", resp, err)
		}
		last := reads[len(reads)-1]
		data, err := chromedp.Run(tab, chromedp.TextContent(chromedp.CSS(`section[data-station="dock-1"] .latest .data`)))
		if err != nil || data != last.shown {
			t.Errorf("latest read with script off = %q (%v), want %q", data, err, last.shown)
		}
		// A noscript's content is markup only with script off: this also
		// shows the tab really runs without script.
		refresh, err := chromedp.Run(tab, chromedp.Nodes(chromedp.CSS(`meta[http-equiv="refresh"]`)))
		if err != nil || len(refresh) != 1 {
			t.Errorf("with script off the page has %d refresh metas (%v), want 1 from its noscript", len(refresh), err)
		}
		checkFits(t, tab)
	})
}

// artifactDir is where a test leaves files for people: under -outputdir
// when go test runs with -artifacts, else a temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("SCANGW_ARTIFACTS"); d != "" {
		d = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}
