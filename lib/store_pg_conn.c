/* The PostgreSQL store's sessions (store_pg.c's engine, store_pg_task.c's
 * records): statements with a deadline, the pipeline that sends writes
 * ahead of their results, errors as tm_errors, and the connection pool. */
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "id.h"
#include "store_pg_shared.h"

/* ---- statements with a deadline ------------------------------------------- */

/* Wait until libpq has the whole answer, or the deadline passes. */
static int await(PGconn *c, int64_t deadline)
{
	int rc;

	while ((rc = PQflush(c)) == 1 || PQisBusy(c)) {
		struct pollfd p = { PQsocket(c), (short)(POLLIN | (rc == 1 ? POLLOUT : 0)), 0 };
		int64_t left = deadline - tm__mono_us();

		if (rc < 0 || p.fd < 0)
			return -1;
		if (left <= 0)
			return 1;
		if (poll(&p, 1, (int)((left + 999) / 1000)) < 0 && errno != EINTR)
			return -1;
		if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c))
			return -1;
	}
	return rc < 0 ? -1 : 0;
}

/* Collect the results of what was sent: the last one goes to *res (NULL
 * when there was none).  Returns 0, 1 on timeout, -1 on a broken link. */
static int collect(PGconn *c, int64_t deadline, PGresult **res)
{
	PGresult *r;
	int rc;

	*res = NULL;
	for (;;) {
		rc = await(c, deadline);
		if (rc)
			break;
		r = PQgetResult(c);
		if (r == NULL)
			return 0;
		if (*res == NULL || PQresultStatus(*res) != PGRES_FATAL_ERROR) {
			PQclear(*res); /* keep the first error, else the last result */
			*res = r;
		} else {
			PQclear(r);
		}
	}
	PQclear(*res);
	*res = NULL;
	return rc;
}

/* An error from a result or the connection, as TM_ESTORAGE. */
static int pg_error(tm__pg_txn *t, PGconn *c, const PGresult *r, int link,
                    const char *what)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	if (t) {
		if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
			t->retry = true;
		if (link || PQstatus(c) != CONNECTION_OK)
			t->broken = true;
	}
	if (link > 0)
		return tm_errorf(TM_ESTORAGE, "PostgreSQL: %s: no answer within %u ms",
		                 what, t ? t->s->timeout_ms : DEFAULT_TIMEOUT_MS);
	return tm_errorf(TM_ESTORAGE, "PostgreSQL: %s: %.*s", what, (int)n,
	                 n ? msg : "connection lost");
}

/* A plain SQL text (no parameters) on c, waited for up to the deadline;
 * *res (when not NULL) receives the last result in text format. */
int tm__pg_simple(tm__pg *s, tm__pg_txn *t, PGconn *c, const char *sql,
                  const char *what, PGresult **res)
{
	int64_t deadline = tm__mono_us() + (int64_t)s->timeout_ms * 1000;
	PGresult *r = NULL;
	int link, err = TM_OK;

	if (!PQsendQuery(c, sql))
		return pg_error(t, c, NULL, -1, what);
	link = collect(c, deadline, &r);
	if (link || r == NULL)
		err = pg_error(t, c, NULL, link ? link : -1, what);
	else if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		err = pg_error(t, c, r, 0, what);
	if (!err && res)
		*res = r;
	else
		PQclear(r);
	return err;
}

/* Queue one statement on the pipeline (preparing it first on this
 * connection if need be); text is for BEGIN, COMMIT and ROLLBACK. */
