/* The PostgreSQL store: opening a URI, migrating its schema,
 * transactions, the server's clock, and wake-ups through LISTEN/NOTIFY.
 * The schema's and the statements' texts are store_pg_sql.c's; sessions
 * and statements store_pg_conn.c's; the task records store_pg_task.c's. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "id.h"
#include "store_pg_shared.h"

#define DEFAULT_SCHEMA "taskmgr"
#define CLOCK_RESYNC_US 10000000  /* measure the server's clock every 10 s */
#define WRITE_TRIES 20            /* runs of a write the database may ask for */
#define MIGRATE_LOCK "7596542915640011106" /* advisory lock: schema changes */
#define S TM__PG_SCHEMA_MARK

/* ---- time ----------------------------------------------------------------- */

static int64_t now(tm__store *store)
{
	tm__pg *s = tm__pg_of(store);

	return tm__store_clock(store, tm__now_us() + atomic_load(&s->offset_us));
}

/* Measure the server's clock against ours: times stored by every node
 * then come from one clock, to within half a round trip. */
static void sync_clock(tm__pg *s, tm__pg_txn *t)
{
	int64_t t0 = tm__now_us(), t1, m0 = tm__mono_us();
	PGresult *r;

	if (m0 - atomic_load(&s->synced_us) < CLOCK_RESYNC_US && atomic_load(&s->synced_us))
		return;
	if (tm__pg_exec(t, PG_CLOCK, 0, NULL, NULL, &r) != TM_OK)
		return;
	t1 = tm__now_us();
	if (PQntuples(r) == 1) {
		int64_t off = tm__pg_int8(r, 0, 0) - (t0 + (t1 - t0) / 2);

		/* The server read its clock between t0 and t1: an offset within
		 * half the round trip cannot be told from none (a server on this
		 * machine), and correcting by it would only add noise. */
		if (off <= (t1 - t0) / 2 && off >= -(t1 - t0) / 2)
			off = 0;
		atomic_store(&s->offset_us, off);
		atomic_store(&s->synced_us, m0);
	}
	PQclear(r);
}

/* ---- transactions ---------------------------------------------------------- */

/* BEGIN goes ahead of the first statement; COMMIT, and the NOTIFY that
 * tells the other nodes (in its own implicit transaction after it: a
 * NOTIFY inside a transaction would serialise every commit), go in one
 * round trip.  A write that only writes is one round trip in all. */
static int run(tm__pg *s, bool write, tm__txn_fn fn, void *ctx)
{
	for (int attempt = 0;; attempt++) {
		tm__pg_txn t = { .base = { .store = &s->base }, .s = s, .write = write };
		const char *vals[2] = { s->channel, s->token };
		bool committing = false;
		int err = tm__pg_acquire(s, &t.c);

		if (err)
			return err;
		sync_clock(s, &t);
		err = tm__pg_send(&t, 0, write ? "BEGIN" :
		           "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, NULL,
		           PG_EXPECT_ANY);
		if (!err)
			err = fn(&t.base, ctx);
		if (!err && write)
			err = tm__pg_finals_commit(&t);
		if (!err && (t.retry || t.broken))
			err = tm_errorf(TM_ESTORAGE, "PostgreSQL: a statement failed");
		if (!err) {
			committing = true;
			err = tm__pg_send(&t, 0, "COMMIT", 0, NULL, NULL, PG_EXPECT_COMMIT);
			if (!err && t.notify)
				err = tm__pg_send(&t, PG_NOTIFY, NULL, 2, vals, NULL, PG_EXPECT_ANY);
			if (!err)
				err = tm__pg_flush(&t, NULL);
			if (!err && t.wrote)
				atomic_fetch_add(&s->commits, 1);
		} else if (!t.broken) {
			/* On failure this replaces fn's message: the link is
			 * dropped, and that is the news. */
			if (tm__pg_send(&t, 0, "ROLLBACK", 0, NULL, NULL, PG_EXPECT_ANY) != TM_OK ||
			    tm__pg_flush(&t, NULL) != TM_OK)
				t.broken = true;
		}
		PQclear(t.held);
		free(t.finals);
		tm__pg_release(s, t.c, t.broken);
		if (err && t.retry && attempt + 1 < WRITE_TRIES)
			continue; /* a deadlock or serialisation failure: run it again */
		if (err && t.broken && !committing && attempt == 0)
			continue; /* the link broke before COMMIT: once more, reconnected */
		if (err && t.broken && committing)
			return tm_errorf(TM_ESTORAGE, "PostgreSQL: the connection was lost "
			                 "while committing; the change may or may not have "
			                 "been made");
		return err;
	}
}

