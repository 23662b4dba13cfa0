/* The PostgreSQL store's texts: the schema's migrations and every prepared
 * statement, with a mark where the schema's name goes, and the function
 * that puts it there (store_pg_shared.h). */
#include <stdlib.h>
#include <string.h>

#include "store_pg_shared.h"

/* ---- the schema ----------------------------------------------------------
 *
 * Migrations, in order; migration i takes the schema from version i to
 * i + 1.  S marks the schema.  Each runs in the transaction that opens the
 * store, under an advisory lock, so that nodes starting together apply it
 * once.  Never edit one that shipped: add the next. */
#define S TM__PG_SCHEMA_MARK
const char *const tm__pg_migrations[TM__PG_SCHEMA_VERSION] = {
	"CREATE TABLE " S ".tasks ("
	" id text COLLATE \"C\" PRIMARY KEY,"
	" name text COLLATE \"C\" NOT NULL,"
	" status smallint NOT NULL CHECK (status BETWEEN 0 AND 5),"
	" queued boolean NOT NULL,"
	" start_us bigint NOT NULL,"
	" ready_us bigint NOT NULL,"
	" timeout_us bigint NOT NULL,"
	" lease_us bigint NOT NULL,"
	" owner bigint NOT NULL,"
	" doc bytea NOT NULL,"
	" CHECK (NOT queued OR status < 3));"
	"CREATE INDEX tasks_by_name ON " S ".tasks (name, start_us, id);"
	"CREATE INDEX tasks_queue ON " S ".tasks (ready_us, id) WHERE queued;"
	"CREATE INDEX tasks_active ON " S ".tasks (name, start_us, id) WHERE status < 3;"
	"CREATE INDEX tasks_timeout ON " S ".tasks (timeout_us) WHERE status < 3;"
	"CREATE INDEX tasks_lease ON " S ".tasks (lease_us)"
	" WHERE status < 3 AND NOT queued AND owner <> 0;"
	"CREATE TABLE " S ".secrets ("
	" id text COLLATE \"C\" PRIMARY KEY REFERENCES " S ".tasks (id) ON DELETE CASCADE,"
	" secret bytea NOT NULL)"
	" WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0);"
	"CREATE TABLE " S ".names ("
	" name text COLLATE \"C\" PRIMARY KEY,"
	" changes bigint NOT NULL DEFAULT 0,"
	" since_us bigint NOT NULL);",
	/* 2: a counter of each name's final tasks, for retention to read on
	 * every final write (a count(*) is as slow as the name is long).  A
	 * name's count is the sum of its rows; each session adds to its own
	 * row (slot) at the commit. */
	"CREATE TABLE " S ".finals ("
	" name text COLLATE \"C\" NOT NULL,"
	" slot smallint NOT NULL,"
	" n bigint NOT NULL,"
	" PRIMARY KEY (name, slot))"
	" WITH (fillfactor = 50);"
	"INSERT INTO " S ".finals (name, slot, n)"
	" SELECT name, 0, count(*) FROM " S ".tasks WHERE status >= 3 GROUP BY name;",
	/* 3: paused names (tm_pause), a row each, read by every claim. */
	"CREATE TABLE " S ".paused ("
	" name text COLLATE \"C\" PRIMARY KEY,"
	" since_us bigint NOT NULL);",
	/* 4: scheduling.  A task's priority, and the claim's index: each name's
	 * waiting tasks by priority, then age.  Each name's rate-limit bucket,
	 * and the last due time its cron schedule fired. */
	"ALTER TABLE " S ".tasks ADD COLUMN priority smallint NOT NULL DEFAULT 0"
	" CHECK (priority BETWEEN -10 AND 10);"
	"CREATE INDEX tasks_claim ON " S ".tasks (name, priority DESC, ready_us, start_us, id)"
	" WHERE queued;"
	"CREATE TABLE " S ".rates ("
	" name text COLLATE \"C\" PRIMARY KEY,"
	" tokens double precision NOT NULL,"
	" at_us bigint NOT NULL);"
	"CREATE TABLE " S ".crons ("
	" name text COLLATE \"C\" PRIMARY KEY,"
	" due_us bigint NOT NULL);",
};

