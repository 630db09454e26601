package audit

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds the schema, one directory per dialect: the SQL differs
// only in column types, but each database gets SQL it was tested with.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// versionTable is goose's record of the applied migrations, named for this
// store so it cannot meet another goose user's in a shared database.
const versionTable = "audit_schema_version"

// migrationLockID is the PostgreSQL advisory lock that serializes workers
// migrating at the same time (any fixed number; this is "gh-audit" in ASCII).
const migrationLockID = 0x67682d6175646974

// newProvider returns the goose provider of the dialect's migrations.
func newProvider(db *sql.DB, d dialect) (*goose.Provider, error) {
	dir, gd := "migrations/sqlite", goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithTableName(versionTable),
		// Only the embedded SQL, never Go migrations registered globally.
		goose.WithDisableGlobalRegistry(true),
	}
	if d == postgres {
		dir, gd = "migrations/postgres", goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
		if err != nil {
			return nil, fmt.Errorf("audit: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("audit: migrations: %w", err)
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("audit: migrations: %w", err)
	}
	return p, nil
}

// migrateUp applies every migration not yet applied.
func migrateUp(ctx context.Context, db *sql.DB, d dialect) error {
	p, err := newProvider(db, d)
	if err != nil {
		return err
	}
	// Not p.Close: it would close db, which the store keeps.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("audit: migrate up: %w", err)
	}
	return nil
}
