/* The PostgreSQL store's insides, shared by its files: store_pg.c (opening,
 * migrating the schema, transactions, wake-ups, the clock), store_pg_sql.c
 * (the schema's and the statements' texts), store_pg_conn.c (sessions, the
 * pipeline, the pool), store_pg_task.c (task records, secrets, scans) and
 * store_pg_names.c (per-name figures, counters, rate buckets).  Only these
 * include libpq-fe.h; everything else sees store.h. */
#ifndef TM_STORE_PG_SHARED_H
#define TM_STORE_PG_SHARED_H

#include <pthread.h>
#include <stdatomic.h>

#include <libpq-fe.h>

#include "store_engine.h"

#define TM__PG_SCHEMA_VERSION 4
#define DEFAULT_TIMEOUT_MS 10000u  /* taskmgr_timeout_ms */
#define TM__PG_POOL_MAX 32     /* connections per store, at most */
#define TM__PG_SCAN_CHUNK 64   /* rows fetched per scan statement */
/* Rows of a name's final-task counter (the finals table): each pooled
 * session adds to a row of its own, so counting never makes two
 * transactions of one process wait for each other. */
#define TM__PG_FINAL_SLOTS 64

/* The statements, prepared on each connection on first use.  S in the
 * text stands for the store's schema (a checked identifier). */
enum tm__pg_stmt {
	PG_GET, PG_GET_LOCK, PG_RENDER, PG_INSERT, PG_UPDATE, PG_DELETE,
	PG_RECENT, PG_RECENT_NEXT, PG_OLDEST, PG_OLDEST_NEXT,
	PG_ACTIVE, PG_ACTIVE_NEXT, PG_ACTIVE_ALL, PG_ACTIVE_ALL_NEXT,
	PG_EXPIRED, PG_EXPIRED_NEXT,
	PG_QUEUE, PG_QUEUE_NEXT, PG_QUEUE_LOCK, PG_QUEUE_LOCK_NEXT, PG_QUEUE_HEAD,
	PG_SECRET_PUT, PG_SECRET_GET, PG_SECRET_DEL,
	PG_NAME_STATS, PG_ADD_CHANGES, PG_RESET_CHANGES, PG_NAME_TOUCH, PG_NAMES,
	PG_PAUSE, PG_RESUME, PG_PAUSED, PG_RATE_TAKE, PG_RATE_TOKENS,
	PG_LOCK_NAME, PG_NOTIFY, PG_CLOCK, PG_SIZE, PG_CHECK, PG_CHECK_NEXT,
	PG_CHECK_SECRETS, PG_FINALS, PG_FINALS_EXACT, PG_FINALS_ADD, PG_TRY_LOCK,
	PG_CHECK_FINALS,
	PG_CRON_GET, PG_CRON_SET, PG_CRON_START,
	PG_STMT_COUNT
};

/* The texts (store_pg_sql.c): migration i takes the schema from version i
 * to i + 1; statement st's text; TM__PG_SCHEMA_MARK stands where the
 * schema's name goes, and tm__pg_with_schema() puts it there (malloc'd,
 * NULL when out of memory). */
#define TM__PG_SCHEMA_MARK "\x01"
extern const char *const tm__pg_migrations[TM__PG_SCHEMA_VERSION];
extern const char *const tm__pg_sql_text[PG_STMT_COUNT];
char *tm__pg_with_schema(const char *text, const char *schema);

#define TM__PG_PENDING_MAX 48 /* statements sent ahead of their results */

/* What a statement's result must say (a count of rows it changed, >= 0). */
enum { PG_EXPECT_ANY = -1, PG_EXPECT_COMMIT = -2, PG_EXPECT_PREPARE = -3 };

/* A pooled connection, in pipeline mode: statements whose results nobody
 * waits for (BEGIN, writes) are sent ahead and checked at the next
 * statement that returns rows, or at COMMIT: a trigger is one round trip. */
struct tm__pg_conn {
	PGconn *conn;
	bool busy;
	bool prepared[PG_STMT_COUNT];
	int n_pending;
	int expect[TM__PG_PENDING_MAX];
	/* A statement whose one int8 goes to t->finals[capture].base (a
	 * counter read sent ahead, tm__pg_put); -1: none. */
	int capture[TM__PG_PENDING_MAX];
};

