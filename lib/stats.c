/* The store's figures: tm_notify (the durable change counter), tm_stats,
 * tm_check, and tm_metrics (its counters are metrics.c's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct stats_ctx {
	tm_manager *tm;
	cJSON *out, *names;
};

/* A rate limit registered here: its figures and the tokens its bucket
 * holds now. */
static int stats_rate(tm__txn *txn, tm_manager *tm, const char *name, cJSON *o)
{
	const tm__jobreg *reg = tm__registry_find(tm->reg, name);
	double tokens;
	cJSON *r;
	int err;

	if (reg == NULL || reg->def.rate_per_s == 0)
		return TM_OK;
	err = tm__store_rate_tokens(txn, name, reg->def.rate_per_s, reg->def.burst, &tokens);
	if (err)
		return err;
	r = cJSON_AddObjectToObject(o, "rate");
	if (r == NULL || !cJSON_AddNumberToObject(r, "per_s", reg->def.rate_per_s) ||
	    !cJSON_AddNumberToObject(r, "burst", reg->def.burst) ||
	    !cJSON_AddNumberToObject(r, "tokens", tokens))
		return tm__error_oom();
	return TM_OK;
}

static int stats_name(tm__txn *txn, const char *name, void *p)
{
	struct stats_ctx *c = p;
	cJSON *o = cJSON_AddObjectToObject(c->names, name);
	tm__name_stats st;
	uint64_t total = 0;
	bool paused;
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
	err = tm__store_paused(txn, name, &paused);
	if (err)
		return err;
	if (!cJSON_AddNumberToObject(o, "total", (double)total) ||
	    !cJSON_AddNumberToObject(o, "changes", (double)st.changes) ||
	    !cJSON_AddBoolToObject(o, "paused", paused))
		return tm__error_oom();
	return stats_rate(txn, c->tm, name, o);
}

/* names.<name>.cron_next of each name this process registered with a
 * cron schedule: the next due time the schedule has not dealt with yet
 * (in the past while it waits for the supervisor's next tick). */
static int stats_crons(tm__txn *txn, tm_manager *tm, cJSON *names)
{
	const tm__jobreg **regs;
	size_t n;
	int err = tm__registry_list(tm->reg, &regs, &n);

	for (size_t i = 0; !err && i < n; i++) {
		cJSON *o = cJSON_GetObjectItemCaseSensitive(names, regs[i]->name);
		int64_t state, next;
		bool found;

		if (regs[i]->def.cron == NULL || o == NULL)
			continue;
		err = tm__store_cron_get(txn, regs[i]->name, &state, &found);
		next = tm__registry_cron_next(regs[i], found ? state : tm__txn_now(txn));
		if (!err && next >= 0 && !cJSON_AddNumberToObject(o, "cron_next", (double)next / 1e6))
			err = tm__error_oom();
	}
	free(regs);
	return err;
}