static int pg_read(tm__store *store, tm__txn_fn fn, void *ctx)
{
	return run(tm__pg_of(store), false, fn, ctx);
}

static int pg_write(tm__store *store, tm__txn_fn fn, void *ctx)
{
	return run(tm__pg_of(store), true, fn, ctx);
}

static uint64_t commits(tm__store *store)
{
	return atomic_load(&tm__pg_of(store)->commits);
}

/* Refresh tokens are deleted with their task's final status, in the same
 * transaction; PostgreSQL keeps nothing to zero here (doc/design.md says
 * what remains until VACUUM). */
static int scrub(tm__store *store, size_t *n)
{
	(void)store;
	*n = 0;
	return TM_OK;
}

/* ---- wake-ups ------------------------------------------------------------------ */

/* A PostgreSQL store is backed up by the database's own tools, which copy
 * it consistently while it is in use; tm_backup() says which. */
static int backup(tm__store *store, const char *dest)
{
	tm__pg *s = tm__pg_of(store);

	(void)dest;
	return tm_errorf(TM_EINVAL, "tm_backup copies LMDB stores only: back up "
	                 "this PostgreSQL store with pg_dump (pg_dump --schema=%s)",
	                 s->schema);
}

static uint32_t wake_seq(tm__store *store)
{
	return (uint32_t)atomic_load(&tm__pg_of(store)->seq);
}

static void wake_self(tm__pg *s)
{
	uint64_t one = 1;

	atomic_fetch_add(&s->seq, 1);
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake-up is pending anyway */
	}
}

/* Other nodes are told by the NOTIFY sent with each commit that queued
 * work or asked a run to stop (run()); only this process's own sleeper is
 * left to wake here. */
static void wake(tm__store *store, bool self_too)
{
	if (self_too)
		wake_self(tm__pg_of(store));
}

static void listen_up(tm__pg *s)
{
	char sql[96];
	int err;

	if (s->listen != NULL || tm__mono_us() < s->listen_retry_us)
		return;
	s->listen = tm__pg_connect(s, false, &err);
	snprintf(sql, sizeof(sql), "LISTEN %s", s->channel);
	if (s->listen && tm__pg_simple(s, NULL, s->listen, sql, "listening", NULL) != TM_OK) {
		PQfinish(s->listen);
		s->listen = NULL;
	}
	if (s->listen == NULL) {
		s->listen_retry_us = tm__mono_us() + 1000000;
		return;
	}
	atomic_fetch_add(&s->seq, 1); /* what was missed while down: look once */
}

static void drain(tm__pg *s)
{
	PGnotify *n;

	if (s->listen == NULL)
		return;
	if (!PQconsumeInput(s->listen)) {
		PQfinish(s->listen);
		s->listen = NULL;
		s->listen_retry_us = tm__mono_us() + 1000000;
		return;
	}
	while ((n = PQnotifies(s->listen)) != NULL) {
		if (strcmp(n->extra, s->token) != 0)
			atomic_fetch_add(&s->seq, 1);
		PQfreemem(n);
	}
}

static void wait_wake(tm__store *store, uint32_t seen, unsigned ms)
{
	tm__pg *s = tm__pg_of(store);
	int64_t deadline = tm__mono_us() + (int64_t)ms * 1000;

	pthread_mutex_lock(&s->lmu);
	for (;;) {
		struct pollfd p[2] = { { s->efd, POLLIN, 0 }, { -1, POLLIN, 0 } };
		int64_t left;

		listen_up(s);
		drain(s);
		left = deadline - tm__mono_us();
		if ((uint32_t)atomic_load(&s->seq) != seen || left <= 0)
			break;
		if (s->listen)
			p[1].fd = PQsocket(s->listen);
		else if (left > 1000000)
			left = 1000000; /* try the listener again in a second */
		if (poll(p, 2, (int)((left + 999) / 1000)) > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;

			if (read(s->efd, &v, sizeof(v)) < 0) {
				/* drained by an earlier read */
			}
		}
	}
	pthread_mutex_unlock(&s->lmu);
}

/* ---- opening ------------------------------------------------------------------- */

static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static tm__pg *open_list;

