/* The store, opened as a bystander of the host that uses it (doc/cli.md,
 * "Sharing the store"): no worker threads, so this process runs no task;
 * retention set so that it prunes nothing (every manager prunes the names
 * registered in it, by its own keep_count and keep_age_s, and zero there
 * means the default, not "never"); names registered without a handler,
 * without automatic triggers, only once the store knows them (registering
 * records a name in the store), and with unlimited attempts, so that if
 * this process is the one to find a task whose worker was lost, it puts
 * the task back in the queue for a host to run, under the host's own
 * policy, rather than failing it. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Far beyond any clock: a final task is never old enough to prune. */
#define KEEP_AGE_NEVER_S 1e18

static bool is_uri(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 ||
	       strncmp(path, "postgres://", 11) == 0;
}

/* tm_open() creates a missing store directory and the files of a store in
 * any directory; taskmgr must not.  (A PostgreSQL URI cannot be checked
 * without opening it: its schema is created if missing, as by any host.) */
static int check_lmdb(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	if (stat(dir, &st) != 0)
		return tm_errorf(TM_ESTORAGE, "no store at %s: %s (taskmgr opens "
		                 "existing stores only)", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return tm_errorf(TM_ESTORAGE, "no store at %s: not a directory", dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >= sizeof(path))
		return tm_errorf(TM_EINVAL, "store path is too long");
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return tm_errorf(TM_ESTORAGE, "no store at %s: the directory has no "
		                 "data.mdb (taskmgr opens existing stores only)", dir);
	return TM_OK;
}

int session_open(const char *store, tm_manager **tm)
{
	tm_options o;
	int err = is_uri(store) ? TM_OK : check_lmdb(store);

	*tm = NULL;
	if (err)
		return err;
	err = tm_options_init(&o, TM_OPTIONS_VERSION);
	if (err)
		return err;
	o.path = store;
	o.workers = 0;
	o.keep_count = UINT_MAX;
	o.keep_age_s = KEEP_AGE_NEVER_S;
	return tm_open(&o, tm);
}

cJSON *session_stats(tm_manager *tm, int *err)
{
	char *text;
	cJSON *doc;

	*err = tm_stats(tm, &text);
	if (*err)
		return NULL;
	doc = out_parse(text, err);
	tm_free(text);
	return doc;
}

int session_name(tm_manager *tm, const char *name, unsigned flags, double timeout_s)
{
	tm_job_def d;
	int err;
	cJSON *stats = session_stats(tm, &err);
	bool known = stats && cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(stats, "names"), name) != NULL;

	cJSON_Delete(stats);
	if (err)
		return err;
	if (!known)
		return tm_errorf(TM_EWRONG_DATA, "unknown task name '%.80s': no host has "
		                 "registered it in this store (taskmgr names lists them)",
		                 name);
	err = tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	if (err)
		return err;
	d.name = name;
	d.flags = flags;
	d.max_attempts = UINT_MAX;
	if (timeout_s > 0)
		d.timeout_s = timeout_s;
	return tm_register(tm, &d);
}

int session_body(const char *arg, const char **body, char **owned)
{
	size_t n = 0, cap = 4096;
	char *buf;

	*owned = NULL;
	*body = arg;
	if (strcmp(arg, "-") != 0)
		return TM_OK;
	buf = malloc(cap);
	for (;;) {
		size_t got;

		if (buf == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory reading the body");
		got = fread(buf + n, 1, cap - n - 1, stdin);
		n += got;
		if (got == 0)
			break;
		if (n + 1 == cap) {
			char *p = realloc(buf, cap * 2);

			if (p == NULL)
				free(buf);
			buf = p;
			cap *= 2;
		}
	}
	if (ferror(stdin)) {
		free(buf);
		return tm_errorf(TM_EINVAL, "cannot read the body from standard input");
	}
	buf[n] = '\0';
	*body = *owned = buf;
	return TM_OK;
}
