/* The context_task of the four table jobs: parsed and checked here, once by
 * the validate hook at trigger time (so a bad table is refused before any
 * task is stored) and again by the handler when it runs. */
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "csv.h"
#include "jobs.h"

static cJSON *parse_object(const char *json, int *err)
{
	cJSON *j = cJSON_Parse(json ? json : "{}");

	*err = TM_OK;
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		*err = tm_errorf(TM_EWRONG_DATA, "context_task must be an object");
		return NULL;
	}
	return j;
}

static int unknown(const cJSON *f)
{
	return tm_errorf(TM_EWRONG_DATA, "context_task: unknown field '%.64s'",
	                 f->string);
}

/* The input table must exist and, with @p column, have it in its header. */
static int check_input(int dirfd, const srv_table *t, const char *what,
                       const char *column)
{
	const char *const *f;
	srv_csv *r;
	size_t n;
	int rc = srv_table_exists(dirfd, t, what);

	if (rc || column == NULL)
		return rc;
	rc = srv_csv_open(dirfd, t, &r);
	if (rc)
		return rc;
	rc = srv_csv_next(r, &f, &n);
	if (rc == 1)
		rc = srv_csv_column(f, n, column) >= 0 ? TM_OK :
		     tm_errorf(TM_EWRONG_DATA, "%s: table %s has no %s column in "
		               "its header", what, t->name, column);
	else if (rc == 0)
		rc = tm_errorf(TM_EWRONG_DATA, "%s: table %s is empty", what, t->name);
	srv_csv_close(r);
	return rc;
}

int srv_ctx_import(const char *json, int dirfd, srv_import_ctx *out)
{
	const cJSON *name = NULL, *conn = NULL, *res = NULL;
	cJSON *j;
	int err;

	memset(out, 0, sizeof(*out));
	j = parse_object(json, &err);
	if (j == NULL)
		return err;
	for (const cJSON *f = j->child; f && !err; f = f->next) {
		/* The REST API's examples use both "table_name" (request) and "name"
		 * (payload). */
		if (strcmp(f->string, "table_name") == 0 ||
		    strcmp(f->string, "name") == 0) {
			if (name)
				err = tm_errorf(TM_EWRONG_DATA, "context_task: give "
				                "table_name or name, not both");
			name = f;
		} else if (strcmp(f->string, "connection") == 0)
			conn = f;
		else if (strcmp(f->string, "resource") == 0)
			res = f;
		else
			err = unknown(f);
	}
	if (!err)
		err = srv_table_connection_check(conn, "context_task");
	if (!err && !cJSON_IsString(name))
		err = tm_errorf(TM_EWRONG_DATA, "context_task: table_name must be "
		                "a string");
	if (!err && res && (!cJSON_IsString(res) ||
	                    strlen(res->valuestring) >= sizeof(out->resource) ||
	                    strspn(res->valuestring, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") !=
	                    strlen(res->valuestring)))
		err = tm_errorf(TM_EWRONG_DATA, "context_task: resource must be an "
		                "upper-case name such as ITEM or USER");
	if (!err)
		err = srv_table_set(&out->in, name->valuestring, "context_task", 1);
	if (!err && res)
		strcpy(out->resource, res->valuestring);
	if (!err && dirfd >= 0)
		err = check_input(dirfd, &out->in, "context_task", NULL);
	cJSON_Delete(j);
	return err;
}

/* "prop:op:value", op one of eq, ne, lt, le, gt, ge, in, nin. */
static int filter_ok(const char *s)
{
	static const char *const ops[] = { "eq", "ne", "lt", "le", "gt", "ge",
	                                   "in", "nin" };
	const char *a = strchr(s, ':'), *b = a ? strchr(a + 1, ':') : NULL;

	if (a == NULL || b == NULL || a == s || b[1] == '\0')
		return 0;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strlen(ops[i]) == (size_t)(b - a - 1) &&
		    strncmp(ops[i], a + 1, (size_t)(b - a - 1)) == 0)
			return 1;
	return 0;
}