static int stats_txn(tm__txn *txn, void *p)
{
	struct stats_ctx *c = p;
	cJSON *out = c->out, *names = cJSON_AddObjectToObject(out, "names");
	uint64_t depth, used, free_bytes, map;
	int64_t head, now = tm__txn_now(txn);
	int err;

	if (names == NULL)
		return tm__error_oom();
	c->names = names;
	err = tm__store_names(txn, stats_name, c);
	if (!err)
		err = stats_crons(txn, c->tm, names);
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
struct workers {
	unsigned n, idle;
	double ticks, cpu_s;
};

static struct workers workers_of(tm_manager *tm)
{
	struct tm__runtime *rt = tm->rt;
	struct workers w = { 0 };

	if (rt) {
		pthread_mutex_lock(&rt->mu);
		w.n = rt->n_workers;
		w.idle = rt->n_idle;
		pthread_mutex_unlock(&rt->mu);
		w.ticks = (double)atomic_load(&rt->sup_ticks);
		w.cpu_s = (double)atomic_load(&rt->sup_cpu_ns) / 1e9;
	}
	return w;
}

static bool add_workers(tm_manager *tm, cJSON *out)
{
	struct workers w = workers_of(tm);

	return cJSON_AddNumberToObject(out, "workers", w.n) &&
	       cJSON_AddNumberToObject(out, "workers_idle", w.idle) &&
	       cJSON_AddNumberToObject(out, "supervisor_ticks", w.ticks) &&
	       cJSON_AddNumberToObject(out, "supervisor_cpu_s", w.cpu_s);
}

int tm_stats(tm_manager *tm, char **out_json)
{
	struct stats_ctx c = { tm, NULL, NULL };
	cJSON *out;
	int err = tm__enter(tm, out_json);

	if (err)
		return err;
	c.out = out = cJSON_CreateObject();
	if (out == NULL)
		return tm__error_oom();
	err = tm__store_read(tm->store, stats_txn, &c);
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

/* ---- tm_metrics: the store's gauges, this process's counters (metrics.c) ---- */

struct name_gauges {
	char name[TM_NAME_MAX + 1];
	tm__name_stats st;
	double oldest_s;          /* the oldest task waiting for its first start */
	bool paused;
};

struct gauges {
	struct name_gauges *v;
	size_t n, cap;
	int64_t now;
	uint64_t used, free_bytes, map;
};

/* The first task of a name's active ones (oldest first) that waits for
 * its first start and may start now: the walk passes its running tasks. */
static int oldest_waiting(tm__txn *txn, const char *id, void *p)
{
	struct gauges *g = p;
	struct name_gauges *ng = &g->v[g->n - 1];
	tm__task t;
	int err = tm__store_get_head(txn, id, &t);

	if (err)
		return err;
	if (t.status == TM_REQUEST_SENT && t.queued && t.ready_us <= g->now) {
		ng->oldest_s = (double)(g->now - t.ready_us) / 1e6;
		return TM__SCAN_STOP;
	}
	return TM_OK;
}

static int gauge_name(tm__txn *txn, const char *name, void *p)
{
	struct gauges *g = p;
	struct name_gauges *ng;
	int err;

	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		struct name_gauges *v = realloc(g->v, cap * sizeof(*v));

		if (v == NULL)
			return tm__error_oom();
		g->v = v;
		g->cap = cap;
	}
	ng = &g->v[g->n++];
	memset(ng, 0, sizeof(*ng));
	snprintf(ng->name, sizeof(ng->name), "%s", name);
	err = tm__store_name_stats(txn, name, &ng->st);
	if (!err)
		err = tm__store_paused(txn, name, &ng->paused);
	if (!err && ng->st.by_status[TM_REQUEST_SENT] > 0)
		err = tm__store_active(txn, name, oldest_waiting, g);
	return err;
}

static int gauges_txn(tm__txn *txn, void *p)
{
	struct gauges *g = p;

	g->n = 0; /* a read may run again */
	g->now = tm__txn_now(txn);
	tm__store_size(txn, &g->used, &g->free_bytes, &g->map);
	return tm__store_names(txn, gauge_name, g);
}

static void store_gauges(tm__buf *b, const struct gauges *g)
{
	const struct name_gauges *v = g->v;

	tm__prom_family(b, "taskmgr_tasks", "gauge", "Tasks in the store, by name and status.");
	for (size_t i = 0; i < g->n; i++)
		for (int s = 0; s < TM__STATUS_COUNT; s++)
			tm__prom_line(b, "taskmgr_tasks{name=\"%s\",status=\"%s\"} %llu\n",
			              v[i].name, tm_status_name((tm_status)s),
			              (unsigned long long)v[i].st.by_status[s]);
	tm__prom_family(b, "taskmgr_queue_depth", "gauge",
	                "Tasks waiting for their first start, by name.");
	for (size_t i = 0; i < g->n; i++)
		tm__prom_line(b, "taskmgr_queue_depth{name=\"%s\"} %llu\n", v[i].name,
		              (unsigned long long)v[i].st.by_status[TM_REQUEST_SENT]);
	tm__prom_family(b, "taskmgr_oldest_waiting_age_seconds", "gauge",
	                "How long the oldest task able to start has waited, by name.");
	for (size_t i = 0; i < g->n; i++)
		tm__prom_line(b, "taskmgr_oldest_waiting_age_seconds{name=\"%s\"} %.6f\n",
		              v[i].name, v[i].oldest_s);
	tm__prom_family(b, "taskmgr_paused", "gauge",
	                "1 while a name is paused: its tasks wait, none starts.");
	for (size_t i = 0; i < g->n; i++)
		tm__prom_line(b, "taskmgr_paused{name=\"%s\"} %d\n", v[i].name, v[i].paused);
}

static void whole_store(tm__buf *b, tm_manager *tm, const struct gauges *g)
{
	struct workers w = workers_of(tm);

	tm__prom_family(b, "taskmgr_store_bytes", "gauge", "Bytes the store's tasks use.");
	tm__prom_line(b, "taskmgr_store_bytes %llu\n", (unsigned long long)g->used);
	tm__prom_family(b, "taskmgr_store_free_bytes", "gauge",
	                "Bytes of the store's file that it will reuse.");
	tm__prom_line(b, "taskmgr_store_free_bytes %llu\n", (unsigned long long)g->free_bytes);
	tm__prom_family(b, "taskmgr_commits_total", "counter",
	                "Write transactions this process committed since it opened the store.");
	tm__prom_line(b, "taskmgr_commits_total %llu\n",
	              (unsigned long long)tm__store_commits(tm->store));
	tm__prom_family(b, "taskmgr_workers", "gauge", "Worker threads of this process.");
	tm__prom_line(b, "taskmgr_workers %u\n", w.n);
	tm__prom_family(b, "taskmgr_workers_idle", "gauge",
	                "Worker threads of this process waiting for work.");
	tm__prom_line(b, "taskmgr_workers_idle %u\n", w.idle);
}

int tm_metrics(tm_manager *tm, char **out_text)
{
	struct gauges g = { 0 };
	tm__buf b = { 0 };
	int err = tm__enter(tm, out_text);

	if (err)
		return err;
	err = tm__store_read(tm->store, gauges_txn, &g);
	if (!err) {
		store_gauges(&b, &g);
		tm__metrics_render(tm->metrics, &b);
		whole_store(&b, tm, &g);
		err = tm__buf_take(&b, out_text);
	}
	free(g.v);
	return err;
}