static bool schema_ok(const char *v, size_t n)
{
	if (n == 0 || n > 58 || !(v[0] == '_' || (v[0] >= 'a' && v[0] <= 'z')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] == '_' || (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9')))
			return false;
	return true;
}

/* Split our own parameters off the URI: taskmgr_schema (the schema that
 * holds the store) and taskmgr_timeout_ms (the bound on each call). */
static int parse_uri(tm__pg *s, const char *uri)
{
	const char *q = strchr(uri, '?');
	size_t len = strlen(uri);
	char *out = malloc(len + 1), *o;
	bool first = true;

	if (out == NULL)
		return tm__error_oom();
	strcpy(s->schema, DEFAULT_SCHEMA);
	s->timeout_ms = DEFAULT_TIMEOUT_MS;
	memcpy(out, uri, q ? (size_t)(q - uri) : len);
	o = out + (q ? (size_t)(q - uri) : len);
	while (q && *q) {
		const char *p = q + 1, *end = strchr(p, '&'), *eq;
		size_t n;

		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		eq = memchr(p, '=', n);
		if (eq && (size_t)(eq - p) == 14 && memcmp(p, "taskmgr_schema", 14) == 0) {
			size_t vn = n - 15;

			if (!schema_ok(eq + 1, vn)) {
				free(out);
				return tm_errorf(TM_EINVAL, "taskmgr_schema must be a lower-case "
				                 "SQL identifier of at most 58 characters "
				                 "([a-z_][a-z0-9_]*), not '%.*s'", (int)vn, eq + 1);
			}
			memcpy(s->schema, eq + 1, vn);
			s->schema[vn] = '\0';
		} else if (eq && (size_t)(eq - p) == 18 && memcmp(p, "taskmgr_timeout_ms", 18) == 0) {
			char *e;
			unsigned long v = strtoul(eq + 1, &e, 10);

			if (e != end || v < 100 || v > 3600000) {
				free(out);
				return tm_errorf(TM_EINVAL, "taskmgr_timeout_ms must be a whole "
				                 "number of milliseconds from 100 to 3600000");
			}
			s->timeout_ms = (unsigned)v;
		} else if (n > 0) {
			*o++ = first ? '?' : '&';
			memcpy(o, p, n);
			o += n;
			first = false;
		}
		q = *end ? end : NULL;
	}
	*o = '\0';
	s->conninfo = out;
	return TM_OK;
}

/* On a session of its own, outside the pool (not in pipeline mode: the
 * migrations are multi-statement texts). */
static int migrate(tm__pg *s)
{
	struct tm__pg_conn own = { 0 };
	tm__pg_txn t = { .base = { .store = &s->base }, .s = s, .write = true, .c = &own };
	PGresult *r = NULL;
	char *sql = NULL;
	long version = 0;
	int err = TM_OK;

	own.conn = tm__pg_connect(s, false, &err);
	if (err)
		return err;
	sql = tm__pg_with_schema("BEGIN; SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ");"
	                  " CREATE SCHEMA IF NOT EXISTS " S ";"
	                  " CREATE TABLE IF NOT EXISTS " S ".meta (key text PRIMARY KEY,"
	                  " value bigint NOT NULL);"
	                  " SELECT value FROM " S ".meta WHERE key = 'schema'", s->schema);
	if (sql == NULL) {
		PQfinish(own.conn);
		return tm__error_oom();
	}
	err = tm__pg_simple(s, &t, t.c->conn, sql, "creating the schema", &r);
	free(sql);
	if (!err && PQntuples(r) == 1)
		version = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (!err && version > TM__PG_SCHEMA_VERSION)
		err = tm_errorf(TM_ESTORAGE, "store was written by schema %ld; this "
		                "library (%s) reads up to schema %d", version,
		                TM_VERSION_STRING, TM__PG_SCHEMA_VERSION);
	for (long v = version; !err && v < TM__PG_SCHEMA_VERSION; v++) {
		if ((sql = tm__pg_with_schema(tm__pg_migrations[v], s->schema)) == NULL)
			err = tm__error_oom();
		if (!err)
			err = tm__pg_simple(s, &t, t.c->conn, sql, "migrating the schema", NULL);
		free(sql);
	}
	if (!err && version < TM__PG_SCHEMA_VERSION) {
		if (asprintf(&sql, "INSERT INTO %s.meta VALUES ('schema', %d) ON CONFLICT"
		             " (key) DO UPDATE SET value = EXCLUDED.value", s->schema,
		             TM__PG_SCHEMA_VERSION) < 0)
			err = tm__error_oom();
		if (!err)
			err = tm__pg_simple(s, &t, t.c->conn, sql, "migrating the schema", NULL);
		free(sql);
	}
	if (!err)
		err = tm__pg_simple(s, &t, t.c->conn, "COMMIT", "creating the schema", NULL);
	else if (!t.broken)
		tm__pg_simple(s, &t, t.c->conn, "ROLLBACK", "rolling back", NULL);
	PQfinish(own.conn);
	return err;
}

static void pg_close(tm__store *store)
{
	tm__pg *s = tm__pg_of(store);

	pthread_mutex_lock(&open_mu);
	for (tm__pg **pp = &open_list; *pp; pp = &(*pp)->next_open) {
		if (*pp == s) {
			*pp = s->next_open;
			break;
		}
	}
	pthread_mutex_unlock(&open_mu);
	for (unsigned i = 0; i < s->n_pool; i++)
		if (s->pool[i].conn)
			PQfinish(s->pool[i].conn);
	if (s->listen)
		PQfinish(s->listen);
	if (s->efd >= 0)
		close(s->efd);
	for (int i = 0; i < PG_STMT_COUNT; i++)
		free(s->sql[i]);
	free(s->conninfo);
	free(s->key);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->lmu);
	pthread_cond_destroy(&s->freed);
	free(s);
}

