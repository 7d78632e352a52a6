package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/consumer"
)

const tailUsage = `usage: scangw tail --broker URL [flags]

Prints the gateways' scans and station events as they arrive at the
broker, each once (duplicates from at-least-once delivery dropped), one
line each: time, site/gateway/station, seq, verdict (or event), raw text.
Gaps in a gateway's seq — messages lost between gateway and broker, or in
the broker — are warned about on stderr, and so is their closing.

  --broker URL          tcp://, ssl:// or mqtts:// broker (required)
  --prefix P            the gateways' mqtt.topic_prefix (default scangw/v1)
  --site S, --gateway G only this site, or gateway
  --key FILE            a private key (scangw rules keygen) whose public key the
                        gateways list in mqtt.command_keys: ask them to resend
                        what is missing (needs buffer.audit_window on the gateway)
  --resend-after D      how long a gap may stay open before asking (default 10s)
  --client-id ID        keep a session on the broker under ID: a later tail with
                        the same ID gets what was published meanwhile (without
                        it nothing is left on the broker, nothing is caught up)
  --json                print each event as it arrived (CloudEvents JSON lines)
  --username U, --password-file F, --ca-file F   credentials and broker CA

Runs until interrupted (SIGINT, SIGTERM).
`

// tailCmd is `scangw tail`.
func tailCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	broker := fs.String("broker", "", "broker URL")
	prefix := fs.String("prefix", consumer.DefaultTopicPrefix, "topic prefix")
	site := fs.String("site", "", "only this site")
	gateway := fs.String("gateway", "", "only this gateway")
	keyFile := fs.String("key", "", "private key file: ask for resends")
	resendAfter := fs.Duration("resend-after", consumer.DefaultResendAfter, "how long a gap may stay open before asking")
	clientID := fs.String("client-id", "", "persistent session id")
	asJSON := fs.Bool("json", false, "print events as JSON lines")
	username := fs.String("username", "", "broker user")
	passwordFile := fs.String("password-file", "", "file holding the broker password")
	caFile := fs.String("ca-file", "", "CA certificate(s) of the broker, PEM")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *broker == "" {
		return badUsage("%s", tailUsage)
	}
	cfg := consumer.Config{
		Broker: *broker, ClientID: *clientID, CleanSession: *clientID == "",
		Username: *username, TopicPrefix: *prefix, Site: *site, Gateway: *gateway,
		ResendAfter: *resendAfter,
		Log:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if cfg.ClientID == "" {
		// Still unique, so that two operators' tails do not take the
		// connection from each other.
		cfg.ClientID = "scangw-tail-" + wire.NewID()[24:]
	}
	if *keyFile != "" {
		key, err := readPrivateKey(*keyFile)
		if err != nil {
			return fmt.Errorf("--key %s: %w", *keyFile, err)
		}
		cfg.SignKey = key
	}
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no PEM certificate in it", *caFile)
		}
		cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &tailPrinter{out: stdout, errs: stderr, json: *asJSON, cancel: cancel}
	cfg.OnEvent, cfg.OnGap, cfg.OnEpoch = p.event, p.gap, p.epoch
	c, err := consumer.New(cfg)
	if err != nil {
		return flagError(err)
	}
	mode := "gaps are reported, not asked for (no --key)"
	if cfg.SignKey != nil {
		mode = fmt.Sprintf("gaps open for %v are asked for, signed for command key %s", cfg.ResendAfter, keyID(cfg.SignKey))
	}
	fmt.Fprintf(stderr, "scangw tail: %s, prefix %s; %s\n", *broker, cfg.TopicPrefix, mode)
	if err := c.Run(ctx); err != nil {
		return err
	}
	st := c.Stats()
	fmt.Fprintf(stderr, "scangw tail: %d events, %d duplicates dropped, %d resends asked, %d gaps open, %d lost\n",
		st.Events, st.Duplicates, st.Resends, st.OpenGaps, st.LostGaps)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// flagError names consumer.Config's fields as tail's flags.
