package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/scangw/scangw/station/rules"
)

const rulesUsage = `usage: scangw rules COMMAND

  keygen                        a new Ed25519 signing key: the private key (keep it
                                off the gateways) and the public key for rules.keys
  sign --key FILE RULESET.json  check a rule set and print its signed envelope,
                                ready for rules.file or the retained rules topic
  check RULESET.json            check a rule set (schema, every rule) and say why not
`

func rulesCmd(out io.Writer, args []string) error {
	if len(args) == 0 {
		return badUsage("%s", rulesUsage)
	}
	switch args[0] {
	case "keygen":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "private: %s\npublic:  %s\n", base64.StdEncoding.EncodeToString(priv.Seed()), rules.KeyID(pub))
		return nil
	case "sign":
		fs := flag.NewFlagSet("rules sign", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		keyFile := fs.String("key", "", "file holding the base64 private key")
		if err := fs.Parse(args[1:]); err != nil || *keyFile == "" || fs.NArg() != 1 {
			return badUsage("%s", rulesUsage)
		}
		priv, err := readPrivateKey(*keyFile)
		if err != nil {
			return err
		}
		payload, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		env, err := rules.Sign(payload, priv)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", env)
		return err
	case "check":
		if len(args) != 2 {
			return badUsage("%s", rulesUsage)
		}
		payload, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		set, err := rules.Check(payload)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: ok (%s)\n", args[1], set.Name())
		return nil
	}
	return badUsage("unknown rules command %q\n\n%s", args[0], rulesUsage)
}

// readPrivateKey reads a signing key as `scangw rules keygen` prints it.
func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return rules.ParsePrivateKey(strings.TrimSpace(string(text)))
}
