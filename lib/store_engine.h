/* What a store engine provides (store.c dispatches to it): store.h's
 * interface as a table of functions.  Included only by store.c and the
 * engines' own files (store_lmdb*.c, store_pg*.c). */
#ifndef TM_STORE_ENGINE_H
#define TM_STORE_ENGINE_H

#include <stdatomic.h>

#include "store_types.h"

struct tm__store_ops {
	const char *name; /* "lmdb", "postgresql" */
	void (*close)(tm__store *s);
	int (*read)(tm__store *s, tm__txn_fn fn, void *ctx);
	int (*write)(tm__store *s, tm__txn_fn fn, void *ctx);
	int64_t (*now)(tm__store *s);

	int (*get)(tm__txn *txn, const char *id, tm__task *out);
	int (*get_head)(tm__txn *txn, const char *id, tm__task *out);
	int (*render)(tm__txn *txn, const char *id, const char *name,
	              bool with_details, tm__buf *out);
	int (*put)(tm__txn *txn, const tm__task *old, const tm__task *t);
	int (*delete)(tm__txn *txn, const tm__task *t);
	int (*lock_name)(tm__txn *txn, const char *name);

	int (*secret_put)(tm__txn *txn, const char *id, const char *secret);
	int (*secret_get)(tm__txn *txn, const char *id, char **out);
	int (*secret_del)(tm__txn *txn, const char *id);
	int (*scrub)(tm__store *s, size_t *n);

	int (*recent)(tm__txn *txn, const char *name, size_t skip, tm__id_fn fn, void *ctx);
	int (*oldest)(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
	int (*active)(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
	int (*expired)(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx);
	int (*queue)(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx);
	int (*queue_head)(tm__txn *txn, uint64_t *depth, int64_t *head_us);

	int (*name_stats)(tm__txn *txn, const char *name, tm__name_stats *out);
	int (*add_changes)(tm__txn *txn, const char *name, uint64_t n);
	int (*reset_changes)(tm__txn *txn, const char *name);
	int (*name_touch)(tm__txn *txn, const char *name);
	int (*pause)(tm__txn *txn, const char *name, bool paused);
	int (*paused)(tm__txn *txn, const char *name, bool *paused);
	int (*rate_take)(tm__txn *txn, const char *name, double rate, unsigned burst,
	                 bool *taken, double *left);
	int (*rate_tokens)(tm__txn *txn, const char *name, double rate, unsigned burst,
	                   double *tokens);
	int (*names)(tm__txn *txn, tm__name_fn fn, void *ctx);
	int (*name_finals)(tm__txn *txn, const char *name, bool exact, uint64_t *n);
	int (*lock_retention)(tm__txn *txn, const char *name, bool wait, bool *got);
	int (*cron_get)(tm__txn *txn, const char *name, int64_t *due_us, bool *found);
	int (*cron_set)(tm__txn *txn, const char *name, int64_t due_us, bool if_absent);

	uint32_t (*wake_seq)(tm__store *s);
	void (*wake)(tm__store *s, bool self_too);
	void (*wait)(tm__store *s, uint32_t seen, unsigned ms);

	void (*size)(tm__txn *txn, uint64_t *used, uint64_t *free_bytes, uint64_t *map);
	uint64_t (*commits)(tm__store *s);
	int (*check)(tm__txn *txn, cJSON *problems, uint64_t *n_tasks);
	int (*backup)(tm__store *s, const char *dest);
};

/* The head of every engine's store and transaction: an engine's own
 * structs begin with these, so that a pointer to one is a pointer to the
 * other. */
struct tm__store {
	const struct tm__store_ops *ops;
	tm__final_fn on_final;    /* store.c runs it: tm__store_on_final */
	void *on_final_ctx;
	tm__events_fn on_events;  /* store.c runs it: tm__store_on_events */
	void *on_events_ctx;
	/* The test clock (store.h, tm__store_now): the shift mapped from
	 * TM_TEST_CLOCK_FILE by tm__store_open, or NULL. */
	const _Atomic int64_t *test_clock;
};

/* An engine's clock reading, us, as the store tells it: shifted by the
 * test clock when there is one.  Every engine's `now` returns this. */
static inline int64_t tm__store_clock(const tm__store *s, int64_t us)
{
	return s->test_clock
	       ? us + atomic_load_explicit(s->test_clock, memory_order_relaxed)
	       : us;
}

struct tm__txn {
	tm__store *store;
	struct tm__ended *ended;  /* store.c: names the write made tasks of
	                           * final, and its events */
};

/* The engines.  A URI of the form store.c recognises goes to the
 * PostgreSQL engine; anything else is an LMDB directory.  A build without
 * libpq has a PostgreSQL engine that refuses every URI (store_pg_none.c). */
int tm__lmdb_open(const char *path, const tm__store_opts *o, tm__store **out);
int tm__pg_open(const char *uri, const tm__store_opts *o, tm__store **out);

#endif
