package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/config"
)

// DatabaseEnv names the variable that gives the audit trail's database
// when the config has no database block: a PostgreSQL URL
// (postgres://user:password@host:5432/db), or sqlite: and a file's path. The
// compose stack sets it, so the example config serves dev and compose alike.
const DatabaseEnv = "GATEHOUSE_DATABASE_URL"

// databaseOf says where the audit trail is kept: the config's database
// block, else DatabaseEnv, else (in dev, devDataDir set) a SQLite file in the
// data dir. Nil means none: the process keeps no trail.
func databaseOf(cfg *config.Config, getenv func(string) string, devDataDir string) (*config.Database, error) {
	if cfg.Database != nil {
		return cfg.Database, nil
	}
	if url := getenv(DatabaseEnv); url != "" {
		switch {
		case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
			return &config.Database{Driver: config.DriverPostgres, DSN: url}, nil
		case strings.HasPrefix(url, "sqlite:"):
			return &config.Database{Driver: config.DriverSQLite, DSN: strings.TrimPrefix(url, "sqlite:")}, nil
		}
		return nil, fmt.Errorf("%s: want postgres://… or sqlite:PATH", DatabaseEnv)
	}
	if devDataDir != "" {
		return &config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(devDataDir, "audit.db")}, nil
	}
	return nil, nil
}

// openAudit opens (and migrates) the audit trail's database, if the process
// has one.
func (p *parts) openAudit(ctx context.Context, devDataDir string) error {
	db, err := databaseOf(p.config, os.Getenv, devDataDir)
	if err != nil {
		return err
	}
	if db == nil {
		p.opts.Logger.Warn("no database configured: this process keeps no audit trail (set the config's database block or " + DatabaseEnv + ")")
		return nil
	}
	store, err := audit.Open(ctx, db.Driver, db.DSN)
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	p.audit = store
	p.opts.Logger.Info("audit trail open", zap.String("driver", db.Driver))
	return nil
}

// closeAudit closes the audit trail's database, if open.
func (p *parts) closeAudit() error {
	if p.audit == nil {
		return nil
	}
	return p.audit.Close()
}
