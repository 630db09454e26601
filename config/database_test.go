package config

import (
	"path/filepath"
	"testing"
)

func TestParseDatabase(t *testing.T) {
	getenv := func(name string) string {
		return map[string]string{"GATEHOUSE_TEST_DSN": "postgres://gh:pw@db:5432/gatehouse"}[name]
	}
	c, err := parse([]byte("database: {driver: postgres, dsn_env: GATEHOUSE_TEST_DSN}\n"+ws("")), "", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database == nil || c.Database.Driver != DriverPostgres || c.Database.DSN != "postgres://gh:pw@db:5432/gatehouse" {
		t.Errorf("database %+v; want postgres from the environment", c.Database)
	}
	dir := t.TempDir()
	c, err = parse([]byte("database: {driver: sqlite, dsn: data/audit.db}\n"+ws("")), dir, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data/audit.db"); c.Database.DSN != want {
		t.Errorf("sqlite path %q; want %q, relative to the config's directory", c.Database.DSN, want)
	}
	if c := mustParse(t, ws("")); c.Database != nil {
		t.Errorf("no database block gives %+v; want nil", c.Database)
	}
}

func TestParseDatabaseRefusesWhatItCannotOpen(t *testing.T) {
	for src, want := range map[string]string{
		"database: {dsn: x.db}\n":                                       "database.driver",
		"database: {driver: mysql, dsn: x}\n":                           "database.driver",
		"database: {driver: postgres}\n":                                "database",
		"database: {driver: postgres, dsn_env: GATEHOUSE_TEST_EMPTY}\n": "database.dsn_env",
		"database: {driver: sqlite, dsn: a.db, dsn_env: X}\n":           "database",
		"database: {driver: sqlite, path: a.db}\n":                      "database.path",
	} {
		wantProblemAt(t, src, want)
	}
}
