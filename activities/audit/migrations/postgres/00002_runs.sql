-- One row per run, so the run list survives Temporal's retention and pages
-- past its visibility limit. Write keeps it current; this migration fills it
-- from the events already stored, the newest event of each run winning.
-- The indexes serve the filters the gateway offers.

-- +goose Up
CREATE TABLE runs (
	run_id        TEXT    NOT NULL PRIMARY KEY,
	workspace     TEXT    NOT NULL,
	environment   TEXT    NOT NULL DEFAULT '',
	status        TEXT    NOT NULL DEFAULT '',
	requested_by  TEXT    NOT NULL DEFAULT '',
	plan_sha256   TEXT    NOT NULL DEFAULT '',
	adds          INTEGER NOT NULL DEFAULT 0,
	changes       INTEGER NOT NULL DEFAULT 0,
	destroys      INTEGER NOT NULL DEFAULT 0,
	replaces      INTEGER NOT NULL DEFAULT 0,
	created_at    BIGINT  NOT NULL,
	updated_at    BIGINT  NOT NULL,
	last_action   TEXT    NOT NULL DEFAULT '',
	-- last_event_id breaks ties between events at the same instant.
	last_event_id TEXT    NOT NULL
);
CREATE INDEX runs_created ON runs (created_at, run_id);
CREATE INDEX runs_workspace_created ON runs (workspace, created_at, run_id);

CREATE INDEX events_workspace_at_id ON events (workspace, at, id);
CREATE INDEX events_run_at_id ON events (run_id, at, id);
CREATE INDEX events_actor_at_id ON events (actor_id, at, id);

INSERT INTO runs (run_id, workspace, environment, status, requested_by, plan_sha256, adds, changes, destroys, replaces,
	created_at, updated_at, last_action, last_event_id)
SELECT run_id, workspace, environment, status_after, requested_by, plan_sha256, adds, changes, destroys, replaces,
	first_at, at, action, id
FROM (
	SELECT e.*,
		ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY at DESC, id DESC) AS newest,
		MIN(at) OVER (PARTITION BY run_id) AS first_at
	FROM events e
) ranked
WHERE newest = 1;

-- +goose Down
DROP INDEX events_actor_at_id;
DROP INDEX events_run_at_id;
DROP INDEX events_workspace_at_id;
DROP TABLE runs;
