/* The commands but watch (watch.c): each is one or a few calls of the
 * public API on the store session.c opened, and prints what it returned:
 * the library's JSON as it came with --json, tables and "key  value" lines
 * otherwise.  A command returns TM_OK, a tm_error (main reports it), or an
 * exit status of its own. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- a growing string, for the documents taskmgr composes ---------------- */

struct sb {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* ---- names, stats, check ---------------------------------------------------- */

/* Print a document as it came (--json), or parse it into *doc. */
static int take(const struct cli *c, char *text, cJSON **doc)
{
	int err = TM_OK;

	*doc = NULL;
	if (c->json)
		out_json(text);
	else
		*doc = out_parse(text, &err);
	tm_free(text);
	return err;
}

static int names(tm_manager *tm, const struct cli *c, const struct out *o)
{
	const char *head[9] = { "NAME" };
	const cJSON *n, *e;
	struct table *t;
	cJSON *doc;
	char *text;
	int err = tm_stats(tm, &text);

	if (!err)
		err = take(c, text, &doc);
	if (err || doc == NULL)
		return err;
	n = cJSON_GetObjectItemCaseSensitive(doc, "names");
	if (cJSON_GetArraySize(n) == 0) {
		puts("no task names: no host has registered one in this store");
		cJSON_Delete(doc);
		return TM_OK;
	}
	for (int s = TM_REQUEST_SENT; s <= TM_COMPLETED; s++)
		head[1 + s] = tm_status_name((tm_status)s);
	head[7] = "TOTAL";
	head[8] = "PAUSED";
	t = table_new(9, head, -1);
	err = t ? TM_OK : tm_errorf(TM_ENOMEM, "out of memory");
	cJSON_ArrayForEach(e, n) {
		char counts[7][24];
		const char *row[9] = { e->string };

		for (int k = 0; k < 7; k++) {
			snprintf(counts[k], sizeof(counts[k]), "%.0f",
			         task_num(e, k < 6 ? head[1 + k] : "total"));
			row[1 + k] = counts[k];
		}
		row[8] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "paused")) ? "yes" : "no";
		if (!err)
			err = table_add(t, row);
	}
	if (!err)
		table_print(t, o, stdout);
	table_free(t);
	cJSON_Delete(doc);
	return err;
}

static int stats(tm_manager *tm, const struct cli *c, const struct out *o)
{
	static const char *const sizes[][2] = {
		{ "store_bytes", "store bytes" }, { "free_bytes", "free bytes" },
		{ "map_bytes", "map bytes" },
	};
	cJSON *doc;
	char *text, buf[64];
	int err = tm_stats(tm, &text);

	(void)o;
	if (!err)
		err = take(c, text, &doc);
	if (err || doc == NULL)
		return err;
	printf("%-16s %d\n", "task names",
	       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "names")));
	printf("%-16s %.0f\n", "queue depth", task_num(doc, "queue_depth"));
	if (task_num(doc, "queue_depth") > 0) {
		out_duration(task_num(doc, "oldest_waiting_age_s"), buf, sizeof(buf));
		printf("%-16s %s\n", "oldest waiting", buf);
	}
	/* The figures of this process (commits, workers, the supervisor's)
	 * are taskmgr's own, not the host's: --json has them. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (task_num(doc, sizes[i][0]) < 0)
			continue;
		out_bytes(task_num(doc, sizes[i][0]), buf, sizeof(buf));
		printf("%-16s %s\n", sizes[i][1], buf);
	}
	cJSON_Delete(doc);
	return TM_OK;
}

static int check(tm_manager *tm, const struct cli *c, const struct out *o)
{
	const cJSON *problems, *e;
	cJSON *doc;
	char *text;
	int err = tm_check(tm, &text), n;

	(void)o;
	if (err)
		return err;
	doc = out_parse(text, &err);
	if (doc && c->json)
		out_json(text);
	tm_free(text);
	if (doc == NULL)
		return err;
	problems = cJSON_GetObjectItemCaseSensitive(doc, "problems");
	n = cJSON_GetArraySize(problems);
	if (!c->json && n == 0)
		printf("ok: %.0f task%s, every index agrees with them\n",
		       task_num(doc, "tasks"), task_num(doc, "tasks") == 1 ? "" : "s");
	else if (!c->json)
		printf("%d problem%s in a store of %.0f task%s:\n", n, n == 1 ? "" : "s",
		       task_num(doc, "tasks"), task_num(doc, "tasks") == 1 ? "" : "s");
	cJSON_ArrayForEach(e, problems)
		if (!c->json)
			printf("  %s\n", cJSON_IsString(e) ? e->valuestring : "?");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "ok"))) {
		cJSON_Delete(doc);
		return TM_OK;
	}
	fflush(stdout);
	fprintf(stderr, "taskmgr: check: the store is not consistent (%d problem%s)\n",
	        n, n == 1 ? "" : "s");
	cJSON_Delete(doc);
	return CLI_EXIT_ERROR;
}

/* ---- ls ------------------------------------------------------------------------- */