static int reco_params(const cJSON *p, srv_reco_ctx *out)
{
	if (p == NULL)
		return TM_OK;
	if (!cJSON_IsObject(p))
		return tm_errorf(TM_EWRONG_DATA, "reco_params must be an object");
	for (const cJSON *f = p->child; f; f = f->next) {
		if (strcmp(f->string, "amt") == 0) {
			if (!cJSON_IsNumber(f) || f->valuedouble != (double)(int)f->valuedouble ||
			    f->valueint < 1 || f->valueint > 100)
				return tm_errorf(TM_EWRONG_DATA, "reco_params.amt must be "
				                 "an integer from 1 to 100");
			out->amt = f->valueint;
		} else if (strcmp(f->string, "filters") == 0) {
			const cJSON *x;

			if (!cJSON_IsArray(f))
				return tm_errorf(TM_EWRONG_DATA, "reco_params.filters "
				                 "must be a list of strings");
			cJSON_ArrayForEach(x, f) {
				if (!cJSON_IsString(x) || !filter_ok(x->valuestring))
					return tm_errorf(TM_EWRONG_DATA, "reco_params.filters: "
					                 "each filter is 'property:op:value' with "
					                 "op eq, ne, lt, le, gt, ge, in or nin");
				out->n_filters++;
			}
		} else {
			return tm_errorf(TM_EWRONG_DATA, "reco_params: unknown field "
			                 "'%.64s'", f->string);
		}
	}
	return TM_OK;
}

int srv_ctx_reco(const char *json, int dirfd, srv_reco_ctx *out)
{
	const cJSON *in = NULL, *o = NULL, *p = NULL;
	cJSON *j;
	int err;

	memset(out, 0, sizeof(*out));
	out->amt = 10;
	j = parse_object(json, &err);
	if (j == NULL)
		return err;
	for (const cJSON *f = j->child; f && !err; f = f->next) {
		if (strcmp(f->string, "input_table") == 0)
			in = f;
		else if (strcmp(f->string, "output_table") == 0)
			o = f;
		else if (strcmp(f->string, "reco_params") == 0)
			p = f;
		else
			err = unknown(f);
	}
	if (!err)
		err = srv_table_parse(in, "input_table", 1, &out->in);
	if (!err)
		err = srv_table_parse(o, "output_table", 1, &out->out);
	if (!err)
		err = reco_params(p, out);
	if (!err && strcmp(out->in.name, out->out.name) == 0)
		err = tm_errorf(TM_EWRONG_DATA, "output_table must differ from "
		                "input_table");
	if (!err && dirfd >= 0)
		err = check_input(dirfd, &out->in, "input_table", "user_id");
	cJSON_Delete(j);
	return err;
}

int srv_ctx_output(const char *json, int need_csv, srv_output_ctx *out)
{
	const cJSON *o = NULL;
	cJSON *j;
	int err;

	memset(out, 0, sizeof(*out));
	j = parse_object(json, &err);
	if (j == NULL)
		return err;
	for (const cJSON *f = j->child; f && !err; f = f->next) {
		if (strcmp(f->string, "output_table") == 0)
			o = f;
		else
			err = unknown(f);
	}
	if (!err)
		err = srv_table_parse(o, "output_table", need_csv, &out->out);
	cJSON_Delete(j);
	return err;
}

/* ---- validate hooks ------------------------------------------------------ */

/* The directory is checked first: without it (RESOURCE_NOT_FOUND) no table
 * of the connection can be found. */
static int with_dir(const srv_jobs *jobs, int *dirfd)
{
	return srv_tables_dir_open(jobs->tables_dir, dirfd);
}

int srv_validate_import(const char *context_json, void *user)
{
	srv_import_ctx c;
	int dirfd, err = srv_ctx_import(context_json, -1, &c);

	if (!err)
		err = with_dir(user, &dirfd);
	if (!err) {
		err = srv_ctx_import(context_json, dirfd, &c);
		close(dirfd);
	}
	return err;
}

int srv_validate_reco(const char *context_json, void *user)
{
	srv_reco_ctx c;
	int dirfd, err = srv_ctx_reco(context_json, -1, &c);

	if (!err)
		err = with_dir(user, &dirfd);
	if (!err) {
		err = srv_ctx_reco(context_json, dirfd, &c);
		close(dirfd);
	}
	return err;
}

static int validate_output(const char *context_json, void *user, int need_csv)
{
	srv_output_ctx c;
	int dirfd, err = srv_ctx_output(context_json, need_csv, &c);

	if (!err)
		err = with_dir(user, &dirfd);
	if (!err)
		close(dirfd);
	return err;
}

int srv_validate_whitelist(const char *context_json, void *user)
{
	return validate_output(context_json, user, 1);
}

int srv_validate_report(const char *context_json, void *user)
{
	return validate_output(context_json, user, 0);
}