func flagError(err error) error {
	r := strings.NewReplacer("Broker:", "--broker:", "ClientID:", "--client-id:", "TopicPrefix:", "--prefix:",
		"Site:", "--site:", "Gateway:", "--gateway:", "SignKey:", "--key:", "ResendAfter:", "--resend-after:",
		"ResendMax:", "--resend-after:")
	return errors.New(r.Replace(err.Error()))
}

// keyID is the public key as mqtt.command_keys lists it.
func keyID(k ed25519.PrivateKey) string { return rules.KeyID(k.Public().(ed25519.PublicKey)) }

// tailPrinter writes what the consumer reports. Its methods are the
// consumer's callbacks, which are called one at a time.
type tailPrinter struct {
	out, errs io.Writer
	json      bool
	cancel    func()

	mu  sync.Mutex
	err error // the first failed write to out: the reader went away
}

func (p *tailPrinter) event(e consumer.Event) {
	var line string
	if p.json {
		// One line each, whatever white space the publisher put in.
		var b bytes.Buffer
		json.Compact(&b, e.Payload)
		line = b.String()
	} else {
		line = fmt.Sprintf("%s %s/%s/%s #%d %s", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Site, e.Gateway, e.Station, e.Seq, describeEvent(e))
	}
	if _, err := fmt.Fprintln(p.out, line); err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = fmt.Errorf("write: %w", err)
		}
		p.mu.Unlock()
		p.cancel()
	}
}

// describeEvent is the verdict and raw text of a scan, and what the
// other events say. Everything taken from the payload is quoted where it
// could hold control characters: a barcode may carry a terminal's escape
// sequence.
func describeEvent(e consumer.Event) string {
	switch e.Type {
	case wire.ScanType:
		var d wire.ScanData
		json.Unmarshal(e.Data, &d)
		s := plain(d.Verdict) + " " + strconv.Quote(d.Raw)
		var codes []string
		for _, r := range d.Reasons {
			codes = append(codes, plain(r.Code))
		}
		if len(codes) > 0 {
			s += " [" + strings.Join(codes, " ") + "]"
		}
		return s
	case wire.ContextType:
		var d wire.ContextData
		json.Unmarshal(e.Data, &d)
		keys := make([]string, 0, len(d.Context))
		for k := range d.Context {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := "context mode=" + plain(d.Mode)
		for _, k := range keys {
			s += " " + plain(k) + "=" + plain(d.Context[k])
		}
		return s
	case wire.NoReadType:
		var d wire.NoReadData
		json.Unmarshal(e.Data, &d)
		return "noread " + strconv.Quote(d.Raw)
	}
	return plain(e.Type)
}

// plain returns s as it is if it is printable ASCII without spaces, and
// quoted otherwise.
func plain(s string) string {
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' || c == '"' {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

func (p *tailPrinter) gap(g consumer.Gap) {
	where := fmt.Sprintf("%s/%s epoch %s seq %d-%d", g.Site, g.Gateway, g.Epoch, g.From, g.To)
	switch g.State {
	case consumer.GapOpen:
		fmt.Fprintf(p.errs, "scangw tail: GAP %s: %d missing\n", where, g.Missing)
	case consumer.GapAsked:
		fmt.Fprintf(p.errs, "scangw tail: gap %s: asked the gateway to resend (request %d, %d missing)\n", where, g.Asks, g.Missing)
	case consumer.GapClosed:
		fmt.Fprintf(p.errs, "scangw tail: gap %s closed after %v (%d resend requests)\n", where, time.Since(g.Opened).Round(time.Millisecond), g.Asks)
	case consumer.GapLost:
		fmt.Fprintf(p.errs, "scangw tail: GAP LOST %s: %d missing: %s\n", where, g.Missing, g.Reason)
	}
}

func (p *tailPrinter) epoch(e consumer.Epoch) {
	fmt.Fprintf(p.errs, "scangw tail: %s/%s started epoch %s (was %q): its seq restarts at 1\n", e.Site, e.Gateway, e.Epoch, e.Previous)
}