typedef struct tm__pg {
	tm__store base;           /* first: a tm__store * is a tm__pg * */
	char *conninfo;           /* the URI without our own parameters */
	char *key;                /* conninfo + schema: one open per process */
	char schema[64];
	char channel[72];         /* LISTEN/NOTIFY channel */
	char token[17];           /* this store's wake-up payload */
	char *sql[PG_STMT_COUNT]; /* statement texts, schema filled in */
	unsigned timeout_ms;      /* the bound on every call */
	bool nosync;
	atomic_uint_fast64_t commits;
	atomic_int_fast64_t offset_us;  /* server clock minus ours */
	atomic_int_fast64_t synced_us;  /* when offset_us was measured (ours) */
	unsigned slot_base;       /* random: this process's finals rows */

	pthread_mutex_t mu;       /* the pool */
	pthread_cond_t freed;
	struct tm__pg_conn pool[TM__PG_POOL_MAX];
	unsigned n_pool;

	/* Wake-ups: a listening connection, used only by the one waiter. */
	pthread_mutex_t lmu;
	PGconn *listen;
	int64_t listen_retry_us;
	int efd;                  /* eventfd: this process's own wake-ups */
	atomic_uint_fast32_t seq;
	struct tm__pg *next_open;
} tm__pg;

/* The row a scan is on: render, get_head read it without a query. */
struct tm__pg_row {
	const PGresult *res;
	int row;
	int id_col, doc_col, name_col;
};

typedef struct tm__pg_txn {
	tm__txn base;             /* first: a tm__txn * is a tm__pg_txn * */
	tm__pg *s;
	struct tm__pg_conn *c;
	bool write;
	bool retry;               /* the database asked to run it again */
	bool broken;              /* the connection failed during it */
	bool notify;              /* it queued work or asked a run to stop */
	bool wrote;               /* it changed something: a commit to count */
	struct tm__pg_row cur;
	/* The row a locking queue scan stopped on, kept until it is written:
	 * its record (locked by this transaction) and secret, for the get and
	 * secret_get of the claim that follows. */
	PGresult *held;
	int held_row;
	/* Per name this transaction made final tasks of, or deleted them, or
	 * counted them: what it adds to the finals counter at the commit
	 * (tm__pg_finals_commit), and the counter as read (base), once the
	 * read sent ahead with the first final task (asked) came back. */
	struct tm__pg_finals {
		char name[TM_NAME_MAX + 1];
		int64_t delta;
		int64_t base;
		bool asked, have_base;
	} *finals;
	size_t n_finals, cap_finals;
} tm__pg_txn;

static inline tm__pg *tm__pg_of(tm__store *s) { return (tm__pg *)s; }
static inline tm__pg_txn *tm__pg_txn_of(tm__txn *t) { return (tm__pg_txn *)t; }

/* Run a statement of the transaction with n text parameters (vals may
 * hold NULL for SQL NULL; lens[i] > 0 marks a binary parameter of that
 * length).  *res receives the result (binary columns) to PQclear, on
 * success only.  Errors are TM_ESTORAGE with the server's message; a
 * serialisation failure or deadlock also sets t->retry. */
int tm__pg_exec(tm__pg_txn *t, enum tm__pg_stmt st, int n, const char *const *vals,
                const int *lens, PGresult **res);

/* Send a statement whose rows nobody needs, ahead of its result: its
 * failure (or, for expect >= 0, a different count of changed rows)
 * fails the next tm__pg_exec or the commit. */
int tm__pg_defer(tm__pg_txn *t, enum tm__pg_stmt st, int n, const char *const *vals,
                 const int *lens, int expect);

/* Sessions (store_pg_conn.c).  A pooled session is in pipeline mode;
 * tm__pg_connect(pipeline false) makes one for plain SQL texts
 * (tm__pg_simple: the schema, LISTEN).  tm__pg_acquire waits at most
 * timeout_ms for a free session; tm__pg_release drops a broken one.
 * tm__pg_send queues a statement (or, with text, BEGIN/COMMIT/ROLLBACK)
 * expecting `expect` (PG_EXPECT_*, or a count of changed rows);
 * tm__pg_flush sends a sync and checks every queued result. */