int tm__pg_send(tm__pg_txn *t, enum tm__pg_stmt st, const char *text, int n,
                const char *const *vals, const int *lens, int expect)
{
	struct tm__pg_conn *pc = t->c;
	char name[16];
	int formats[12] = { 0 };

	if (t->broken)
		return tm_errorf(TM_ESTORAGE, "PostgreSQL: the connection was lost");
	if (text != NULL) {
		if (!PQsendQueryParams(pc->conn, text, 0, NULL, NULL, NULL, NULL, 1))
			return pg_error(t, pc->conn, NULL, -1, "sending a statement");
		pc->capture[pc->n_pending] = -1;
		pc->expect[pc->n_pending++] = expect;
		return TM_OK;
	}
	snprintf(name, sizeof(name), "tm%d", (int)st);
	if (!pc->prepared[st]) {
		if (!PQsendPrepare(pc->conn, name, t->s->sql[st], 0, NULL))
			return pg_error(t, pc->conn, NULL, -1, "preparing a statement");
		pc->capture[pc->n_pending] = -1;
		pc->expect[pc->n_pending++] = PG_EXPECT_PREPARE;
		pc->prepared[st] = true; /* if it fails, so does the link (flush) */
	}
	for (int i = 0; lens && i < n; i++)
		formats[i] = lens[i] > 0;
	if (!PQsendQueryPrepared(pc->conn, name, n, vals, lens, formats, 1))
		return pg_error(t, pc->conn, NULL, -1, "sending a statement");
	pc->capture[pc->n_pending] = -1;
	pc->expect[pc->n_pending++] = expect;
	return TM_OK;
}

/* Send a sync and read every result sent ahead, in order; *last (when not
 * NULL) receives the last statement's result.  The first failure is the
 * one reported. */
int tm__pg_flush(tm__pg_txn *t, PGresult **last)
{
	struct tm__pg_conn *pc = t->c;
	PGconn *c = pc->conn;
	int64_t deadline = tm__mono_us() + (int64_t)t->s->timeout_ms * 1000;
	int n = pc->n_pending, err = TM_OK, link = 0;
	PGresult *x;

	if (last)
		*last = NULL;
	pc->n_pending = 0;
	if (!PQpipelineSync(c))
		return pg_error(t, c, NULL, -1, "sending a statement");
	for (int i = 0; i < n; i++) {
		PGresult *r = NULL;
		ExecStatusType st;

		while ((link = await(c, deadline)) == 0 && (x = PQgetResult(c)) != NULL) {
			if (r == NULL)
				r = x;
			else
				PQclear(x);
		}
		if (link || r == NULL) {
			PQclear(r);
			return pg_error(t, c, NULL, link ? link : -1, "a statement");
		}
		st = PQresultStatus(r);
		if (pc->expect[i] == PG_EXPECT_PREPARE && st != PGRES_COMMAND_OK)
			t->broken = true; /* the statement is not there: drop the session */
		if (err) {
			/* already failed: the rest were skipped */
		} else if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
			err = pg_error(t, c, r, 0, "a statement");
		} else if (pc->expect[i] >= 0 && atoi(PQcmdTuples(r)) != pc->expect[i]) {
			err = tm_errorf(TM_ESTORAGE, "a task changed %s rows where %d were "
			                "expected: it vanished while it was written",
			                PQcmdTuples(r), pc->expect[i]);
		} else if (pc->expect[i] == PG_EXPECT_COMMIT && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
			err = tm_errorf(TM_ESTORAGE, "PostgreSQL: the transaction was rolled back");
		} else if (pc->capture[i] >= 0 && (size_t)pc->capture[i] < t->n_finals &&
		           st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			t->finals[pc->capture[i]].base = tm__pg_int8(r, 0, 0);
			t->finals[pc->capture[i]].have_base = true;
		}
		if (i == n - 1 && last && !err)
			*last = r;
		else
			PQclear(r);
	}
	/* The sync's own result closes the round. */
	if ((link = await(c, deadline)) != 0 || (x = PQgetResult(c)) == NULL) {
		if (last) {
			PQclear(*last);
			*last = NULL;
		}
		return pg_error(t, c, NULL, link ? link : -1, "a statement");
	}
	if (PQresultStatus(x) != PGRES_PIPELINE_SYNC && !err)
		err = pg_error(t, c, x, 0, "a statement");
	PQclear(x);
	if (err && last) {
		PQclear(*last);
		*last = NULL;
	}
	return err;
}

int tm__pg_exec(tm__pg_txn *t, enum tm__pg_stmt st, int n, const char *const *vals,
                const int *lens, PGresult **res)
{
	int err = tm__pg_send(t, st, NULL, n, vals, lens, PG_EXPECT_ANY);

	*res = NULL;
	return err ? err : tm__pg_flush(t, res);
}

