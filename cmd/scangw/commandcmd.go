package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/scangw/scangw/uplink"
)

const commandUsage = `usage: scangw command sign --key FILE --to SITE/GATEWAY [--ttl 5m] COMMAND.json|-

  Sets "to" and "expires" (now + ttl, at most 15m) on a downlink command,
  signs it with the private key (scangw rules keygen makes one; the
  gateway lists the public key in mqtt.command_keys) and prints it, ready
  for the gateway's cmd topic:

    scangw command sign --key k --to plant-a/dock-01 cmd.json |
      mosquitto_pub -q 1 -t scangw/v1/plant-a/dock-01/cmd -s
`

// commandCmd is `scangw command`; now is the clock "expires" counts from.
func commandCmd(out io.Writer, stdin io.Reader, args []string, now time.Time) error {
	if len(args) == 0 || args[0] != "sign" {
		return badUsage("%s", commandUsage)
	}
	fs := flag.NewFlagSet("command sign", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFile := fs.String("key", "", "file holding the base64 private key")
	to := fs.String("to", "", "the gateway, SITE/GATEWAY")
	ttl := fs.Duration("ttl", 5*time.Minute, "how long the command stays valid")
	if err := fs.Parse(args[1:]); err != nil || *keyFile == "" || fs.NArg() != 1 {
		return badUsage("%s", commandUsage)
	}
	if site, gw, ok := strings.Cut(*to, "/"); !ok || site == "" || gw == "" || strings.Contains(gw, "/") {
		return fmt.Errorf("--to %q: want SITE/GATEWAY, as the gateway's config names them", *to)
	}
	if *ttl <= 0 || *ttl > uplink.MaxCommandValidity {
		return fmt.Errorf("--ttl %v: want more than 0 and at most %v (gateways refuse longer-lived commands)", *ttl, uplink.MaxCommandValidity)
	}
	priv, err := readPrivateKey(*keyFile)
	if err != nil {
		return err
	}
	var payload []byte
	if fs.Arg(0) == "-" {
		payload, err = io.ReadAll(stdin)
	} else {
		payload, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		return err
	}
	signed, err := uplink.AddressCommand(payload, *to, now.Add(*ttl), priv)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	_, err = fmt.Fprintf(out, "%s\n", signed)
	return err
}
