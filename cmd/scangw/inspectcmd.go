package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/inspect"
	"github.com/scangw/scangw/station/rules"
)

// newInspector reads inspect's flags: --rules FILE judges every code with
// that rule set, as a station would (signature not required: this is an
// operator's tool, not a gateway taking orders).
func newInspector(args []string) (inspect.Inspector, []string, error) {
	var in inspect.Inspector
	if len(args) < 2 || args[0] != "--rules" {
		codes, err := codeArgs(args)
		return in, codes, err
	}
	codes, err := codeArgs(args[2:])
	if err != nil {
		return in, nil, err
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		return in, nil, err
	}
	engine, err := rules.New(rules.Options{AllowUnsigned: true, Seen: rules.NewMemorySeen(1 << 16)})
	if err != nil {
		return in, nil, err
	}
	if _, err := engine.Load(data); err != nil {
		// A bare rule set rather than an envelope.
		env, werr := rules.Unsigned(data)
		if werr != nil {
			return in, nil, fmt.Errorf("--rules %s: %v", args[1], werr)
		}
		if _, err := engine.Load(env); err != nil {
			return in, nil, fmt.Errorf("--rules %s: %v", args[1], err)
		}
	}
	synced := station.KernelClockSynced()
	in.Judge = func(sym string, data []byte) inspect.Judgement {
		j := engine.Judge(&station.Scan{Symbology: sym, Data: data, Time: time.Now(), Mode: "receive", ClockSynced: synced})
		out := inspect.Judgement{Verdict: j.Verdict, RulesVersion: j.RulesVersion}
		for _, r := range j.Reasons {
			out.Reasons = append(out.Reasons, inspect.Reason{Code: r.Code, Message: r.Message})
		}
		return out
	}
	return in, codes, nil
}

// codeArgs are the codes among inspect's arguments. A flag inspect does
// not know is refused; a code that starts with "-" goes after "--".
func codeArgs(args []string) ([]string, error) {
	for i, a := range args {
		if a == "--" {
			return slices.Concat(args[:i], args[i+1:]), nil
		}
		if len(a) > 1 && a[0] == '-' {
			return nil, fmt.Errorf("unknown flag %s (a code that starts with - goes after --)", a)
		}
	}
	return args, nil
}
