package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/inspect"
	"github.com/scangw/scangw/station/rules"
)

// newInspector reads inspect's flags, each taking a FILE, in any order
// before the codes: --rules judges every code with that rule set, as a
// station would (signature not required: this is an operator's tool, not
// a gateway taking orders); --config checks serials against that
// gateway's serial schemes.
func newInspector(args []string) (inspect.Inspector, []string, error) {
	var in inspect.Inspector
	for len(args) > 0 {
		name, file, inline := strings.Cut(args[0], "=")
		if name != "--rules" && name != "--config" {
			break
		}
		args = args[1:]
		if !inline {
			if len(args) == 0 {
				return in, nil, fmt.Errorf("%s needs a FILE", name)
			}
			file, args = args[0], args[1:]
		}
		var err error
		if name == "--rules" {
			in.Judge, err = ruleJudge(file)
		} else {
			in.Schemes, err = configSchemes(file)
		}
		if err != nil {
			return in, nil, err
		}
	}
	codes, err := codeArgs(args)
	return in, codes, err
}

// ruleJudge loads the rule set in file, enveloped or bare.
func ruleJudge(file string) (func(string, []byte) inspect.Judgement, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	engine, err := rules.New(rules.Options{AllowUnsigned: true, Seen: rules.NewMemorySeen(1 << 16)})
	if err != nil {
		return nil, err
	}
	if _, err := engine.Load(data); err != nil {
		// A bare rule set rather than an envelope.
		env, werr := rules.Unsigned(data)
		if werr != nil {
			return nil, fmt.Errorf("--rules %s: %v", file, werr)
		}
		if _, err := engine.Load(env); err != nil {
			return nil, fmt.Errorf("--rules %s: %v", file, err)
		}
	}
	synced := station.KernelClockSynced()
	return func(sym string, data []byte) inspect.Judgement {
		j := engine.Judge(&station.Scan{Symbology: sym, Data: data, Time: time.Now(), Mode: "receive", ClockSynced: synced})
		out := inspect.Judgement{Verdict: j.Verdict, RulesVersion: j.RulesVersion}
		for _, r := range j.Reasons {
			out.Reasons = append(out.Reasons, inspect.Reason{Code: r.Code, Message: r.Message})
		}
		return out
	}, nil
}

// configSchemes are the serial schemes of the config in file, in its
// order. Only its schemes are used: the gateway's ids are left out of
// the check, so a serial another gateway of the fleet made checks too.
func configSchemes(file string) ([]inspect.Scheme, error) {
	cfg, err := configs.Load(file)
	if err != nil {
		return nil, err
	}
	templates, err := schemeTemplates(cfg)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", file, err)
	}
	var out []inspect.Scheme
	for _, s := range cfg.Serials {
		out = append(out, inspect.Scheme{Name: s.Name, Template: templates[s.Name]})
	}
	return out, nil
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
