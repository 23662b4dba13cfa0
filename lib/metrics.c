/* The counters behind tm_metrics() (stats.c renders the rest; doc/api.md,
 * "Metrics"): what this process's writes did since tm_open(), by name.
 * Each committed write tells its events (store.h, tm__store_on_events) and
 * they are added here, so a write that failed or ran again counts once or
 * not at all.  Prometheus sums the processes and takes a restart's reset
 * in its stride. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "metrics.h"

/* Upper bounds of the duration buckets, seconds: background tasks run from
 * milliseconds to hours. */
static const double bounds[] = { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60,
                                 300, 900, 3600, 10800, 86400 };
#define NB (sizeof(bounds) / sizeof(bounds[0]))

struct figs {
	char name[TM_NAME_MAX + 1];
	uint64_t triggers, retries, timeouts, lost;
	uint64_t bucket[NB + 1];  /* runs per bucket, not cumulative; last: +Inf */
	uint64_t runs;
	double run_s;
};

struct tm__metrics {
	pthread_mutex_t mu;
	struct figs *v;           /* sorted by name */
	size_t n, cap;
};

int tm__metrics_new(tm__metrics **out)
{
	tm__metrics *m = calloc(1, sizeof(*m));

	*out = m;
	if (m == NULL)
		return tm__error_oom();
	pthread_mutex_init(&m->mu, NULL);
	return TM_OK;
}

void tm__metrics_free(tm__metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->v);
	free(m);
}

/* The figures of name, added in order if new; NULL on out of memory.
 * Called with m->mu held. */
static struct figs *figs_of(tm__metrics *m, const char *name)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->v[mid].name, name);

		if (c == 0)
			return &m->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct figs *v = realloc(m->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		m->v = v;
		m->cap = cap;
	}
	memmove(&m->v[lo + 1], &m->v[lo], (m->n - lo) * sizeof(*m->v));
	memset(&m->v[lo], 0, sizeof(*m->v));
	snprintf(m->v[lo].name, sizeof(m->v[lo].name), "%s", name);
	m->n++;
	return &m->v[lo];
}

void tm__metrics_events(const tm__event *ev, size_t n, void *ctx)
{
	tm__metrics *m = ctx;

	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < n; i++) {
		struct figs *f = figs_of(m, ev[i].name);
		size_t b = 0;

		if (f == NULL)
			break; /* out of memory: a figure is lost, nothing else */
		switch (ev[i].kind) {
		case TM__EV_CREATED: f->triggers += ev[i].n; break;
		case TM__EV_RETRY: f->retries += ev[i].n; break;
		case TM__EV_TIMEOUT: f->timeouts += ev[i].n; break;
		case TM__EV_LOST: f->lost += ev[i].n; break;
		case TM__EV_RAN:
			while (b < NB && ev[i].seconds > bounds[b])
				b++;
			f->bucket[b]++;
			f->runs++;
			f->run_s += ev[i].seconds;
			break;
		}
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- the text ---------------------------------------------------------------- */

void tm__prom_line(tm__buf *b, const char *fmt, ...)
{
	char s[512]; /* a line: a metric, a name, a label, a number */
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	tm__buf_add(b, s, n < 0 ? 0 : (size_t)n < sizeof(s) ? (size_t)n : sizeof(s) - 1);
}

void tm__prom_family(tm__buf *b, const char *name, const char *type, const char *help)
{
	tm__prom_line(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(tm__buf *b, const tm__metrics *m, const char *name,
                    const char *help, size_t off)
{
	tm__prom_family(b, name, "counter", help);
	for (size_t i = 0; i < m->n; i++)
		tm__prom_line(b, "%s{name=\"%s\"} %llu\n", name, m->v[i].name,
		              (unsigned long long)*(const uint64_t *)((const char *)&m->v[i] + off));
}

static void histogram(tm__buf *b, const struct figs *f)
{
	uint64_t below = 0;

	for (size_t k = 0; k < NB; k++) {
		below += f->bucket[k];
		tm__prom_line(b, "taskmgr_task_duration_seconds_bucket{name=\"%s\",le=\"%g\"} %llu\n",
		              f->name, bounds[k], (unsigned long long)below);
	}
	tm__prom_line(b, "taskmgr_task_duration_seconds_bucket{name=\"%s\",le=\"+Inf\"} %llu\n",
	              f->name, (unsigned long long)f->runs);
	tm__prom_line(b, "taskmgr_task_duration_seconds_sum{name=\"%s\"} %.6f\n",
	              f->name, f->run_s);
	tm__prom_line(b, "taskmgr_task_duration_seconds_count{name=\"%s\"} %llu\n",
	              f->name, (unsigned long long)f->runs);
}

void tm__metrics_render(tm__metrics *m, tm__buf *b)
{
	pthread_mutex_lock(&m->mu);
	counter(b, m, "taskmgr_triggers_total",
	        "Tasks this process created since it opened the store, by name.",
	        offsetof(struct figs, triggers));
	counter(b, m, "taskmgr_retries_total",
	        "Failed or lost runs this process queued to run again, by name.",
	        offsetof(struct figs, retries));
	counter(b, m, "taskmgr_timeouts_total",
	        "Tasks this process failed for their timeout, by name.",
	        offsetof(struct figs, timeouts));
	counter(b, m, "taskmgr_lost_workers_total",
	        "Runs whose worker was gone, recovered by this process, by name.",
	        offsetof(struct figs, lost));
	tm__prom_family(b, "taskmgr_task_duration_seconds", "histogram",
	                "Runs that ended in this process, from RUNNING to a final status, by name.");
	for (size_t i = 0; i < m->n; i++)
		histogram(b, &m->v[i]);
	pthread_mutex_unlock(&m->mu);
}
