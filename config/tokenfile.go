package config

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TokenPrefix starts every token `gatehouse token new` makes, so that a
// leaked one is recognisable (secret scanners, logs) as a Gatehouse token.
const TokenPrefix = "gh_"

// tokenBytes of randomness: 256 bits, beyond guessing.
const tokenBytes = 32

// NewToken returns a fresh random token and its token_sha256, the only form
// a config should keep.
func NewToken() (token, sha256Hex string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token), nil
}

// TokenDigest is the token_sha256 of token.
func TokenDigest(token string) string { return hashToken(token) }

// ParseExpiry reads a token's expiry as `gatehouse token` takes it: a
// number of days ("90d"), a Go duration ("720h"), or an RFC 3339 time. The
// result must be after now.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return time.Time{}, fmt.Errorf("expiry %q: want a positive number of days, like 90d", s)
		}
		t = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(s); err == nil {
		t = now.Add(d)
	} else if t, err = time.Parse(time.RFC3339, s); err != nil {
		return time.Time{}, fmt.Errorf("expiry %q: want days (90d), a duration (720h) or an RFC 3339 time (2027-03-01T00:00:00Z)", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("expiry %q: %s is not in the future", s, t.UTC().Format(time.RFC3339))
	}
	// Whole seconds, in UTC: what the file holds and reads back.
	return t.UTC().Truncate(time.Second), nil
}

// ErrUserHasToken is SetUserToken refusing to replace a token without
// replace: a second `token new` for a user is more often a slip (the wrong
// user, a re-run script) than a wish to lock out the token in use.
var ErrUserHasToken = errors.New("user already has a token")

