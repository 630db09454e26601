-- The audit trail: one row per event, keyed by the event's id so that an
-- activity retry writing it again stores nothing new. Times are UTC unix
-- nanoseconds: exact, and they sort as numbers.

-- +goose Up
CREATE TABLE events (
	id               TEXT    NOT NULL PRIMARY KEY,
	at               BIGINT  NOT NULL,
	actor_id         TEXT    NOT NULL,
	actor_email      TEXT    NOT NULL DEFAULT '',
	actor_source     TEXT    NOT NULL DEFAULT '',
	channel          TEXT    NOT NULL DEFAULT '',
	action           TEXT    NOT NULL,
	workspace        TEXT    NOT NULL,
	environment      TEXT    NOT NULL DEFAULT '',
	run_id           TEXT    NOT NULL,
	-- reason_ids is a JSON array of strings, '' when there are none.
	reason_ids       TEXT    NOT NULL DEFAULT '',
	plan_sha256      TEXT    NOT NULL DEFAULT '',
	adds             INTEGER NOT NULL DEFAULT 0,
	changes          INTEGER NOT NULL DEFAULT 0,
	destroys         INTEGER NOT NULL DEFAULT 0,
	replaces         INTEGER NOT NULL DEFAULT 0,
	forgets          INTEGER NOT NULL DEFAULT 0,
	imports          INTEGER NOT NULL DEFAULT 0,
	moves            INTEGER NOT NULL DEFAULT 0,
	invocations      INTEGER NOT NULL DEFAULT 0,
	resource_count   INTEGER NOT NULL DEFAULT 0,
	changes_digest   TEXT    NOT NULL DEFAULT '',
	comment          TEXT    NOT NULL DEFAULT '',
	response_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
	config_version   TEXT    NOT NULL DEFAULT '',
	workflow_version TEXT    NOT NULL DEFAULT '',
	status_before    TEXT    NOT NULL DEFAULT '',
	status_after     TEXT    NOT NULL DEFAULT '',
	detail           TEXT    NOT NULL DEFAULT '',
	requested_by     TEXT    NOT NULL DEFAULT ''
);
-- Every query pages newest first by (at, id).
CREATE INDEX events_at_id ON events (at, id);

-- +goose Down
DROP TABLE events;
