package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/wire"
)

const serialUsage = `usage: scangw serial next --station ID [--gtin G] [--lot L] [--expiry YYMMDD] [--config FILE]
       scangw serial reprint --station ID [--serial S] [--config FILE]

Asks the running gateway (its http.listen, with http.token or
http.token_file from FILE, default /etc/scangw/scangw.yaml) to assign the
station's next serial and print its label, for a bench without a scanner,
or to print a serial again (the station's last, or S), marked as a
reprint. The serial is stored before the label prints; the assigned event
is printed as JSON. Exit 1 when the gateway refuses (no scheme, a used-up
block, a product the scheme needs missing) or cannot be reached.
`

const labelUsage = `usage: scangw label preview [--template FILE] --serial S [--gtin G] [--lot L]
                            [--expiry YYMMDD] [--product NAME] [--reprint] [-o FILE.png]

Renders the label's GS1 DataMatrix (its ^BX field) as a PNG, so a
template can be checked without a printer: FILE is a ZPL template (default
the built-in label), the PNG goes to -o (default label.png). The element
string it carries is printed, as scangw inspect reads it.
`

// serialCmd is ` + "`scangw serial`" + `.
func serialCmd(ctx context.Context, stdout io.Writer, args []string) error {
	if len(args) == 0 || (args[0] != "next" && args[0] != "reprint") {
		return badUsage("want next or reprint\n\n%s", serialUsage)
	}
	fs := flag.NewFlagSet("serial", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", defaultConfigPath, "the gateway's config")
	st := fs.String("station", "", "station id")
	var p station.Product
	fs.StringVar(&p.GTIN, "gtin", "", "GTIN of the unit")
	fs.StringVar(&p.Lot, "lot", "", "lot")
	fs.StringVar(&p.Expiry, "expiry", "", "expiry YYMMDD")
	serial := fs.String("serial", "", "reprint: the serial (default the station's last)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *st == "" {
		return badUsage("%v\n\n%s", cmpErr(err, "--station is required"), serialUsage)
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		return err
	}
	if cfg.HTTP.Listen == "" {
		return fmt.Errorf("%s: http.listen is off: the gateway takes no requests", *path)
	}
	token, err := httpToken(cfg.HTTP)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(p)
	url := "http://" + dialAddr(cfg.HTTP.Listen) + "/serial/next?station=" + *st
	if args[0] == "reprint" {
		body, _ = json.Marshal(map[string]string{"serial": *serial})
		url = "http://" + dialAddr(cfg.HTTP.Listen) + "/serial/reprint?station=" + *st
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the gateway at %s: %w", cfg.HTTP.Listen, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the gateway refused: %s", strings.TrimSpace(string(out)))
	}
	_, err = stdout.Write(out)
	return err
}

func cmpErr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// dialAddr is where a client on this machine reaches a listen address:
// an unspecified host (":9754", "0.0.0.0:9754") is the loopback.
func dialAddr(listen string) string {
	switch {
	case strings.HasPrefix(listen, ":"):
		return "127.0.0.1" + listen
	case strings.HasPrefix(listen, "0.0.0.0:"):
		return "127.0.0.1" + strings.TrimPrefix(listen, "0.0.0.0")
	case strings.HasPrefix(listen, "[::]:"):
		return "[::1]" + strings.TrimPrefix(listen, "[::]")
	}
	return listen
}

// serveSerial is POST /serial/next and /serial/reprint: what scangw
// serial asks of the running gateway.
func (p *statusPage) serveSerial(reprint bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// A JSON body only: a cross-site form cannot send one without a
		// preflight, so a logged-in browser cannot be made to assign.
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			jsonError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
			return
		}
		args, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		var res wire.AssignedData
		st, err := p.stations.Station(r.URL.Query().Get("station"))
		if err == nil {
			var a struct {
				station.Product
				Serial string `json:"serial"`
			}
			if err = json.Unmarshal(args, &a); err != nil {
				err = &wire.Error{Code: wire.CodeBadArgs, Message: err.Error()}
			} else if reprint {
				res, err = st.Reprint(r.Context(), wire.TriggerLocal, a.Serial)
			} else {
				res, err = st.AssignSerial(r.Context(), wire.TriggerLocal, a.Product)
			}
		}
		if err != nil {
			code := http.StatusInternalServerError
			var we *wire.Error
			if errors.As(err, &we) {
				code = http.StatusBadRequest
				if we.Code == wire.CodeUnknownStation {
					code = http.StatusNotFound
				}
			}
			jsonError(w, code, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	}
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// labelCmd is ` + "`scangw label preview`" + `.
func labelCmd(stdout io.Writer, args []string) error {
	if len(args) == 0 || args[0] != "preview" {
		return badUsage("want preview\n\n%s", labelUsage)
	}
	fs := flag.NewFlagSet("label", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tpl := fs.String("template", "", "ZPL template file (default the built-in label)")
	out := fs.String("o", "label.png", "PNG file to write")
	var v label.Values
	fs.StringVar(&v.Serial, "serial", "", "serial")
	fs.StringVar(&v.GTIN, "gtin", "", "GTIN")
	fs.StringVar(&v.Lot, "lot", "", "lot")
	fs.StringVar(&v.Expiry, "expiry", "", "expiry YYMMDD")
	fs.StringVar(&v.Product, "product", "", "product name")
	fs.BoolVar(&v.Reprint, "reprint", false, "mark it a reprint")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || v.Serial == "" {
		return badUsage("%v\n\n%s", cmpErr(err, "--serial is required"), labelUsage)
	}
	src := label.DefaultTemplate
	if *tpl != "" {
		b, err := os.ReadFile(*tpl)
		if err != nil {
			return err
		}
		src = string(b)
	}
	t, err := label.Parse(src)
	if err != nil {
		return fmt.Errorf("%s: %w", cmp.Or(*tpl, "the built-in label"), err)
	}
	png, err := label.Preview(t, v)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, png, 0o644); err != nil {
		return err
	}
	job, err := t.Render(v)
	if err != nil {
		return err
	}
	parsed, err := label.ParseJob(job)
	if err != nil {
		return err
	}
	for _, f := range parsed.DataMatrix() {
		fmt.Fprintf(stdout, "%s\t%s\n", *out, strings.ReplaceAll(f.Data, "\x1d", `\x1d`))
	}
	return nil
}
