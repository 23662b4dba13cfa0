/* What tm-bench's sections share (bench.c): the run's settings, its
 * stores' directory, opening a store, the tables, the raw LMDB baselines,
 * the trigger bodies and a no-op handler.  The sections: bench_write.c
 * (trigger, bulk, e2e, latency), bench_read.c (get, list, size, tick),
 * bench_queue.c (retention, schedule), bench_pg.c (pg). */
#ifndef TM_BENCH_H
#define TM_BENCH_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <lmdb.h>

#include "taskmgr.h"

#define BULK 100 /* bodies a tm_trigger_many call, records a raw transaction */

extern char run_dir[600]; /* this run's stores */
extern int scale;         /* BENCH_SCALE */
extern int quick;         /* --quick */
extern long big;          /* BENCH_BIG: the big store of list, size, tick, schedule */
extern sigset_t stop_signals; /* held by every thread; a child unblocks them */

/* Durable operation counts: BENCH_SCALE times full, a quarter with --quick. */
int ops(int full);
/* Exit 1 with tm_last_error(), or with errno's message about path. */
void die(const char *what);
void fail(const char *what, const char *path);
/* "1M", "100k": a task count as the tables name it. */
const char *count_name(long n);

/* run_dir/name, removed if it was there and made empty. */
char *fresh_dir(const char *name);
/* Remove run_dir/name once measured, noting the run's disk use first. */
void drop(const char *name);
tm_manager *open_at(const char *path, unsigned workers, int nosync);
tm_manager *open_tm(const char *name, unsigned workers, int nosync);
void reg(tm_manager *tm, const char *name, tm_status (*run)(tm_job *, void *));

/* A table: its header, then a row each (base > 0 adds the ratio). */
void header(const char *title, const char *base);
void row(const char *what, double figure, const char *unit, double base);

/* Raw LMDB: an env in run_dir/name, a key for i, and durable
 * transactions of one 400-byte record each (records/s). */
MDB_env *raw_open(const char *name, unsigned flags);
void raw_key(char *k, uint64_t i);
double raw_put_rate(int n);

extern const char *body400;          /* 400 bytes, with a refresh token */
extern const char *body400_nosecret; /* the same size, without */
extern atomic_int ran;               /* noop's runs */
tm_status noop(tm_job *job, void *user);
/* tm_stats' COMPLETED of the first name, and any figure by its key. */
long completed(tm_manager *tm);
double stat_figure(tm_manager *tm, const char *key);

int bench_trigger(void);
int bench_bulk(void);
int bench_e2e(void);
int bench_latency(void);
int bench_get(void);
int bench_list(void);
int bench_size(void);
int bench_tick(void);
int bench_retention(void);
int bench_schedule(void);

#endif
