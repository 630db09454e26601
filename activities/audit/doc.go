// Package audit stores Gatehouse's audit trail in SQL, so that who approved
// what outlives Temporal's history retention. SQLite (pure Go) serves a
// single-node install; PostgreSQL is the production database. Both hold the
// same schema, migrated by goose from SQL embedded in the binary.
//
// Every read takes the workspaces the caller may see: an empty list reads
// nothing, so a caller that forgets to authorize gets an empty answer, never
// the whole trail.
package audit
