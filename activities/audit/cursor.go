package audit

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// A cursor is the sort key of the last row a page returned: its time in unix
// nanoseconds and its id, behind a prefix naming what it pages ("e1" events,
// "r1" runs, version 1) so one list's cursor is refused by the other. It is
// base64url so that callers treat it as opaque and can put it in a URL.
const (
	eventCursor = "e1"
	runCursor   = "r1"
)

func encodeCursor(kind string, nanos int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(nanos, 10) + ":" + id))
}

// decodeCursor returns the cursor's key; an error wraps ErrInvalid.
func decodeCursor(kind, cursor string) (nanos int64, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, "", fmt.Errorf("malformed cursor: %w", ErrInvalid)
	}
	// The id is last and may itself hold ':'.
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 || parts[0] != kind || parts[2] == "" {
		return 0, "", fmt.Errorf("malformed cursor: %w", ErrInvalid)
	}
	nanos, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("malformed cursor: %w", ErrInvalid)
	}
	return nanos, parts[2], nil
}
