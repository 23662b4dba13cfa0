/* The private table jobs data_import, reco_export and
 * user_id_whitelist_export, over LOCAL tables (CSV, plain or gzip). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "csv.h"
#include "jobs.h"

#define PROGRESS_EVERY 1000  /* rows between progress reports */
#define WARN_MAX 10          /* warnings kept per task; later ones counted */
#define WHITELIST_MAX 1000000

tm_status srv_job_fail_last(tm_job *job, const char *what)
{
	char msg[512];

	/* Copy first: tm_job_fail may itself set the thread's message. */
	snprintf(msg, sizeof(msg), "%s", tm_last_error());
	return tm_job_fail(job, "%s: %s", what, msg);
}

/* Send a progress object and free it. */
static void progress(tm_job *job, cJSON *p)
{
	char *s = p ? cJSON_PrintUnformatted(p) : NULL;

	if (s)
		tm_job_progress(job, s);
	cJSON_free(s);
	cJSON_Delete(p);
}

/* ---- data_import --------------------------------------------------------- */

static const char *infer_resource(const char *const *f, size_t n)
{
	int user = srv_csv_column(f, n, "user_id") >= 0;
	int item = srv_csv_column(f, n, "item_id") >= 0;

	if (user && item)
		return "INTERACTION";
	return item ? "ITEM" : user ? "USER" : "UNKNOWN";
}

static cJSON *import_progress(uint64_t rows)
{
	cJSON *p = cJSON_CreateObject();
	char msg[64];

	snprintf(msg, sizeof(msg), "%llu rows uploaded", (unsigned long long)rows);
	if (p && (!cJSON_AddNumberToObject(p, "rows", (double)rows) ||
	          !cJSON_AddStringToObject(p, "message", msg))) {
		cJSON_Delete(p);
		return NULL;
	}
	return p;
}

/* The progress fields of a data_import (doc/http.md), once the header is
 * read. */
static cJSON *import_start(const srv_import_ctx *c, const char *const *f,
                           size_t n)
{
	cJSON *p = import_progress(0), *cols;

	if (p == NULL || (cols = cJSON_AddArrayToObject(p, "columns")) == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++)
		if (!cJSON_AddItemToArray(cols, cJSON_CreateString(f[i])))
			goto oom;
	if (!cJSON_AddStringToObject(p, "resource", c->resource[0] ? c->resource :
	                             infer_resource(f, n)) ||
	    !cJSON_AddStringToObject(p, "extension", "csv") ||
	    !cJSON_AddStringToObject(p, "connection", "LOCAL") ||
	    !cJSON_AddStringToObject(p, "table_name", c->in.name) ||
	    !cJSON_AddStringToObject(p, "compression", c->in.gzip ? "gzip" : "N/A") ||
	    !cJSON_AddNumberToObject(p, "init_time_stamp", (double)time(NULL)))
		goto oom;
	return p;
oom:
	cJSON_Delete(p);
	return NULL;
}

/* What a completed import hands to the job that follows it (ml_new_items,
 * doc/http.md): the table it read, what its rows are, and how many. */
static void import_output(tm_job *job, const srv_import_ctx *c,
                          const char *resource, uint64_t rows)
{
	cJSON *o = cJSON_CreateObject(), *t;
	char *s = NULL;

	if (o && (t = cJSON_AddObjectToObject(o, "input_table")) != NULL &&
	    cJSON_AddStringToObject(t, "connection", "LOCAL") &&
	    cJSON_AddStringToObject(t, "name", c->in.name) &&
	    cJSON_AddStringToObject(o, "resource", resource) &&
	    cJSON_AddNumberToObject(o, "rows", (double)rows))
		s = cJSON_PrintUnformatted(o);
	if (s)
		tm_job_output(job, s);
	cJSON_free(s);
	cJSON_Delete(o);
}

