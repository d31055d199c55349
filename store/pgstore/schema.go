package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// migrations are the schema versions in order: migrations[i] takes the
// tables from version i to i+1. {p} stands for the table prefix. A
// released version is never edited; a change is a new entry.
var migrations = [][]string{
	{
		`CREATE TABLE {p}sessions (
			key        bytea       PRIMARY KEY,
			app        bytea       NOT NULL,
			issuer     bytea       NOT NULL,
			subject    bytea       NOT NULL,
			sid        bytea       NOT NULL,
			last_seen  timestamptz NOT NULL,
			expires_at timestamptz NOT NULL,
			data       bytea       NOT NULL
		)`,
		// Sealed data does not compress: a row too long for the page moves
		// it to the TOAST table without trying. (MAIN, keeping it in the
		// row, made PostgreSQL move the small indexed columns out instead,
		// and measured larger and slower.)
		`ALTER TABLE {p}sessions ALTER COLUMN data SET STORAGE EXTERNAL`,
		`CREATE INDEX {p}sessions_issuer_sid ON {p}sessions (issuer, sid)`,
		`CREATE INDEX {p}sessions_issuer_subject ON {p}sessions (issuer, subject)`,
		`CREATE INDEX {p}sessions_expires_at ON {p}sessions (expires_at)`,
		`CREATE TABLE {p}once (
			key        bytea       PRIMARY KEY,
			expires_at timestamptz NOT NULL
		)`,
		`CREATE INDEX {p}once_expires_at ON {p}once (expires_at)`,
	},
}

// migrate brings the tables to the newest version in one transaction,
// under an advisory lock: a second gateway starting at the same moment
// waits, then finds the work done. A database migrated by a newer
// Gatehouse is refused rather than used with a schema this code does not
// know.
func (s *pgStore) migrate(ctx context.Context) error {
	// Waiting for another gateway's migration may take longer than one
	// call.
	ctx, cancel := context.WithTimeout(ctx, 5*s.timeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Advisory locks are per database: name them by schema and prefix.
	var schema *string
	if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if schema == nil {
		return errors.New("pgstore: migrate: no schema of the search_path exists")
	}
	s.ns = *schema + "." + s.prefix
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID("migrate", s.ns, "")); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.schema+
		" (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	var version int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.schema).Scan(&version); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("pgstore: schema version %d of tables %q* is newer than this Gatehouse knows (%d): run the newer version", version, s.prefix, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(stmt, "{p}", s.prefix)); err != nil {
				return fmt.Errorf("pgstore: migrate to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+s.schema+" (version) VALUES ($1)", v+1); err != nil {
			return fmt.Errorf("pgstore: migrate to version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}
