package plan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Store keeps plan files content-addressed on disk: the file name is the
// SHA-256 of its bytes, so a stored plan can never be swapped for another
// under the same name, and storing the same plan twice is harmless.
type Store struct {
	dir string
}

// NewStore opens (creating if needed) a store in dir.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create plan store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Path is where the plan with the given hash is (or would be) stored.
func (s *Store) Path(sha string) string { return filepath.Join(s.dir, sha+".json") }

// Put stores data and returns its hash. The file appears atomically (written
// aside, then renamed), so a reader never sees half a plan.
func (s *Store) Put(data []byte) (string, error) {
	sha := Hash(data)
	if _, err := os.Stat(s.Path(sha)); err == nil {
		return sha, nil
	}
	tmp, err := os.CreateTemp(s.dir, ".plan-*")
	if err != nil {
		return "", fmt.Errorf("store plan: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store plan: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store plan: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("store plan: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.Path(sha)); err != nil {
		return "", fmt.Errorf("store plan: %w", err)
	}
	return sha, nil
}

// ErrNotFound is returned by Get when no plan has the hash.
var ErrNotFound = errors.New("plan not found")

// Get returns the plan with the given hash after checking that the bytes on
// disk still hash to it.
func (s *Store) Get(sha string) ([]byte, error) {
	if !hashPattern.MatchString(sha) {
		return nil, fmt.Errorf("get plan: malformed hash %q", sha)
	}
	data, err := os.ReadFile(s.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("get plan %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get plan %s: %w", sha, err)
	}
	if got := Hash(data); got != sha {
		return nil, fmt.Errorf("get plan %s: stored bytes hash to %s: the file was altered", sha, got)
	}
	return data, nil
}
