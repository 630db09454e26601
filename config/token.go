package config

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Why a token was refused. The gateway tells an expired token apart so that
// its owner knows to rotate it rather than to look for a typo.
var (
	ErrTokenInvalid = errors.New("invalid token")
	ErrTokenExpired = errors.New("token expired")
)

// TokenExpiryWarning is how far ahead `config validate` warns that a token
// expires.
const TokenExpiryWarning = 14 * 24 * time.Hour

// Authenticate returns the user whose token is token, refusing an expired
// one. It compares digests in constant time and visits every user whatever
// matches, so response timing tells nothing about tokens. An empty token
// never matches.
func (c *Config) Authenticate(token string) (User, bool) {
	u, err := c.AuthenticateAt(token, time.Now())
	return u, err == nil
}

// AuthenticateAt is Authenticate at the time now, saying why it refused:
// ErrTokenInvalid or ErrTokenExpired. A token whose expiry is now or past
// is refused (fail closed at the boundary).
func (c *Config) AuthenticateAt(token string, now time.Time) (User, error) {
	if token == "" {
		return User{}, ErrTokenInvalid
	}
	want := []byte(hashToken(token))
	var (
		found User
		ok    bool
	)
	for _, u := range c.Users {
		if u.TokenSHA256 == "" {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(u.TokenSHA256), want) == 1 && !ok {
			found, ok = u, true
		}
	}
	switch {
	case !ok:
		return User{}, ErrTokenInvalid
	case !found.TokenExpires.IsZero() && !now.Before(found.TokenExpires):
		return User{}, ErrTokenExpired
	}
	return found, nil
}

// TokenWarnings lists, as of now, the users whose token has expired or
// expires within TokenExpiryWarning, and those with a plain `token:`, which
// anyone who can read the file can use (fine for a dev config, not for a
// deployment). They are apart from Warnings because they change with time
// and with nothing in the file.
func (c *Config) TokenWarnings(now time.Time) []Problem {
	var out []Problem
	for i, u := range c.Users {
		p := indexPath("users", i)
		if u.Token != "" {
			out = append(out, Problem{Path: p + ".token", Message: "a plain token is readable by anyone who can read this file: " +
				"for development only; use token_sha256 (gatehouse token new --config FILE --user " + string(u.ID) + ")"})
		}
		if u.TokenExpires.IsZero() {
			continue
		}
		switch left := u.TokenExpires.Sub(now); {
		case left <= 0:
			out = append(out, Problem{Path: p + ".token_expires", Message: fmt.Sprintf("expired %s: the token is refused; "+
				"gatehouse token rotate --config FILE --user %s", u.TokenExpires.UTC().Format(time.RFC3339), u.ID)})
		case left < TokenExpiryWarning:
			out = append(out, Problem{Path: p + ".token_expires", Message: fmt.Sprintf("expires %s, in %s: "+
				"gatehouse token rotate --config FILE --user %s", u.TokenExpires.UTC().Format(time.RFC3339), left.Round(time.Hour), u.ID)})
		}
	}
	return out
}
