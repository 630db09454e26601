package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	// The database/sql drivers Open connects with: "sqlite" and "pgx".
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// ErrInvalid is wrapped by the errors of arguments the store refuses: an
// unknown driver, an event missing its id, a malformed cursor, a filter that
// names an unknown action.
var ErrInvalid = errors.New("invalid")

// The drivers Open accepts.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// sqlitePragmas make one process's concurrent writers queue rather than
// fail: WAL lets readers run beside the writer, busy_timeout makes a writer
// wait for the lock, and immediate transactions take the write lock at BEGIN
// so two transactions never deadlock upgrading a read lock.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"

// Store is the audit trail in a SQL database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
}

// dialect is what differs between the databases in the SQL the store sends.
type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Open connects and migrates the schema up to the latest version. driver is
// "sqlite" (dsn: a file path, whose parent directory is created) or
// "postgres" (dsn: a libpq or pgx URL or key=value string).
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	if driver == DriverSQLite && dsn != "" {
		// PostgreSQL migrations take an advisory lock; SQLite has none, so
		// processes sharing the file (a worker and a gateway starting
		// together) take turns on a lock file beside it - from the first
		// connection on, since switching a new file to WAL needs the file
		// to itself too.
		if err := os.MkdirAll(filepath.Dir(dsn), 0o750); err != nil {
			return nil, fmt.Errorf("audit: open sqlite %q: %w", dsn, err)
		}
		unlock, err := lockFile(dsn + ".migrate-lock")
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	db, d, err := connect(ctx, driver, dsn)
	if err != nil {
		return nil, err
	}
	if err := migrateUp(ctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, dialect: d}, nil
}

// connect opens and pings the database, without migrating it.
func connect(ctx context.Context, driver, dsn string) (*sql.DB, dialect, error) {
	if dsn == "" {
		return nil, 0, fmt.Errorf("audit: open %s: empty dsn: %w", driver, ErrInvalid)
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch driver {
	case DriverSQLite:
		// The file path goes to the driver as is: a '?' would start the
		// driver's parameters and silently open another file.
		if strings.ContainsRune(dsn, '?') {
			return nil, 0, fmt.Errorf("audit: open sqlite %q: a file path may not contain '?': %w", dsn, ErrInvalid)
		}
		if err := os.MkdirAll(filepath.Dir(dsn), 0o750); err != nil {
			return nil, 0, fmt.Errorf("audit: open sqlite %q: %w", dsn, err)
		}
		d = sqlite
		db, err = sql.Open("sqlite", dsn+"?"+sqlitePragmas)
	case DriverPostgres:
		d = postgres
		db, err = sql.Open("pgx", dsn)
	default:
		return nil, 0, fmt.Errorf("audit: open: driver %q is neither %q nor %q: %w", driver, DriverSQLite, DriverPostgres, ErrInvalid)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("audit: open %s: %w", driver, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("audit: connect to %s: %w", driver, err)
	}
	return db, d, nil
}

// Close closes the database.
// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("audit: ping: %w", err)
	}
	return nil
}

func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

// bind turns the '?' placeholders the store's SQL is written with into the
// dialect's: PostgreSQL numbers them. The store's SQL has no '?' in literals.
func (d dialect) bind(query string) string {
	if d != postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
