/* Which store the Check suites test (tests/common.h, "the store under
 * test"): LMDB in the test's directory, or, with TM_TEST_BACKEND=pg, the
 * PostgreSQL database at TM_TEST_PG_URL in a schema of the directory's
 * own.  The one file of the helpers that knows libpq, and the only one
 * built differently with and without it (TT_HAVE_PG). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#ifdef TT_HAVE_PG
#include <libpq-fe.h>
#endif

/* Every schema a path of this process was mapped to, for tt_store_drop(). */
struct mapped {
	struct mapped *next;
	char *dir;   /* the path, normalised */
	char *uri;   /* what tm_open gets */
	char schema[19];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapped *mapped;

/* Not a Check assertion: these run in forked children too, and outside
 * tests (main, fixtures). */
static void die(const char *msg)
{
	fprintf(stderr, "tests: %s\n", msg);
	fflush(NULL);
	exit(1);
}

int tt_backend_pg(void)
{
	const char *b = getenv("TM_TEST_BACKEND");

	if (b == NULL || *b == '\0' || strcmp(b, "lmdb") == 0)
		return 0;
	if (strcmp(b, "pg") == 0)
		return 1;
	die("TM_TEST_BACKEND must be lmdb or pg");
	return 0;
}

static const char *pg_url(void)
{
	const char *url = getenv("TM_TEST_PG_URL");

	if (url == NULL || *url == '\0')
		die("TM_TEST_BACKEND=pg needs TM_TEST_PG_URL, the database to test in "
		    "(scripts/pg-cluster run sets it)");
	return url;
}

/* The path with empty and "." components and a trailing slash removed,
 * so that every spelling of one directory names one store (malloc'd). */
static char *normalise(const char *path)
{
	size_t len = strlen(path);
	char *out = malloc(len + 2);
	size_t n = 0;
	const char *p = path;

	if (out == NULL)
		die("out of memory");
	if (*p == '/')
		out[n++] = '/';
	while (*p) {
		const char *end;
		size_t k;

		while (*p == '/')
			p++;
		end = p;
		while (*end && *end != '/')
			end++;
		k = (size_t)(end - p);
		if (k > 0 && !(k == 1 && p[0] == '.')) {
			if (n > 0 && out[n - 1] != '/')
				out[n++] = '/';
			memcpy(out + n, p, k);
			n += k;
		}
		p = end;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	return out;
}

/* t_ and the 16 hex digits of the 64-bit FNV-1a hash of the normalised
 * path: tests/tmbackend.py names the same schema for the same path. */
static void schema_of(const char *norm, char schema[19])
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *p = (const unsigned char *)norm; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	snprintf(schema, 19, "t_%016llx", (unsigned long long)h);
}

const char *tt_store_path(const char *dir)
{
	const char *url, *sep;
	struct mapped *m;
	char *norm;
	size_t len;

	if (!tt_backend_pg() || dir == NULL)
		return dir;
	url = pg_url();
	norm = normalise(dir);
	pthread_mutex_lock(&lock);
	for (m = mapped; m; m = m->next)
		if (strcmp(m->dir, norm) == 0) {
			pthread_mutex_unlock(&lock);
			free(norm);
			return m->uri;
		}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		die("out of memory");
	m->dir = norm;
	schema_of(norm, m->schema);
	len = strlen(url);
	sep = strchr(url, '?') == NULL ? "?"
	      : (url[len - 1] == '?' || url[len - 1] == '&') ? "" : "&";
	if (asprintf(&m->uri, "%s%staskmgr_schema=%s", url, sep, m->schema) < 0)
		die("out of memory");
	m->next = mapped;
	mapped = m;
	pthread_mutex_unlock(&lock);
	return m->uri;
}

/* Whether path is dir or lies under it (both normalised). */
static int is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/' || (n > 0 && dir[n - 1] == '/'));
}

#ifdef TT_HAVE_PG
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* DROP SCHEMA IF EXISTS of the schemas in sql's list; a failure is only
 * reported: the test itself is over. */
static void drop_schemas(const char *list)
{
	PGconn *c = PQconnectdb(pg_url());
	PGresult *r;
	char *sql;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "tests: cannot drop schema %s: %s", list, PQerrorMessage(c));
		PQfinish(c);
		return;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	if (asprintf(&sql, "SET lock_timeout = '30s'; "
	             "DROP SCHEMA IF EXISTS %s CASCADE", list) < 0)
		die("out of memory");
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fprintf(stderr, "tests: cannot drop schema %s: %s", list, PQerrorMessage(c));
	PQclear(r);
	free(sql);
	PQfinish(c);
}
#else
/* Without libpq no PostgreSQL store could be opened: nothing to drop. */
static void drop_schemas(const char *list)
{
	(void)list;
}
#endif

void tt_store_drop(const char *dir)
{
	struct mapped **pp, *m;
	char *norm, *list;
	char own[19];
	size_t len;

	if (!tt_backend_pg() || dir == NULL)
		return;
	norm = normalise(dir);
	/* The directory's own schema even if only a child process mapped it. */
	schema_of(norm, own);
	len = strlen(own) + 1;
	list = malloc(len);
	if (list == NULL)
		die("out of memory");
	strcpy(list, own);
	pthread_mutex_lock(&lock);
	for (pp = &mapped; (m = *pp) != NULL;) {
		if (!is_under(m->dir, norm)) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		if (strcmp(m->schema, own) != 0) {
			len += strlen(m->schema) + 2;
			list = realloc(list, len);
			if (list == NULL)
				die("out of memory");
			strcat(strcat(list, ", "), m->schema);
		}
		free(m->dir);
		free(m->uri);
		free(m);
	}
	pthread_mutex_unlock(&lock);
	drop_schemas(list);
	free(list);
	free(norm);
}

const TTest *tt_lmdb_only(const TTest *test, const char *reason)
{
	if (!tt_backend_pg())
		return test;
	printf("skipped on PostgreSQL: %s (%s)\n", test->name, reason);
	fflush(stdout);
	return NULL;
}