static int print_list(const struct cli *c, const struct out *o, const char *text)
{
	static const char *const head[] = { "TASK_ID", "STATUS", "PRIO", "NOT_BEFORE",
	                                    "STARTED", "ENDED", "ATTEMPTS", "PROGRESS" };
	const cJSON *tasks, *e;
	struct table *t;
	int err;
	cJSON *doc = out_parse(text, &err);

	if (doc == NULL)
		return err;
	tasks = cJSON_GetObjectItemCaseSensitive(doc, "tasks");
	if (cJSON_GetArraySize(tasks) == 0) {
		printf("no %s%stasks of %s%s\n", c->status >= 0 ? tm_status_name(c->status) : "",
		       c->status >= 0 ? " " : "", c->arg[0],
		       c->page > 1 ? " on this page" : "");
		cJSON_Delete(doc);
		return TM_OK;
	}
	t = table_new(8, head, 1);
	err = t ? TM_OK : tm_errorf(TM_ENOMEM, "out of memory");
	cJSON_ArrayForEach(e, tasks) {
		char started[48], ended[48] = "-", attempts[24], prio[8] = "0", later[48] = "-";
		const char *row[8] = { task_str(e, "task_id"), task_str(e, "status"), prio,
		                       later, started, ended, attempts, task_str(e, "progress") };

		if (cJSON_IsNumber(task_detail(e, "priority")))
			snprintf(prio, sizeof(prio), "%.0f", task_detail(e, "priority")->valuedouble);
		if (cJSON_IsNumber(task_detail(e, "not_before")))
			out_ago(o, task_detail(e, "not_before")->valuedouble, later, sizeof(later));

		out_ago(o, task_num(e, "start_time"), started, sizeof(started));
		if (cJSON_IsNumber(task_detail(e, "end_time")))
			out_ago(o, task_detail(e, "end_time")->valuedouble, ended, sizeof(ended));
		if (cJSON_IsNumber(task_detail(e, "attempts")))
			snprintf(attempts, sizeof(attempts), "%.0f",
			         task_detail(e, "attempts")->valuedouble);
		else
			strcpy(attempts, "-");
		if (!err)
			err = table_add(t, row);
	}
	if (!err)
		table_print(t, o, stdout);
	if (!err && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "has_next")))
		printf("(more on page %.0f)\n", task_num(doc, "next_page"));
	table_free(t);
	cJSON_Delete(doc);
	return err;
}

/* ls --status: --page and --amt count the matching tasks only, so the
 * name's tasks are read newest first, a library page (64) at a time, until
 * the page is full and one more match says whether another follows.  The
 * answer has tm_list_recent's shape, its tasks as the library wrote them. */
#define SCAN_AMT 64

static int filtered(tm_manager *tm, const struct cli *c, struct sb *out)
{
	const char *wanted = tm_status_name((tm_status)c->status), *starts[SCAN_AMT];
	long long page = c->page ? c->page : 1, amt = c->amt ? c->amt : 50;
	long long skip = (page - 1) * amt, matched = 0;
	size_t lens[SCAN_AMT];
	bool more = true, has_next = false;
	struct sb tasks = { 0 };
	char head[96];
	int err = TM_OK;

	for (int lp = 1; more && !has_next && !err; lp++) {
		const cJSON *e, *list;
		cJSON *doc;
		char *text;
		int n, i = 0;

		err = tm_list_recent(tm, c->arg[0], lp, SCAN_AMT, 0, &text);
		if (err)
			break;
		doc = out_parse(text, &err);
		list = cJSON_GetObjectItemCaseSensitive(doc, "tasks");
		n = doc ? out_array_spans(text, "tasks", starts, lens, SCAN_AMT) : 0;
		if (doc && n != cJSON_GetArraySize(list))
			err = tm_errorf(TM_EINVAL, "the library's list is not as expected");
		more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "has_next"));
		cJSON_ArrayForEach(e, list) {
			int at = i++;

			if (err || has_next || strcmp(task_str(e, "status"), wanted) != 0)
				continue;
			if (++matched > skip + amt) {
				has_next = true;
			} else if (matched > skip) {
				if (tasks.n > 0)
					sb_add(&tasks, ",", 1);
				sb_add(&tasks, starts[at], lens[at]);
			}
		}
		cJSON_Delete(doc);
		tm_free(text);
	}
	snprintf(head, sizeof(head), "{\"has_next\":%s,\"next_page\":%lld,\"tasks\":[",
	         has_next ? "true" : "false", page + 1);
	sb_str(out, head);
	sb_add(out, tasks.p ? tasks.p : "", tasks.n);
	sb_add(out, "]}", 2);
	free(tasks.p);
	if (!err && (out->oom || tasks.oom))
		err = tm_errorf(TM_ENOMEM, "out of memory");
	return err;
}