static tm_status run_import(tm_job *job, void *user)
{
	const srv_jobs *jobs = user;
	const char *const *f;
	srv_import_ctx c;
	srv_csv *r = NULL;
	uint64_t rows = 0, bad = 0;
	size_t n, ncols = 0;
	const char *resource = "UNKNOWN";
	tm_status st = TM_COMPLETED;
	int dirfd = -1, rc;

	/* tm_job_secret(job) holds the caller's refresh_token: a GCS or S3
	 * driver would authenticate with it.  LOCAL tables need none, and the
	 * secret is never copied into progress, warnings or logs. */
	rc = srv_ctx_import(tm_job_payload(job), -1, &c);
	if (!rc)
		rc = srv_tables_dir_open(jobs->tables_dir, &dirfd);
	if (!rc)
		rc = srv_csv_open(dirfd, &c.in, &r);
	if (rc)
		goto out;
	rc = srv_csv_next(r, &f, &n);
	if (rc == 1) {
		ncols = n;
		resource = c.resource[0] ? c.resource : infer_resource(f, n);
		progress(job, import_start(&c, f, n));
	} else if (rc == 0) {
		resource = c.resource[0] ? c.resource : infer_resource(NULL, 0);
		progress(job, import_start(&c, NULL, 0));
		tm_job_warn(job, "table %s is empty", c.in.name);
	}
	while (rc == 1 && (rc = srv_csv_next(r, &f, &n)) == 1) {
		rows++;
		if (n != ncols && ++bad <= WARN_MAX)
			tm_job_warn(job, "line %llu has %zu fields, the header %zu",
			            (unsigned long long)srv_csv_line(r), n, ncols);
		if (rows % PROGRESS_EVERY == 0) {
			progress(job, import_progress(rows));
			if (tm_job_cancelled(job)) {
				st = TM_CANCELLED;
				break;
			}
		}
	}
	if (rc >= 0)
		progress(job, import_progress(rows));
	if (rc >= 0 && st == TM_COMPLETED)
		import_output(job, &c, resource, rows);
	if (bad > WARN_MAX)
		tm_job_warn(job, "%llu rows in all have the wrong number of fields",
		            (unsigned long long)bad);
out:
	if (rc < 0)
		st = srv_job_fail_last(job, "data_import");
	srv_csv_close(r);
	if (dirfd >= 0)
		close(dirfd);
	return st;
}

/* ---- reco_export --------------------------------------------------------- */

static cJSON *reco_progress(const char *msg, uint64_t total, uint64_t done,
                            uint64_t failed, uint64_t warnings)
{
	cJSON *p = cJSON_CreateObject();

	if (p && (!cJSON_AddStringToObject(p, "message", msg) ||
	          !cJSON_AddNumberToObject(p, "n_total", (double)total) ||
	          !cJSON_AddNumberToObject(p, "n_processed", (double)done) ||
	          !cJSON_AddNumberToObject(p, "n_failed", (double)failed) ||
	          !cJSON_AddNumberToObject(p, "n_warnings", (double)warnings) ||
	          !cJSON_AddBoolToObject(p, "has_counts", 1))) {
		cJSON_Delete(p);
		return NULL;
	}
	return p;
}

/* Open the input and read its header; *col is the user_id column. */
static int open_users(int dirfd, const srv_table *t, srv_csv **r, long *col)
{
	const char *const *f;
	size_t n;
	int rc = srv_csv_open(dirfd, t, r);

	if (rc)
		return rc;
	rc = srv_csv_next(*r, &f, &n);
	*col = rc == 1 ? srv_csv_column(f, n, "user_id") : -1;
	if (rc >= 0 && *col < 0)
		rc = tm_errorf(TM_EWRONG_DATA, "table %s has no user_id column",
		               t->name);
	return rc < 0 ? rc : TM_OK;
}

