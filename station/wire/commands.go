package wire

// Commands of the downlink (a command's "cmd"). README, "Commands", has
// their arguments and results.
const (
	// CmdPing answers at once; the result carries the instance and uptime.
	CmdPing = "ping"
	// CmdStatus reports the gateway (no "station") or one station.
	CmdStatus = "status"
	// CmdSetMode sets a station's mode: args {"mode": "ship"}.
	CmdSetMode = "set_mode"
	// CmdSetContext sets what a station works on: args {"context":
	// {"order": "PO-1234"}}; an empty object clears it.
	CmdSetContext = "set_context"
	// CmdResyncRules subscribes to the rules topics again, so the broker
	// sends the retained rule sets once more.
	CmdResyncRules = "resync_rules"
	// CmdResend puts delivered events back in the queue from the buffer's
	// audit window: args {"from": SEQ, "to": SEQ, "epoch": "..."}, the
	// last two optional.
	CmdResend = "resend"
	// CmdCloseAggregation closes a station's open pack, build or unpack
	// as a close code would; CmdCancelAggregation drops it.
	CmdCloseAggregation  = "close_aggregation"
	CmdCancelAggregation = "cancel_aggregation"
	// CmdGrantSerials grants a block of a serial scheme's counter: args
	// {"scheme": "unit", "from": 1000, "to": 1999}.
	CmdGrantSerials = "grant_serials"
	// CmdAssignSerial assigns a serial at a station: args {"gtin": ...,
	// "lot": ..., "expiry": "YYMMDD"}, all optional.
	CmdAssignSerial = "assign_serial"
	// CmdReprint prints a station's last assigned serial again, or the
	// one named: args {"serial": "..."} (optional).
	CmdReprint = "reprint"
)

// Commands lists every command.
var Commands = []string{CmdPing, CmdStatus, CmdSetMode, CmdSetContext, CmdResyncRules, CmdResend,
	CmdCloseAggregation, CmdCancelAggregation, CmdGrantSerials, CmdAssignSerial, CmdReprint}

// Error codes of replies (data.error.code). A refused rule set is
// answered with the rule engine's own codes (station/rules, Code).
const (
	CodeTooLarge           = "too_large"           // over mqtt.max_command
	CodeBadJSON            = "bad_json"            // not one JSON object
	CodeUnsupportedVersion = "unsupported_version" // "v" missing or not 1
	CodeMissingID          = "missing_id"          // "id" missing, empty, not a string or over 128 bytes
	CodeBadSignature       = "bad_signature"       // keys configured and no valid "sig"
	CodeWrongTarget        = "wrong_target"        // "to" names another gateway (or is missing when signed)
	CodeExpired            = "expired"             // "expires" passed, too far ahead, malformed (or missing when signed)
	CodeReplayed           = "replayed"            // the id of a command with "expires" already ran before then
	CodeBusy               = "busy"                // too many unexpired commands remembered against replay
	CodeUnknownCommand     = "unknown_command"
	CodeBadArgs            = "bad_args"        // "station" or "args" malformed
	CodeUnknownStation     = "unknown_station" // no station with that id on this gateway
	CodeUnsupported        = "unsupported"     // nothing on this gateway carries it out
	CodeNoAuditWindow      = "no_audit_window" // resend: no audit window is kept
	CodeRetained           = "retained"        // commands must not be retained: it would run on every connect
	CodeTimeout            = "timeout"         // the command did not finish in time
	CodeFailed             = "failed"          // the command failed without a code
)

// Error is a reply's error, and the error a part returns to choose the
// code it is answered with (found with errors.As).
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error returns "<code>: <message>".
func (e *Error) Error() string { return e.Code + ": " + e.Message }