static int ls(tm_manager *tm, const struct cli *c, const struct out *o)
{
	char *text;
	struct sb b = { 0 };
	int err = session_name(tm, c->arg[0], 0, 0);

	if (err)
		return err;
	if (c->status < 0) {
		err = tm_list_recent(tm, c->arg[0], c->page, c->amt, 0, &text);
		if (err)
			return err;
		if (c->json)
			out_json(text);
		else
			err = print_list(c, o, text);
		tm_free(text);
		return err;
	}
	err = filtered(tm, c, &b);
	if (!err && c->json)
		out_json(b.p);
	else if (!err)
		err = print_list(c, o, b.p);
	free(b.p);
	return err;
}

/* ---- one task ----------------------------------------------------------------- */

/* Print a task document: as it came, or as "key  value" lines. */
static int task_out(const struct cli *c, const struct out *o, char *text)
{
	cJSON *doc;
	int err = take(c, text, &doc);

	if (doc)
		out_task(o, doc, stdout);
	cJSON_Delete(doc);
	return err;
}

static int show(tm_manager *tm, const struct cli *c, const struct out *o)
{
	char *text;
	int err = session_name(tm, c->arg[0], 0, 0);

	if (!err)
		err = tm_get(tm, c->arg[0], c->arg[1], 0, &text);
	return err ? err : task_out(c, o, text);
}

/* A {"task_id": ...} answer: the id alone on a line, or the JSON. */
static int id_out(const struct cli *c, char *text)
{
	cJSON *doc = NULL;
	int err = take(c, text, &doc);

	if (doc)
		puts(task_str(doc, "task_id"));
	cJSON_Delete(doc);
	return err;
}

static int trigger(tm_manager *tm, const struct cli *c, const struct out *o)
{
	const char *body = NULL;
	char *owned = NULL, *text;
	int err = session_name(tm, c->arg[0], c->exclusive ? TM_JOB_EXCLUSIVE : 0,
	                       c->timeout_s);

	(void)o;
	if (!err && c->n_args > 1)
		err = session_body(c->arg[1], &body, &owned);
	if (!err)
		err = tm_trigger(tm, c->arg[0], body, 0, &text);
	free(owned);
	return err ? err : id_out(c, text);
}

static int patch(tm_manager *tm, const struct cli *c, const struct out *o)
{
	const char *body;
	char *owned = NULL, *text;
	int err = session_name(tm, c->arg[0], 0, 0);

	if (!err)
		err = session_body(c->arg[2], &body, &owned);
	if (!err)
		err = tm_patch(tm, c->arg[0], c->arg[1], body, &text);
	free(owned);
	return err ? err : task_out(c, o, text);
}

static int cancel(tm_manager *tm, const struct cli *c, const struct out *o)
{
	char *text;
	int err = session_name(tm, c->arg[0], 0, 0);

	if (!err)
		err = tm_cancel(tm, c->arg[0], c->arg[1], &text);
	return err ? err : task_out(c, o, text);
}

static int retry(tm_manager *tm, const struct cli *c, const struct out *o)
{
	char *text;
	int err = session_name(tm, c->arg[0], 0, 0);

	(void)o;
	if (!err)
		err = tm_retry(tm, c->arg[0], c->arg[1], &text);
	return err ? err : id_out(c, text);
}

static int pause_resume(tm_manager *tm, const struct cli *c)
{
	bool pause = c->cmd == CMD_PAUSE;
	int err = session_name(tm, c->arg[0], 0, 0);

	if (!err)
		err = pause ? tm_pause(tm, c->arg[0]) : tm_resume(tm, c->arg[0]);
	if (!err && c->json)
		printf("{\"name\":\"%s\",\"paused\":%s}\n", c->arg[0], pause ? "true" : "false");
	else if (!err)
		printf("%s %s\n", c->arg[0], pause ? "paused" : "resumed");
	return err;
}

/* ---- backup ------------------------------------------------------------------- */

static int backup(tm_manager *tm, const struct cli *c, const struct out *o)
{
	int err = tm_backup(tm, c->arg[0]);

	(void)o;
	if (!err && !c->json)
		printf("backup of %s written to %s\n", c->store, c->arg[0]);
	return err;
}

int cmd_run(tm_manager *tm, const struct cli *c, const struct out *o)
{
	switch (c->cmd) {
	case CMD_NAMES: return names(tm, c, o);
	case CMD_LS: return ls(tm, c, o);
	case CMD_SHOW: return show(tm, c, o);
	case CMD_TRIGGER: return trigger(tm, c, o);
	case CMD_PATCH: return patch(tm, c, o);
	case CMD_CANCEL: return cancel(tm, c, o);
	case CMD_RETRY: return retry(tm, c, o);
	case CMD_PAUSE:
	case CMD_RESUME: return pause_resume(tm, c);
	case CMD_STATS: return stats(tm, c, o);
	case CMD_CHECK: return check(tm, c, o);
	case CMD_WATCH: return cmd_watch(tm, c, o);
	case CMD_BACKUP: return backup(tm, c, o);
	case CMD_NONE: break;
	}
	return tm_errorf(TM_EINVAL, "no command");
}
