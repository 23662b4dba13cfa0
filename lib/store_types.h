/* The store's vocabulary: the types that its interface (store.h) and its
 * engines (store_engine.h) share. */
#ifndef TM_STORE_TYPES_H
#define TM_STORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "status.h"
#include "task.h"

typedef struct tm__store tm__store;
typedef struct tm__txn tm__txn;

typedef struct tm__store_opts {
	bool nosync;
	uint64_t map_size;
	uint64_t map_size_max;
} tm__store_opts;

typedef int (*tm__txn_fn)(tm__txn *txn, void *ctx);

/* Iterators call fn for each entry until fn returns nonzero: a negative
 * value is an error and is returned, TM__SCAN_STOP ends the scan, which
 * then returns TM_OK. */
#define TM__SCAN_STOP 1
typedef int (*tm__id_fn)(tm__txn *txn, const char *id, void *ctx);

typedef int (*tm__queue_fn)(tm__txn *txn, int64_t ready_us, const char *id,
                            const char *name, void *ctx);

typedef struct tm__name_stats {
	uint64_t by_status[TM__STATUS_COUNT];
	uint64_t changes;      /* tm_notify() since the last task */
	int64_t since_us;      /* first seen (reference of interval triggers) */
} tm__name_stats;

typedef int (*tm__name_fn)(tm__txn *txn, const char *name, void *ctx);

/* Run at the end of a write transaction that made tasks of name final
 * (store.h, tm__store_on_final). */
typedef int (*tm__final_fn)(tm__txn *txn, const char *name, void *ctx);

/* What a write did to tasks, noted by the lifecycle inside the write
 * (tm__txn_note) and told once it commits (store.h, tm__store_on_events):
 * the figures of tm_metrics count only what is durable. */
typedef enum tm__event_kind {
	TM__EV_CREATED,         /* tasks created */
	TM__EV_RAN,             /* a run ended: RUNNING -> final */
	TM__EV_RETRY,           /* a failed or lost run queued to run again */
	TM__EV_TIMEOUT,         /* a task failed by its timeout */
	TM__EV_LOST             /* a run whose worker was gone, recovered */
} tm__event_kind;

typedef struct tm__event {
	tm__event_kind kind;
	tm_status status;       /* TM__EV_RAN: the final status */
	uint32_t n;             /* how many (events of one kind and name merge) */
	double seconds;         /* TM__EV_RAN: from RUNNING to final */
	char name[TM_NAME_MAX + 1];
} tm__event;

typedef void (*tm__events_fn)(const tm__event *ev, size_t n, void *ctx);

#endif