// SetUserToken writes the token_sha256 (and token_expires, or none when
// expires is zero) of the user whose id is user into the config file at
// path, through YAML's node tree so that comments, key order and everything
// else stay as written. A plain `token:` the user had is removed. Without
// replace, a user who already has a token is refused with ErrUserHasToken;
// with it (rotate), a user without one is refused too. The file is replaced
// atomically (a temporary file in the same directory, then a rename), so a
// process reading it sees the old or the new config, never half of one.
func SetUserToken(path, user, sha256Hex string, expires time.Time, replace bool) error {
	if !sha256Pattern.MatchString(sha256Hex) {
		return fmt.Errorf("token_sha256 %q: must be 64 hexadecimal characters", sha256Hex)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: expected a mapping at the top", path)
	}
	users := mappingValue(doc.Content[0], "users")
	if users == nil || users.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: no users list", path)
	}
	var entry *yaml.Node
	for _, u := range users.Content {
		if id := mappingValue(u, "id"); u.Kind == yaml.MappingNode && id != nil && id.Value == user {
			if entry != nil {
				return fmt.Errorf("%s: user %q is listed twice", path, user)
			}
			entry = u
		}
	}
	if entry == nil {
		return fmt.Errorf("%s: no user %q", path, user)
	}
	has := mappingValue(entry, "token") != nil || mappingValue(entry, "token_sha256") != nil
	switch {
	case has && !replace:
		return fmt.Errorf("%s: user %q: %w (gatehouse token rotate replaces it)", path, user, ErrUserHasToken)
	case !has && replace:
		return fmt.Errorf("%s: user %q has no token to rotate (gatehouse token new gives one)", path, user)
	}
	// The text, edited at the lines of the keys concerned, keeps every
	// byte of the rest (alignment, blank lines, quoting). The node tree,
	// edited alike, is the check of that edit, and the fallback where the
	// user's entry is not a plain block mapping.
	edited, textOK := editUserLines(data, entry, sha256Hex, expires)
	deleteKey(entry, "token")
	setScalar(entry, "token_sha256", sha256Hex)
	if expires.IsZero() {
		deleteKey(entry, "token_expires")
	} else {
		setScalar(entry, "token_expires", expires.UTC().Format(time.RFC3339))
	}
	var want any
	if err := doc.Decode(&want); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if textOK {
		var got any
		if err := yaml.Unmarshal(edited, &got); err == nil && reflect.DeepEqual(got, want) {
			return replaceFile(path, edited)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(indentOf(data))
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return replaceFile(path, buf.Bytes())
}

// editUserLines rewrites the token lines of the user entry (a block
// mapping, as read from data, before any change to it) in the text: the
// token or token_sha256 line becomes the new token_sha256, token_expires is
// replaced, added after it or removed. ok is false where that cannot be
// done line by line (a flow mapping, a value on its own line).
func editUserLines(data []byte, entry *yaml.Node, sha256Hex string, expires time.Time) (_ []byte, ok bool) {
	if entry.Style&yaml.FlowStyle != 0 || len(entry.Content) < 2 {
		return nil, false
	}
	lines := strings.SplitAfter(string(data), "\n")
	indent := strings.Repeat(" ", entry.Content[0].Column-1)
	// lineOf is the 0-based line of key's entry, -1 when absent, -2 when
	// its value does not sit on the key's line alone.
	lineOf := func(key string) int {
		for i := 0; i+1 < len(entry.Content); i += 2 {
			k, v := entry.Content[i], entry.Content[i+1]
			if k.Value != key {
				continue
			}
			if v.Kind != yaml.ScalarNode || v.Line != k.Line || v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
				k.Column-1 != len(indent) || k.Line > len(lines) {
				return -2
			}
			return k.Line - 1
		}
		return -1
	}
	eol := func(i int) string {
		if strings.HasSuffix(lines[i], "\r\n") {
			return "\r\n"
		}
		return "\n"
	}
	tokenAt, shaAt, expAt, idAt := lineOf("token"), lineOf("token_sha256"), lineOf("token_expires"), lineOf("id")
	if tokenAt == -2 || shaAt == -2 || expAt == -2 || idAt < 0 || (tokenAt >= 0 && shaAt >= 0) {
		return nil, false
	}
	at := max(tokenAt, shaAt)
	shaLine := indent + "token_sha256: " + sha256Hex
	if at >= 0 {
		// A comment on the old token's line stays on the new one's.
		shaLine += trailingComment(lines[at], entry, "token", "token_sha256")
	}
	// Before a change to lines, so that the indexes above stay right.
	var expLine string
	if !expires.IsZero() {
		expLine = indent + "token_expires: \"" + expires.UTC().Format(time.RFC3339) + "\""
	}
	switch {
	case expAt >= 0 && expLine != "":
		lines[expAt] = expLine + eol(expAt)
	case expAt >= 0:
		lines[expAt] = ""
	}
	if at >= 0 {
		nl := eol(at)
		lines[at] = shaLine + nl
		if expAt < 0 && expLine != "" {
			lines[at] += expLine + nl
		}
	} else {
		nl := eol(idAt)
		if !strings.HasSuffix(lines[idAt], "\n") {
			lines[idAt] += nl // the entry is the file's last line
		}
		lines[idAt] += shaLine + nl
		if expAt < 0 && expLine != "" {
			lines[idAt] += expLine + nl
		}
	}
	return []byte(strings.Join(lines, "")), true
}

// trailingComment is " # ..." when line, that of one of keys in entry,
// ends in a comment, else "". yaml.v3 attaches such a comment to the key,
// the value or a node around them depending on what follows, so the text is
// what tells.
func trailingComment(line string, entry *yaml.Node, keys ...string) string {
	for i := 0; i+1 < len(entry.Content); i += 2 {
		k, v := entry.Content[i], entry.Content[i+1]
		if !slices.Contains(keys, k.Value) || v.Style != 0 {
			continue // a quoted value's length in the text is not len(Value)
		}
		end := v.Column - 1 + len(v.Value)
		if end > len(line) || line[v.Column-1:end] != v.Value {
			return ""
		}
		if rest := strings.TrimSpace(line[end:]); strings.HasPrefix(rest, "#") {
			return " " + rest
		}
	}
	return ""
}

// mappingValue is the value of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setScalar sets key to a plain string in mapping m: in place when the key
// is there (keeping its comments), else appended.
func setScalar(m *yaml.Node, key, value string) {
	if v := mappingValue(m, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Style, v.Content = yaml.ScalarNode, "!!str", value, 0, nil
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// deleteKey removes key from mapping m. A comment that was on the removed
// line is kept on the key before it, rather than lost with the secret.
func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		k, v := m.Content[i], m.Content[i+1]
		if c := strings.TrimSpace(k.HeadComment + v.LineComment + k.LineComment); c != "" && i >= 2 {
			prev := m.Content[i-1]
			if prev.LineComment == "" {
				prev.LineComment = c
			}
		}
		m.Content = append(m.Content[:i], m.Content[i+2:]...)
		return
	}
}

// indentOf guesses the file's indentation (2 unless the first indented
// line says otherwise), so that a rewrite does not reindent every line.
func indentOf(data []byte) int {
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if n := len(line) - len(trimmed); n > 0 && trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			if n >= 2 && n <= 8 {
				return n
			}
			break
		}
	}
	return 2
}

// replaceFile writes data to path atomically, keeping path's permissions.
func replaceFile(path string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