PGconn *tm__pg_connect(tm__pg *s, bool pipeline, int *err);
int tm__pg_acquire(tm__pg *s, struct tm__pg_conn **out);
void tm__pg_release(tm__pg *s, struct tm__pg_conn *pc, bool broken);
int tm__pg_simple(tm__pg *s, tm__pg_txn *t, PGconn *c, const char *sql,
                  const char *what, PGresult **res);
int tm__pg_send(tm__pg_txn *t, enum tm__pg_stmt st, const char *text, int n,
                const char *const *vals, const int *lens, int expect);
int tm__pg_flush(tm__pg_txn *t, PGresult **last);

/* Binary result columns. */
int64_t tm__pg_int8(const PGresult *r, int row, int col);
/* An int8 as text into buf (I8 bytes), for a statement's parameter. */
#define I8 24
const char *tm__pg_i8(char buf[I8], int64_t v);

/* The engine's functions (store_pg_task.c), for the table in store_pg.c. */
int tm__pg_get(tm__txn *txn, const char *id, tm__task *out);
int tm__pg_get_head(tm__txn *txn, const char *id, tm__task *out);
int tm__pg_render(tm__txn *txn, const char *id, const char *name,
                  bool with_details, tm__buf *out);
int tm__pg_put(tm__txn *txn, const tm__task *old, const tm__task *t);
int tm__pg_delete(tm__txn *txn, const tm__task *t);
int tm__pg_lock_name(tm__txn *txn, const char *name);
int tm__pg_secret_put(tm__txn *txn, const char *id, const char *secret);
int tm__pg_secret_get(tm__txn *txn, const char *id, char **out);
int tm__pg_secret_del(tm__txn *txn, const char *id);
int tm__pg_recent(tm__txn *txn, const char *name, size_t skip, tm__id_fn fn, void *ctx);
int tm__pg_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
int tm__pg_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx);
int tm__pg_expired(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx);
int tm__pg_queue(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx);
int tm__pg_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us);
int tm__pg_name_stats(tm__txn *txn, const char *name, tm__name_stats *out);
int tm__pg_add_changes(tm__txn *txn, const char *name, uint64_t n);
int tm__pg_reset_changes(tm__txn *txn, const char *name);
int tm__pg_name_touch(tm__txn *txn, const char *name);
int tm__pg_pause(tm__txn *txn, const char *name, bool paused);
int tm__pg_paused(tm__txn *txn, const char *name, bool *paused);
int tm__pg_rate_take(tm__txn *txn, const char *name, double rate,
                     unsigned burst, bool *taken, double *left);
int tm__pg_rate_tokens(tm__txn *txn, const char *name, double rate,
                       unsigned burst, double *tokens);
int tm__pg_names(tm__txn *txn, tm__name_fn fn, void *ctx);
int tm__pg_name_finals(tm__txn *txn, const char *name, bool exact, uint64_t *n);
int tm__pg_lock_retention(tm__txn *txn, const char *name, bool wait, bool *got);
int tm__pg_cron_get(tm__txn *txn, const char *name, int64_t *due_us, bool *found);
int tm__pg_cron_set(tm__txn *txn, const char *name, int64_t due_us, bool if_absent);
/* Before COMMIT: send what the transaction adds to the finals counters
 * (in name order: two transactions never wait on each other's rows in
 * turn). */
int tm__pg_finals_commit(tm__pg_txn *t);
/* The finals counter of name as this transaction changes it (made on
 * first use; NULL and *err on failure), and a change of d final tasks of
 * name (put, delete: store_pg_task.c).  store_pg_names.c. */
struct tm__pg_finals *tm__pg_finals_of(tm__pg_txn *t, const char *name, int *err);
int tm__pg_count_final(tm__pg_txn *t, const char *name, int64_t d);
void tm__pg_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes, uint64_t *map);
int tm__pg_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks);

#endif