static const struct tm__store_ops pg_ops;

static void warm(tm__pg *s)
{
	struct tm__pg_conn *c[3];
	unsigned n = 0;

	while (n < 3 && tm__pg_acquire(s, &c[n]) == TM_OK)
		n++;
	while (n > 0)
		tm__pg_release(s, c[--n], false);
	pthread_mutex_lock(&s->lmu);
	listen_up(s);
	pthread_mutex_unlock(&s->lmu);
}

int tm__pg_open(const char *uri, const tm__store_opts *o, tm__store **out)
{
	tm__pg *s = calloc(1, sizeof(*s));
	uint64_t tok;
	int err;

	*out = NULL;
	if (s == NULL)
		return tm__error_oom();
	s->base.ops = &pg_ops;
	s->nosync = o->nosync;
	s->efd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->lmu, NULL);
	pthread_cond_init(&s->freed, NULL);
	err = parse_uri(s, uri);
	if (err)
		goto fail;
	snprintf(s->channel, sizeof(s->channel), "%s_wake", s->schema);
	tok = tm__random64();
	snprintf(s->token, sizeof(s->token), "%016llx", (unsigned long long)tok);
	s->slot_base = (unsigned)(tm__random64() % TM__PG_FINAL_SLOTS);
	for (int i = 0; i < PG_STMT_COUNT && !err; i++)
		if ((s->sql[i] = tm__pg_with_schema(tm__pg_sql_text[i], s->schema)) == NULL)
			err = tm__error_oom();
	if (!err && asprintf(&s->key, "%s#%s", s->conninfo, s->schema) < 0)
		err = tm__error_oom();
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!err && s->efd < 0)
		err = tm__error_sys(errno, "eventfd");
	if (err)
		goto fail;

	pthread_mutex_lock(&open_mu);
	for (tm__pg *p = open_list; p; p = p->next_open) {
		if (strcmp(p->key, s->key) == 0) {
			pthread_mutex_unlock(&open_mu);
			err = tm_errorf(TM_EINVAL, "store %s (schema %s) is already open in "
			                "this process; share that tm_manager", "postgresql://...",
			                s->schema);
			goto fail;
		}
	}
	s->next_open = open_list;
	open_list = s;
	pthread_mutex_unlock(&open_mu);

	err = migrate(s);
	if (err) {
		pg_close(&s->base);
		return err;
	}
	/* Sessions for the runtime's first round, made now rather than on its
	 * clock: a lease must not wait for a backend to start. */
	warm(s);
	*out = &s->base;
	return TM_OK;
fail:
	s->next_open = NULL;
	pg_close(&s->base);
	return err;
}

static const struct tm__store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close, .read = pg_read, .write = pg_write, .now = now,
	.get = tm__pg_get, .get_head = tm__pg_get_head, .render = tm__pg_render,
	.put = tm__pg_put, .delete = tm__pg_delete, .lock_name = tm__pg_lock_name,
	.secret_put = tm__pg_secret_put, .secret_get = tm__pg_secret_get,
	.secret_del = tm__pg_secret_del, .scrub = scrub,
	.recent = tm__pg_recent, .oldest = tm__pg_oldest, .active = tm__pg_active,
	.expired = tm__pg_expired,
	.queue = tm__pg_queue, .queue_head = tm__pg_queue_head,
	.name_stats = tm__pg_name_stats, .add_changes = tm__pg_add_changes,
	.reset_changes = tm__pg_reset_changes, .name_touch = tm__pg_name_touch,
	.pause = tm__pg_pause, .paused = tm__pg_paused,
	.rate_take = tm__pg_rate_take, .rate_tokens = tm__pg_rate_tokens,
	.names = tm__pg_names, .name_finals = tm__pg_name_finals,
	.lock_retention = tm__pg_lock_retention,
	.cron_get = tm__pg_cron_get, .cron_set = tm__pg_cron_set,
	.wake_seq = wake_seq, .wake = wake, .wait = wait_wake,
	.size = tm__pg_size, .commits = commits, .check = tm__pg_check,
	.backup = backup,
};