/* The example's recommender: amt distinct item ids, stable per user. */
static int write_recos(srv_out *o, const char *user, int amt)
{
	char items[100 * 12] = "", *p = items;
	const char *row[2];
	uint32_t h = 2166136261u;

	for (const char *s = user; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	for (int k = 0; k < amt; k++)
		p += sprintf(p, "%sitem-%05u", k ? " " : "",
		             (unsigned)((h + (uint32_t)k * 7919u) % 100000u));
	row[0] = user;
	row[1] = items;
	return srv_csv_write_row(o, row, 2);
}

static tm_status run_reco(tm_job *job, void *user)
{
	const srv_jobs *jobs = user;
	static const char *const header[] = { "user_id", "items" };
	const char *const *f;
	srv_reco_ctx c;
	srv_csv *r = NULL;
	srv_out *o = NULL;
	uint64_t total = 0, done = 0, failed = 0, warnings = 0;
	size_t n;
	long col;
	tm_status st = TM_COMPLETED;
	int dirfd = -1, rc;

	rc = srv_ctx_reco(tm_job_payload(job), -1, &c);
	if (!rc)
		rc = srv_tables_dir_open(jobs->tables_dir, &dirfd);
	/* First pass: count the users, so that progress has counts. */
	if (!rc)
		rc = open_users(dirfd, &c.in, &r, &col);
	while (rc == TM_OK && (rc = srv_csv_next(r, &f, &n)) == 1) {
		total++;
		rc = TM_OK;
	}
	srv_csv_close(r);
	r = NULL;
	if (rc < 0)
		goto out;
	progress(job, reco_progress("Computing and uploading recommendations",
	                            total, 0, 0, 0));
	rc = open_users(dirfd, &c.in, &r, &col);
	if (!rc)
		rc = srv_out_create(dirfd, &c.out, &o);
	if (!rc)
		rc = srv_csv_write_row(o, header, 2);
	while (!rc && (rc = srv_csv_next(r, &f, &n)) == 1) {
		rc = TM_OK;
		done++;
		if ((size_t)col >= n || f[col][0] == '\0') {
			failed++;
			if (++warnings <= WARN_MAX)
				tm_job_warn(job, "line %llu has no user_id",
				            (unsigned long long)srv_csv_line(r));
		} else {
			rc = write_recos(o, f[col], c.amt);
		}
		if (done % PROGRESS_EVERY == 0) {
			progress(job, reco_progress("Computing and uploading "
			                            "recommendations", total, done,
			                            failed, warnings));
			if (tm_job_cancelled(job)) {
				st = TM_CANCELLED;
				break;
			}
		}
	}
	if (rc >= 0 && st == TM_COMPLETED) {
		rc = srv_out_commit(o);
		o = NULL;
	}
	if (rc >= 0) {
		char msg[320];
		snprintf(msg, sizeof(msg), "%s %llu users to %s",
		         st == TM_COMPLETED ? "exported recommendations for" :
		         "cancelled after", (unsigned long long)(done - failed),
		         c.out.name);
		progress(job, reco_progress(msg, total, done, failed, warnings));
	}
out:
	if (rc < 0)
		st = srv_job_fail_last(job, "reco_export");
	srv_out_abort(o);
	srv_csv_close(r);
	if (dirfd >= 0)
		close(dirfd);
	return st;
}

/* ---- user_id_whitelist_export -------------------------------------------- */

struct idset {
	char **v;
	size_t n, cap;
	int full;
};

static int idset_add(struct idset *s, const char *id)
{
	if (s->n == WHITELIST_MAX) {
		s->full = 1;
		return TM_OK;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = strdup(id);
	if (s->v[s->n] == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	s->n++;
	return TM_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect the user_id column of one table; 1 when it had none. */
static int collect(tm_job *job, int dirfd, const srv_table *t, struct idset *s)
{
	const char *const *f;
	srv_csv *r;
	size_t n;
	long col;
	uint64_t rows = 0;
	int rc = open_users(dirfd, t, &r, &col);

	if (rc) {
		srv_csv_close(r);
		return 1;   /* not a user table: skipped */
	}
	while ((rc = srv_csv_next(r, &f, &n)) == 1 && !s->full) {
		if ((size_t)col < n && f[col][0] && (rc = idset_add(s, f[col])) < 0)
			break;
		if (++rows % PROGRESS_EVERY == 0 && tm_job_cancelled(job))
			break;
	}
	srv_csv_close(r);
	if (rc < 0 && rc != TM_ENOMEM) {
		tm_job_warn(job, "skipped part of table %s: %s", t->name,
		            tm_last_error());
		rc = TM_OK;
	}
	return rc < 0 ? rc : 0;
}

static tm_status run_whitelist(tm_job *job, void *user)
{
	const srv_jobs *jobs = user;
	struct idset s = { 0 };
	srv_output_ctx c;
	srv_out *o = NULL;
	DIR *d = NULL;
	struct dirent *e;
	size_t tables = 0, uniq = 0;
	tm_status st = TM_COMPLETED;
	int dirfd = -1, dfd, rc;

	rc = srv_ctx_output(tm_job_payload(job), 1, &c);
	if (!rc)
		rc = srv_tables_dir_open(jobs->tables_dir, &dirfd);
	if (!rc && ((dfd = dup(dirfd)) < 0 || (d = fdopendir(dfd)) == NULL)) {
		if (dfd >= 0)
			close(dfd);
		rc = tm_errorf(TM_ESTORAGE, "cannot list the tables directory");
	}
	while (!rc && (e = readdir(d)) != NULL && !tm_job_cancelled(job)) {
		srv_table t;

		if (srv_table_set(&t, e->d_name, "table", 1) != TM_OK ||
		    strcmp(t.name, c.out.name) == 0)
			continue;
		rc = collect(job, dirfd, &t, &s);
		tables += rc == 0;
		rc = rc == 1 ? TM_OK : rc;
	}
	if (!rc && tm_job_cancelled(job))
		st = TM_CANCELLED;
	if (!rc && st == TM_COMPLETED) {
		qsort(s.v, s.n, sizeof(*s.v), cmp_str);
		rc = srv_out_create(dirfd, &c.out, &o);
		if (!rc)
			rc = srv_out_write(o, "user_id\n", 8);
		for (size_t i = 0; i < s.n && !rc; i++) {
			if (i && strcmp(s.v[i], s.v[i - 1]) == 0)
				continue;
			uniq++;
			rc = srv_csv_write_row(o, (const char *const *)&s.v[i], 1);
		}
		if (!rc) {
			rc = srv_out_commit(o);
			o = NULL;
		}
	}
	if (!rc && s.full)
		tm_job_warn(job, "stopped collecting at %d user ids", WHITELIST_MAX);
	if (!rc && st == TM_COMPLETED) {
		char msg[320];
		cJSON *p = cJSON_CreateObject();

		snprintf(msg, sizeof(msg), "exported %zu user ids from %zu table%s "
		         "to %s", uniq, tables, tables == 1 ? "" : "s", c.out.name);
		if (p && cJSON_AddStringToObject(p, "message", msg) &&
		    cJSON_AddNumberToObject(p, "n_user_ids", (double)uniq))
			cJSON_AddNumberToObject(p, "n_tables", (double)tables);
		progress(job, p);
	}
	if (rc)
		st = srv_job_fail_last(job, "user_id_whitelist_export");
	srv_out_abort(o);
	if (d)
		closedir(d);
	if (dirfd >= 0)
		close(dirfd);
	for (size_t i = 0; i < s.n; i++)
		free(s.v[i]);
	free(s.v);
	return st;
}

/* ---- registration -------------------------------------------------------- */

int srv_jobs_register_tables(srv_jobs *jobs)
{
	static const struct {
		const char *name;
		tm_status (*run)(tm_job *, void *);
		int (*validate)(const char *, void *);
		const char *then;
	} defs[] = {
		/* The recommender's pipeline: new items are fitted into the
		 * model as soon as they are imported. */
		{ "data_import", run_import, srv_validate_import, "ml_new_items" },
		{ "reco_export", run_reco, srv_validate_reco, NULL },
		{ "user_id_whitelist_export", run_whitelist, srv_validate_whitelist, NULL },
		{ "analytics_report_export", srv_run_report, srv_validate_report, NULL },
	};

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		tm_job_def d;
		int err;

		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = defs[i].name;
		d.run = defs[i].run;
		d.validate = defs[i].validate;
		d.then = defs[i].then;
		d.user = jobs;
		err = tm_register(jobs->tm, &d);
		if (err)
			return err;
	}
	return TM_OK;
}