int tm__pg_defer(tm__pg_txn *t, enum tm__pg_stmt st, int n, const char *const *vals,
                 const int *lens, int expect)
{
	int err = tm__pg_send(t, st, NULL, n, vals, lens, expect);

	t->wrote |= st != PG_LOCK_NAME; /* every other deferred statement writes */
	if (!err && t->c->n_pending > TM__PG_PENDING_MAX - 4)
		err = tm__pg_flush(t, NULL); /* room for the next, its prepare and COMMIT */
	return err;
}

const char *tm__pg_i8(char buf[I8], int64_t v)
{
	snprintf(buf, I8, "%" PRId64, v);
	return buf;
}

int64_t tm__pg_int8(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	uint64_t u = 0;
	int len = PQgetlength(r, row, col);

	for (int i = 0; i < len && i < 8; i++)
		u = u << 8 | p[i];
	if (len == 2) /* smallint */
		return (int16_t)(uint16_t)u;
	if (len == 4)
		return (int32_t)(uint32_t)u;
	return (int64_t)u;
}

/* ---- connections ------------------------------------------------------------ */

/* The server's notices (IF NOT EXISTS, ...) are not the host's business. */
static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* A new session; a pooled one (pipeline) runs in pipeline mode. */
PGconn *tm__pg_connect(tm__pg *s, bool pipeline, int *err)
{
	char timeout[16];
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { timeout, "libtaskmgr", s->conninfo, NULL };
	char set[256];
	PGconn *c;

	snprintf(timeout, sizeof(timeout), "%u", s->timeout_ms < 2000 ? 2 : (s->timeout_ms + 999) / 1000);
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL) {
		*err = tm__error_oom();
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		*err = pg_error(NULL, c, NULL, -1, "connecting");
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	/* Every wait is bounded: a statement, a lock, and a transaction left
	 * open by a node that stopped answering (its locks are released). */
	snprintf(set, sizeof(set),
	         "SET synchronous_commit = %s; SET statement_timeout = %u;"
	         " SET lock_timeout = %u; SET idle_in_transaction_session_timeout = %u",
	         s->nosync ? "off" : "on", s->timeout_ms, s->timeout_ms, s->timeout_ms);
	*err = tm__pg_simple(s, NULL, c, set, "configuring a session", NULL);
	if (!*err && pipeline && !PQenterPipelineMode(c))
		*err = pg_error(NULL, c, NULL, -1, "entering pipeline mode");
	if (*err) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

int tm__pg_acquire(tm__pg *s, struct tm__pg_conn **out)
{
	struct timespec until;
	struct tm__pg_conn *pc = NULL;
	int err = TM_OK;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += s->timeout_ms / 1000;
	until.tv_nsec += (long)(s->timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (pc == NULL) {
		for (unsigned i = 0; i < s->n_pool && pc == NULL; i++)
			if (!s->pool[i].busy)
				pc = &s->pool[i];
		if (pc == NULL && s->n_pool < TM__PG_POOL_MAX)
			pc = &s->pool[s->n_pool++];
		if (pc == NULL &&
		    pthread_cond_timedwait(&s->freed, &s->mu, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			return tm_errorf(TM_ESTORAGE, "PostgreSQL: all %d connections "
			                 "stayed busy for %u ms", TM__PG_POOL_MAX, s->timeout_ms);
		}
	}
	pc->busy = true;
	pthread_mutex_unlock(&s->mu);
	if (pc->conn != NULL && PQstatus(pc->conn) != CONNECTION_OK) {
		PQfinish(pc->conn);
		pc->conn = NULL;
	}
	if (pc->conn == NULL) {
		memset(pc->prepared, 0, sizeof(pc->prepared));
		pc->n_pending = 0;
		pc->conn = tm__pg_connect(s, true, &err);
	}
	if (err) {
		pthread_mutex_lock(&s->mu);
		pc->busy = false;
		pthread_cond_signal(&s->freed);
		pthread_mutex_unlock(&s->mu);
		return err;
	}
	*out = pc;
	return TM_OK;
}

void tm__pg_release(tm__pg *s, struct tm__pg_conn *pc, bool broken)
{
	if (broken) {
		PQfinish(pc->conn);
		pc->conn = NULL;
	}
	pthread_mutex_lock(&s->mu);
	pc->busy = false;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->mu);
}

