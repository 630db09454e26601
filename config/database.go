package config

import "path/filepath"

// Database is where the audit trail is kept: the record of who did what to
// every run, which outlives Temporal's retention of workflow histories.
type Database struct {
	// Driver is "sqlite" (a file, for development and small setups) or
	// "postgres" (production).
	Driver string
	// DSN is the SQLite file's path (relative paths are the config file's
	// directory's) or PostgreSQL's connection URL.
	DSN string
}

// The database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

type rawDatabase struct {
	Driver string `yaml:"driver"`
	DSN    string `yaml:"dsn"`
	DSNEnv string `yaml:"dsn_env"`
}

// database validates the database block. A PostgreSQL URL carries a
// password, so it is a secret: dsn_env names the variable holding it (dsn
// only in development); a SQLite path is not, and may be given as dsn.
func (v *validator) database(rd *rawDatabase, baseDir string) *Database {
	if rd == nil {
		return nil
	}
	d := &Database{Driver: rd.Driver}
	switch rd.Driver {
	case DriverSQLite:
		d.DSN, _ = v.secret("database", "dsn", rd.DSN, rd.DSNEnv)
		if d.DSN != "" && !filepath.IsAbs(d.DSN) {
			d.DSN = filepath.Join(baseDir, d.DSN)
		}
	case DriverPostgres:
		d.DSN, _ = v.secret("database", "dsn", rd.DSN, rd.DSNEnv)
	case "":
		v.add("database.driver", "required: sqlite or postgres")
	default:
		v.add("database.driver", "unknown driver %q (want sqlite or postgres)", rd.Driver)
	}
	return d
}