#define COLS "id, doc, start_us"
const char *const tm__pg_sql_text[PG_STMT_COUNT] = {
	[PG_GET] = "SELECT doc FROM " S ".tasks WHERE id = $1",
	[PG_GET_LOCK] = "SELECT doc FROM " S ".tasks WHERE id = $1 FOR UPDATE",
	[PG_RENDER] = "SELECT doc, name FROM " S ".tasks WHERE id = $1",
	[PG_INSERT] = "INSERT INTO " S ".tasks (id, name, status, queued, start_us,"
		" ready_us, timeout_us, lease_us, owner, doc, priority)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	[PG_UPDATE] = "UPDATE " S ".tasks SET status = $2, queued = $3, ready_us = $4,"
		" timeout_us = $5, lease_us = $6, owner = $7, doc = $8 WHERE id = $1",
	[PG_DELETE] = "DELETE FROM " S ".tasks WHERE id = $1",
	[PG_RECENT] = "SELECT " COLS " FROM " S ".tasks WHERE name = $1"
		" ORDER BY start_us DESC, id DESC LIMIT $2 OFFSET $3",
	[PG_RECENT_NEXT] = "SELECT " COLS " FROM " S ".tasks WHERE name = $1"
		" AND (start_us, id) < ($3, $4) ORDER BY start_us DESC, id DESC LIMIT $2",
	[PG_OLDEST] = "SELECT " COLS " FROM " S ".tasks WHERE name = $1"
		" ORDER BY start_us, id LIMIT $2",
	[PG_OLDEST_NEXT] = "SELECT " COLS " FROM " S ".tasks WHERE name = $1"
		" AND (start_us, id) > ($3, $4) ORDER BY start_us, id LIMIT $2",
	[PG_ACTIVE] = "SELECT " COLS " FROM " S ".tasks WHERE name = $1 AND status < 3"
		" ORDER BY start_us, id LIMIT $2",
	[PG_ACTIVE_NEXT] = "SELECT " COLS " FROM " S ".tasks WHERE name = $1"
		" AND status < 3 AND (start_us, id) > ($3, $4) ORDER BY start_us, id LIMIT $2",
	[PG_ACTIVE_ALL] = "SELECT " COLS ", name FROM " S ".tasks WHERE status < 3"
		" ORDER BY name, start_us, id LIMIT $1",
	[PG_ACTIVE_ALL_NEXT] = "SELECT " COLS ", name FROM " S ".tasks WHERE status < 3"
		" AND (name, start_us, id) > ($2, $3, $4) ORDER BY name, start_us, id LIMIT $1",
	[PG_EXPIRED] = "SELECT " COLS " FROM " S ".tasks WHERE status < 3 AND"
		" (timeout_us <= $2 OR (owner <> 0 AND NOT queued AND lease_us < $2))"
		" ORDER BY id LIMIT $1",
	[PG_EXPIRED_NEXT] = "SELECT " COLS " FROM " S ".tasks WHERE status < 3 AND"
		" (timeout_us <= $2 OR (owner <> 0 AND NOT queued AND lease_us < $2))"
		" AND id > $3 ORDER BY id LIMIT $1",
	/* The queue scans: each name's next task ready at $2, by priority,
	 * then ready time, then age, for the names not paused (tm_pause);
	 * those by their ready time and age.  A name with nothing queued
	 * costs one probe of the index (tasks_claim); the bands of the others
	 * are probed from the highest down, each an index range that stops at
	 * the first ready task, so tasks scheduled for later are never
	 * walked; the probing stops at the first band that has one (a
	 * function scan returns its rows in order, and the LIMIT ends the
	 * nested loop there).  A claim locks only the rows it returns,
	 * passing those another node holds. */
#define NEXT_OF_EACH_NAME \
	" FROM (SELECT m.name FROM " S ".names m WHERE EXISTS (SELECT 1 FROM " S ".tasks" \
	" WHERE queued AND name = m.name)) n" \
	" CROSS JOIN LATERAL (SELECT q.id FROM generate_series(10, -10, -1) b(p)" \
	" CROSS JOIN LATERAL (SELECT id FROM " S ".tasks WHERE queued AND name = n.name" \
	" AND priority = b.p AND ready_us <= $2 ORDER BY ready_us, start_us, id LIMIT 1) q LIMIT 1) c" \
	" JOIN " S ".tasks t ON t.id = c.id"
#define NOT_PAUSED " WHERE t.queued AND NOT EXISTS (SELECT 1 FROM " S ".paused p WHERE p.name = n.name)"
	[PG_QUEUE] = "SELECT t.id, t.name, t.ready_us, t.start_us" NEXT_OF_EACH_NAME NOT_PAUSED
		" ORDER BY t.ready_us, t.start_us, t.id LIMIT $1",
	[PG_QUEUE_NEXT] = "SELECT t.id, t.name, t.ready_us, t.start_us" NEXT_OF_EACH_NAME NOT_PAUSED
		" AND (t.ready_us, t.start_us, t.id) > ($3, $4, $5)"
		" ORDER BY t.ready_us, t.start_us, t.id LIMIT $1",
	/* A claim reads the record and the secret with the lock: no second
	 * round trip for either. */
	[PG_QUEUE_LOCK] = "SELECT t.id, t.name, t.ready_us, t.doc, s.secret, t.start_us"
		NEXT_OF_EACH_NAME " LEFT JOIN " S ".secrets s ON s.id = t.id" NOT_PAUSED
		" ORDER BY t.ready_us, t.start_us, t.id LIMIT $1 FOR UPDATE OF t SKIP LOCKED",
	[PG_QUEUE_LOCK_NEXT] = "SELECT t.id, t.name, t.ready_us, t.doc, s.secret, t.start_us"
		NEXT_OF_EACH_NAME " LEFT JOIN " S ".secrets s ON s.id = t.id" NOT_PAUSED
		" AND (t.ready_us, t.start_us, t.id) > ($3, $4, $5)"
		" ORDER BY t.ready_us, t.start_us, t.id LIMIT $1 FOR UPDATE OF t SKIP LOCKED",
	[PG_QUEUE_HEAD] = "SELECT count(*), coalesce(min(ready_us), 0)"
		" FROM " S ".tasks WHERE queued",
	[PG_SECRET_PUT] = "INSERT INTO " S ".secrets (id, secret) VALUES ($1, $2)"
		" ON CONFLICT (id) DO UPDATE SET secret = EXCLUDED.secret",
	[PG_SECRET_GET] = "SELECT secret FROM " S ".secrets WHERE id = $1",
	[PG_SECRET_DEL] = "DELETE FROM " S ".secrets WHERE id = $1",
	[PG_NAME_STATS] = "SELECT status::int8, count(*) FROM " S ".tasks WHERE name = $1"
		" GROUP BY status UNION ALL SELECT -1, changes FROM " S ".names WHERE name = $1"
		" UNION ALL SELECT -2, since_us FROM " S ".names WHERE name = $1",
	[PG_ADD_CHANGES] = "INSERT INTO " S ".names (name, changes, since_us)"
		" VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET changes ="
		" least(" S ".names.changes::numeric + EXCLUDED.changes, 9223372036854775807)::int8",
	[PG_RESET_CHANGES] = "UPDATE " S ".names SET changes = 0 WHERE name = $1 AND changes <> 0",
	[PG_NAME_TOUCH] = "INSERT INTO " S ".names (name, changes, since_us)"
		" VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
	[PG_NAMES] = "SELECT name FROM " S ".names ORDER BY name",
	[PG_PAUSE] = "INSERT INTO " S ".paused (name, since_us) VALUES ($1, $2)"
		" ON CONFLICT (name) DO NOTHING",
	[PG_RESUME] = "DELETE FROM " S ".paused WHERE name = $1",
	[PG_PAUSED] = "SELECT 1 FROM " S ".paused WHERE name = $1",
	/* A rate limit's bucket ($2 tokens a second, up to $3), refilled to
	 * the server's clock and, when it holds a whole token, taken from,
	 * in one statement: the UPDATE re-reads the row it locks, so two
	 * takes never spend one token.  A bucket another transaction holds
	 * is passed, not waited for (SKIP LOCKED): two claims taking two
	 * names' tokens in opposite orders would otherwise deadlock; the
	 * caller treats it as a rival's take.  A name's first take makes its
	 * bucket full, less the token (a rival making it first wins; this
	 * take then waits for the next).  Answers whether it took one, and
	 * what the bucket holds then. */
	[PG_RATE_TAKE] = "WITH k AS (SELECT (extract(epoch FROM clock_timestamp())"
		" * 1000000)::int8 AS now),"
		" cur AS (SELECT least($3::float8, r.tokens + greatest(k.now - r.at_us, 0)"
		" * $2::float8 / 1e6) AS tokens FROM " S ".rates r, k WHERE r.name = $1),"
		" lk AS (SELECT name FROM " S ".rates WHERE name = $1 FOR UPDATE SKIP LOCKED),"
		" upd AS (UPDATE " S ".rates r SET tokens = least($3::float8, r.tokens"
		" + greatest(k.now - r.at_us, 0) * $2::float8 / 1e6) - 1,"
		" at_us = greatest(r.at_us, k.now) FROM k, lk WHERE r.name = lk.name"
		" AND least($3::float8, r.tokens + greatest(k.now - r.at_us, 0)"
		" * $2::float8 / 1e6) >= 1 RETURNING r.tokens),"
		" ins AS (INSERT INTO " S ".rates (name, tokens, at_us)"
		" SELECT $1, $3::float8 - 1, k.now FROM k WHERE NOT EXISTS (SELECT 1 FROM cur)"
		" ON CONFLICT (name) DO NOTHING RETURNING tokens)"
		" SELECT coalesce((SELECT tokens FROM upd), (SELECT tokens FROM ins)) IS NOT NULL,"
		" coalesce((SELECT tokens FROM upd), (SELECT tokens FROM ins),"
		" (SELECT tokens FROM cur), 0)::float8",
	[PG_RATE_TOKENS] = "SELECT least($3::float8, tokens"
		" + greatest((extract(epoch FROM clock_timestamp()) * 1000000)::int8 - at_us, 0)"
		" * $2::float8 / 1e6) FROM " S ".rates WHERE name = $1",
	[PG_LOCK_NAME] = "SELECT pg_advisory_xact_lock($1::int8)",
	[PG_NOTIFY] = "SELECT pg_notify($1, $2)",
	[PG_CLOCK] = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8",
	[PG_SIZE] = "SELECT (pg_total_relation_size('" S ".tasks')"
		" + pg_total_relation_size('" S ".secrets')"
		" + pg_total_relation_size('" S ".names')"
		" + pg_total_relation_size('" S ".finals')"
		" + pg_total_relation_size('" S ".paused')"
		" + pg_total_relation_size('" S ".rates')"
		" + pg_total_relation_size('" S ".crons'))::int8",
	[PG_CHECK] = "SELECT id, doc, name, status::int8, queued, start_us, ready_us,"
		" timeout_us, lease_us, owner, priority::int8 FROM " S ".tasks ORDER BY id LIMIT $1",
	[PG_CHECK_NEXT] = "SELECT id, doc, name, status::int8, queued, start_us, ready_us,"
		" timeout_us, lease_us, owner, priority::int8 FROM " S ".tasks WHERE id > $2 ORDER BY id LIMIT $1",
	[PG_CHECK_SECRETS] = "SELECT s.id FROM " S ".secrets s JOIN " S ".tasks t"
		" ON t.id = s.id WHERE t.status >= 3",
	[PG_FINALS] = "SELECT coalesce(sum(n), 0)::int8 FROM " S ".finals WHERE name = $1",
	/* One statement, one snapshot: the tasks and the counter as of the
	 * same commits. */
	[PG_FINALS_EXACT] = "SELECT (SELECT count(*) FROM " S ".tasks"
		" WHERE name = $1 AND status >= 3)::int8,"
		" (SELECT coalesce(sum(n), 0) FROM " S ".finals WHERE name = $1)::int8",
	[PG_FINALS_ADD] = "INSERT INTO " S ".finals (name, slot, n) VALUES ($1, $2, $3)"
		" ON CONFLICT (name, slot) DO UPDATE SET n = " S ".finals.n + EXCLUDED.n",
	[PG_TRY_LOCK] = "SELECT pg_try_advisory_xact_lock($1::int8)",
	[PG_CHECK_FINALS] = "SELECT coalesce(f.name, c.name), coalesce(f.n, 0)::int8,"
		" coalesce(c.n, 0)::int8 FROM (SELECT name, sum(n) AS n FROM " S ".finals"
		" GROUP BY name) f FULL JOIN (SELECT name, count(*) AS n FROM " S ".tasks"
		" WHERE status >= 3 GROUP BY name) c ON c.name = f.name"
		" WHERE coalesce(f.n, 0) <> coalesce(c.n, 0)",
	/* Cron schedules: the instant up to which each name's due times are
	 * dealt with, read and moved under the name's lock. */
	[PG_CRON_GET] = "SELECT due_us FROM " S ".crons WHERE name = $1",
	[PG_CRON_SET] = "INSERT INTO " S ".crons (name, due_us) VALUES ($1, $2)"
		" ON CONFLICT (name) DO UPDATE SET due_us = EXCLUDED.due_us",
	[PG_CRON_START] = "INSERT INTO " S ".crons (name, due_us) VALUES ($1, $2)"
		" ON CONFLICT (name) DO NOTHING",
};

/* A statement's text with the schema in place of each S (malloc'd). */
char *tm__pg_with_schema(const char *text, const char *schema)
{
	size_t n = 0, k = strlen(schema);
	char *out, *o;

	for (const char *p = text; *p; p++)
		n += *p == S[0] ? k : 1;
	out = o = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (const char *p = text; *p; p++) {
		if (*p == S[0]) {
			memcpy(o, schema, k);
			o += k;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}
