package approval

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error so that every adapter maps it the same way (the
// gateway to an HTTP status, the workflow to an Update rejection).
type Code string

// The error codes.
const (
	// CodeInvalid: the request itself is malformed or misses a required field.
	CodeInvalid Code = "invalid"
	// CodeForbidden: the actor may not make this decision.
	CodeForbidden Code = "forbidden"
	// CodeConflict: the run is not awaiting this decision.
	CodeConflict Code = "conflict"
	// CodeNotFound: the run or workspace does not exist.
	CodeNotFound Code = "not_found"
	// CodeRateLimited: asked again too soon; RetryAfter says when to.
	CodeRateLimited Code = "rate_limited"
	// CodeUnprocessable: the request is well formed but reuses an
	// idempotency key that already stands for a different request.
	CodeUnprocessable Code = "unprocessable"
)

// Error is a domain error with a code and a message fit for the user.
type Error struct {
	Code       Code
	Message    string
	RetryAfter time.Duration // with CodeRateLimited
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or "" if
// there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
