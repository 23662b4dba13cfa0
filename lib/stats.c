/* The store's figures: tm_notify (the durable change counter), tm_stats and
 * tm_check. */
#include "open.h"
#include "error.h"
#include "id.h"
#include "running.h"

struct notify_ctx {
	const char *name;
	uint64_t n;
};

static int notify_txn(tm__txn *txn, void *p)
{
	struct notify_ctx *c = p;

	return tm__store_add_changes(txn, c->name, c->n);
}

int tm_notify(tm_manager *tm, const char *name, uint64_t n_changes)
{
	struct notify_ctx c = { name, n_changes };
	int err = tm__enter(tm, NULL);

	if (err)
		return err;
	if (tm__registry_lookup(tm->reg, name, 0, &err) == NULL)
		return err;
	if (n_changes == 0)
		return TM_OK;
	err = tm__store_write(tm->store, notify_txn, &c);
	if (!err)
		tm__running_wake(tm);
	return err;
}

static int stats_name(tm__txn *txn, const char *name, void *p)
{
	cJSON *names = p, *o = cJSON_AddObjectToObject(names, name);
	tm__name_stats st;
	uint64_t total = 0;
	int err = tm__store_name_stats(txn, name, &st);

	if (err)
		return err;
	if (o == NULL)
		return tm__error_oom();
	for (int s = 0; s < TM__STATUS_COUNT; s++) {
		total += st.by_status[s];
		if (!cJSON_AddNumberToObject(o, tm_status_name((tm_status)s),
		                             (double)st.by_status[s]))
			return tm__error_oom();
	}
	if (!cJSON_AddNumberToObject(o, "total", (double)total) ||
	    !cJSON_AddNumberToObject(o, "changes", (double)st.changes))
		return tm__error_oom();
	return TM_OK;
}

static int stats_txn(tm__txn *txn, void *p)
{
	cJSON *out = p, *names = cJSON_AddObjectToObject(out, "names");
	uint64_t depth, used, free_bytes, map;
	int64_t head, now = tm__txn_now(txn);
	int err;

	if (names == NULL)
		return tm__error_oom();
	err = tm__store_names(txn, stats_name, names);
	if (err)
		return err;
	err = tm__store_queue_head(txn, &depth, &head);
	if (err)
		return err;
	tm__store_size(txn, &used, &free_bytes, &map);
	if (!cJSON_AddNumberToObject(out, "queue_depth", (double)depth) ||
	    !cJSON_AddNumberToObject(out, "oldest_waiting_age_s",
	                             depth && head < now ? (double)(now - head) / 1e6 : 0) ||
	    !cJSON_AddNumberToObject(out, "store_bytes", (double)used) ||
	    !cJSON_AddNumberToObject(out, "free_bytes", (double)free_bytes) ||
	    !cJSON_AddNumberToObject(out, "map_bytes", (double)map))
		return tm__error_oom();
	return TM_OK;
}

/* This process's workers: how many, and how many wait for work; and its
 * supervisor's ticks and their CPU time. */
static bool add_workers(tm_manager *tm, cJSON *out)
{
	struct tm__runtime *rt = tm->rt;
	unsigned n = 0, idle = 0;
	double ticks = 0, cpu_s = 0;

	if (rt) {
		pthread_mutex_lock(&rt->mu);
		n = rt->n_workers;
		idle = rt->n_idle;
		pthread_mutex_unlock(&rt->mu);
		ticks = (double)atomic_load(&rt->sup_ticks);
		cpu_s = (double)atomic_load(&rt->sup_cpu_ns) / 1e9;
	}
	return cJSON_AddNumberToObject(out, "workers", n) &&
	       cJSON_AddNumberToObject(out, "workers_idle", idle) &&
	       cJSON_AddNumberToObject(out, "supervisor_ticks", ticks) &&
	       cJSON_AddNumberToObject(out, "supervisor_cpu_s", cpu_s);
}

int tm_stats(tm_manager *tm, char **out_json)
{
	cJSON *out;
	int err = tm__enter(tm, out_json);

	if (err)
		return err;
	out = cJSON_CreateObject();
	if (out == NULL)
		return tm__error_oom();
	err = tm__store_read(tm->store, stats_txn, out);
	if (err) {
		cJSON_Delete(out);
		return err;
	}
	if (!cJSON_AddNumberToObject(out, "commits",
	                             (double)tm__store_commits(tm->store)) ||
	    !add_workers(tm, out)) {
		cJSON_Delete(out);
		return tm__error_oom();
	}
	return tm__emit(out, out_json);
}

struct check_ctx {
	cJSON *problems;
	uint64_t n;
};

static int check_txn(tm__txn *txn, void *p)
{
	struct check_ctx *c = p;

	return tm__store_check(txn, c->problems, &c->n);
}

int tm_check(tm_manager *tm, char **out_json)
{
	struct check_ctx c;
	cJSON *out;
	int err = tm__enter(tm, out_json);

	if (err)
		return err;
	out = cJSON_CreateObject();
	c.problems = cJSON_CreateArray();
	c.n = 0;
	if (out == NULL || c.problems == NULL) {
		cJSON_Delete(out);
		cJSON_Delete(c.problems);
		return tm__error_oom();
	}
	err = tm__store_read(tm->store, check_txn, &c);
	if (err) {
		cJSON_Delete(out);
		cJSON_Delete(c.problems);
		return err;
	}
	cJSON_AddBoolToObject(out, "ok", cJSON_GetArraySize(c.problems) == 0);
	cJSON_AddNumberToObject(out, "tasks", (double)c.n);
	cJSON_AddItemToObject(out, "problems", c.problems);
	return tm__emit(out, out_json);
}
