package rules

import (
	"errors"
	"strconv"
)

// Refusal codes. They name why a rule set was refused in logs, metrics
// and downlink replies; add new ones, never rename.
const (
	// CodeTooLarge: the envelope is larger than the configured cap.
	CodeTooLarge = "too_large"
	// CodeBadJSON: the envelope or the payload is not the JSON expected
	// (syntax, a field of the envelope, base64).
	CodeBadJSON = "bad_json"
	// CodeBadSchema: the payload's "schema" is missing or not one this
	// gateway knows.
	CodeBadSchema = "bad_schema"
	// CodeUnsigned: the envelope carries no signature although keys are
	// configured, or no keys are configured and unsigned sets are not
	// allowed.
	CodeUnsigned = "unsigned"
	// CodeBadSignature: the signature does not verify against any
	// configured key (forged, tampered, or signed with an unknown key).
	CodeBadSignature = "bad_signature"
	// CodeNotNewer: the set's version is not newer than the one in use for
	// its scope. A retained MQTT message redelivered on reconnect ends here;
	// that is expected, not an attack.
	CodeNotNewer = "not_newer"
	// CodeWrongTarget: the set names another site or gateway.
	CodeWrongTarget = "wrong_target"
	// CodeBadRule: a rule is invalid; Path says which.
	CodeBadRule = "bad_rule"
)

// Error is why a rule set was refused. Path names the offending field for
// CodeBadRule ("products[3].serial.pattern"), and is "" otherwise.
type Error struct {
	Code string
	Path string
	Msg  string
	Err  error // the underlying cause, if any
}

func (e *Error) Error() string {
	s := "rules: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Msg + " [" + e.Code + "]"
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every bad rule found in one set (up to maxProblems), so an
// operator sees them all at once; errors.As finds the first *Error.
type Errors []*Error

// maxProblems bounds Errors: a million broken deny entries must not make a
// million errors.
const maxProblems = 20

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "rules: no error"
	case 1:
		return es[0].Error()
	}
	return es[0].Error() + " (and " + strconv.Itoa(len(es)-1) + " more)"
}

// Unwrap lets errors.As and errors.Is see each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Code returns the refusal code of err (its first *Error), or "" when err
// is nil or not from this package. It is meant for metric labels: the set
// of codes is bounded.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func refuse(code, msg string, err error) *Error {
	return &Error{Code: code, Msg: msg, Err: err}
}
