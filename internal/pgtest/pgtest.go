// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the server named by GATEHOUSE_TEST_POSTGRES (.ci/postgres.sh
// starts Debian's PostgreSQL and prints such a DSN), dropped when the test
// ends, so tests can run again and side by side in one database.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	// The pgx driver, registered as "pgx" for database/sql.
	_ "github.com/jackc/pgx/v5/stdlib"
)

// Env names the variable holding the DSN of a PostgreSQL database the tests
// may create schemas in.
const Env = "GATEHOUSE_TEST_POSTGRES"

// DSN returns a DSN whose search_path is a new schema of the test's own, or
// skips the test, saying how to run it, when Env is empty.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		t.Skipf("%s is empty: set it to a PostgreSQL DSN (bash .ci/postgres.sh starts Debian's PostgreSQL and prints one) to run this test against PostgreSQL", Env)
	}
	return Schema(t, base)
}

// Schema creates a schema of the test's own in the database base names,
// dropped when the test ends, and returns base with its search_path set to
// it.
func Schema(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "gatehouse_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	// pgx passes parameters it does not know to the server as run-time
	// settings.
	if u, err := url.Parse(base); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(base) + " search_path=" + schema
}
