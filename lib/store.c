/* The store interface (store.h): picks the engine by the path and hands
 * each call to it, and runs the final hook at the end of a write that made
 * tasks final.  No rule and no engine detail lives here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "store.h"
#include "store_engine.h"

bool tm__store_is_uri(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 ||
	       strncmp(path, "postgres://", 11) == 0;
}

/* ---- the test clock ------------------------------------------------------
 *
 * A hook for tests, not an interface: TM_TEST_CLOCK_FILE names a file
 * whose first 8 bytes, a native int64_t, are microseconds added to the
 * store's clock.  It is mapped shared, so a test moves the clock of
 * every process at once by storing into it (tests/runtime/rt.c,
 * rt_clock_*).  Unset, the clock costs one test of a NULL pointer. */
#define TEST_CLOCK_ENV "TM_TEST_CLOCK_FILE"

static int test_clock_map(const _Atomic int64_t **out)
{
	const char *path = getenv(TEST_CLOCK_ENV);
	struct stat st;
	void *p;
	int fd, e;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return TM_OK;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tm_errorf(TM_EINVAL, TEST_CLOCK_ENV " %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(int64_t)) {
		close(fd);
		return tm_errorf(TM_EINVAL, TEST_CLOCK_ENV " %s: not 8 bytes long", path);
	}
	p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
	e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return tm_errorf(TM_EINVAL, TEST_CLOCK_ENV " %s: %s", path, strerror(e));
	*out = p;
	return TM_OK;
}

static void test_clock_unmap(const _Atomic int64_t *p)
{
	if (p)
		munmap((void *)p, sizeof(int64_t));
}

int tm__store_open(const char *path, const tm__store_opts *o, tm__store **out)
{
	const _Atomic int64_t *clock;
	int err = test_clock_map(&clock);

	*out = NULL;
	if (err)
		return err;
	err = tm__store_is_uri(path) ? tm__pg_open(path, o, out)
	                             : tm__lmdb_open(path, o, out);
	if (err)
		test_clock_unmap(clock);
	else
		(*out)->test_clock = clock;
	return err;
}

void tm__store_close(tm__store *s)
{
	if (s) {
		const _Atomic int64_t *clock = s->test_clock;

		s->ops->close(s);
		test_clock_unmap(clock);
	}
}

#define OPS(txn) ((txn)->store->ops)

int tm__store_read(tm__store *s, tm__txn_fn fn, void *ctx) { return s->ops->read(s, fn, ctx); }
int64_t tm__store_now(tm__store *s) { return s->ops->now(s); }
int64_t tm__txn_now(tm__txn *txn) { return txn->store->ops->now(txn->store); }

/* ---- the hooks -------------------------------------------------------------
 *
 * A write runs inside this wrapper when the store has a hook: puts note the
 * names of the tasks they make final, and the final hook runs for each
 * once the write's own function is done, in the same transaction; the
 * lifecycle notes events (tm__txn_note), told to the events hook once the
 * write has committed. */

struct tm__ended {
	tm__txn_fn fn;
	void *ctx;
	char (*names)[TM_NAME_MAX + 1];
	size_t n, cap;
	tm__event *ev;
	size_t nev, evcap;
};

/* Append one element of `size` bytes to *arr (n used, cap allocated). */
static void *grow_one(void **arr, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 4;
		void *a = realloc(*arr, c * size);

		if (a == NULL)
			return NULL;
		*arr = a;
		*cap = c;
	}
	return (char *)*arr + (*n)++ * size;
}

static int note_ended(struct tm__ended *e, const char *name)
{
	char *slot;

	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->names[i], name) == 0)
			return TM_OK;
	if (strlen(name) > TM_NAME_MAX)
		return tm_errorf(TM_EINVAL, "task name too long");
	slot = grow_one((void **)&e->names, &e->n, &e->cap, sizeof(*e->names));
	if (slot == NULL)
		return tm__error_oom();
	strcpy(slot, name);
	return TM_OK;
}

int tm__txn_note(tm__txn *txn, tm__event_kind kind, const char *name,
                 tm_status st, uint32_t n, double seconds)
{
	struct tm__ended *e = txn->ended;
	tm__event *last = e && e->nev ? &e->ev[e->nev - 1] : NULL, *ev;

	if (e == NULL || txn->store->on_events == NULL)
		return TM_OK;
	if (strlen(name) > TM_NAME_MAX)
		return tm_errorf(TM_EINVAL, "task name too long");
	/* Counts merge; each run keeps its time. */
	if (last && kind != TM__EV_RAN && last->kind == kind && strcmp(last->name, name) == 0) {
		last->n += n;
		return TM_OK;
	}
	ev = grow_one((void **)&e->ev, &e->nev, &e->evcap, sizeof(*ev));
	if (ev == NULL)
		return tm__error_oom();
	ev->kind = kind;
	ev->status = st;
	ev->n = n;
	ev->seconds = seconds;
	strcpy(ev->name, name);
	return TM_OK;
}

static int write_then_hook(tm__txn *txn, void *p)
{
	struct tm__ended *e = p;
	tm__store *s = txn->store;
	int err;

	e->n = e->nev = 0; /* a write may run again */
	txn->ended = e;
	err = e->fn(txn, e->ctx);
	txn->ended = NULL;
	for (size_t i = 0; !err && s->on_final && i < e->n; i++)
		err = s->on_final(txn, e->names[i], s->on_final_ctx);
	return err;
}

int tm__store_write(tm__store *s, tm__txn_fn fn, void *ctx)
{
	struct tm__ended e = { .fn = fn, .ctx = ctx };
	int err;

	if (s->on_final == NULL && s->on_events == NULL)
		return s->ops->write(s, fn, ctx);
	err = s->ops->write(s, write_then_hook, &e);
	if (!err && e.nev > 0 && s->on_events)
		s->on_events(e.ev, e.nev, s->on_events_ctx);
	free(e.names);
	free(e.ev);
	return err;
}

void tm__store_on_final(tm__store *s, tm__final_fn fn, void *ctx)
{
	s->on_final = fn;
	s->on_final_ctx = ctx;
}

void tm__store_on_events(tm__store *s, tm__events_fn fn, void *ctx)
{
	s->on_events = fn;
	s->on_events_ctx = ctx;
}

/* ---- the rest, straight to the engine ----------------------------------------- */

int tm__store_get(tm__txn *txn, const char *id, tm__task *out)
{
	return OPS(txn)->get(txn, id, out);
}

int tm__store_get_head(tm__txn *txn, const char *id, tm__task *out)
{
	return OPS(txn)->get_head(txn, id, out);
}

int tm__store_render(tm__txn *txn, const char *id, const char *name,
                     bool with_details, tm__buf *out)
{
	return OPS(txn)->render(txn, id, name, with_details, out);
}

int tm__store_put(tm__txn *txn, const tm__task *old, const tm__task *t)
{
	int err = OPS(txn)->put(txn, old, t);

	if (!err && txn->ended && tm__status_final(t->status) &&
	    (old == NULL || !tm__status_final(old->status)))
		err = note_ended(txn->ended, t->name);
	return err;
}

int tm__store_delete(tm__txn *txn, const tm__task *t) { return OPS(txn)->delete(txn, t); }

int tm__store_lock_name(tm__txn *txn, const char *name)
{
	return OPS(txn)->lock_name(txn, name);
}

int tm__store_lock_retention(tm__txn *txn, const char *name, bool wait, bool *got)
{
	return OPS(txn)->lock_retention(txn, name, wait, got);
}

int tm__store_secret_put(tm__txn *txn, const char *id, const char *secret)
{
	return OPS(txn)->secret_put(txn, id, secret);
}

int tm__store_secret_get(tm__txn *txn, const char *id, char **out)
{
	return OPS(txn)->secret_get(txn, id, out);
}

int tm__store_secret_del(tm__txn *txn, const char *id) { return OPS(txn)->secret_del(txn, id); }
int tm__store_scrub(tm__store *s, size_t *n) { return s->ops->scrub(s, n); }

int tm__store_recent(tm__txn *txn, const char *name, size_t skip, tm__id_fn fn, void *ctx)
{
	return OPS(txn)->recent(txn, name, skip, fn, ctx);
}

int tm__store_oldest(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx)
{
	return OPS(txn)->oldest(txn, name, fn, ctx);
}

int tm__store_active(tm__txn *txn, const char *name, tm__id_fn fn, void *ctx)
{
	return OPS(txn)->active(txn, name, fn, ctx);
}

int tm__store_expired(tm__txn *txn, int64_t now, tm__id_fn fn, void *ctx)
{
	return OPS(txn)->expired(txn, now, fn, ctx);
}

int tm__store_queue(tm__txn *txn, int64_t now, tm__queue_fn fn, void *ctx)
{
	return OPS(txn)->queue(txn, now, fn, ctx);
}

int tm__store_queue_head(tm__txn *txn, uint64_t *depth, int64_t *head_us)
{
	return OPS(txn)->queue_head(txn, depth, head_us);
}

int tm__store_name_stats(tm__txn *txn, const char *name, tm__name_stats *out)
{
	return OPS(txn)->name_stats(txn, name, out);
}

int tm__store_add_changes(tm__txn *txn, const char *name, uint64_t n)
{
	return OPS(txn)->add_changes(txn, name, n);
}

int tm__store_reset_changes(tm__txn *txn, const char *name)
{
	return OPS(txn)->reset_changes(txn, name);
}

int tm__store_name_touch(tm__txn *txn, const char *name)
{
	return OPS(txn)->name_touch(txn, name);
}

int tm__store_pause(tm__txn *txn, const char *name, bool paused)
{
	return OPS(txn)->pause(txn, name, paused);
}

int tm__store_paused(tm__txn *txn, const char *name, bool *paused)
{
	return OPS(txn)->paused(txn, name, paused);
}

int tm__store_rate_take(tm__txn *txn, const char *name, double rate,
                        unsigned burst, bool *taken, double *left)
{
	return OPS(txn)->rate_take(txn, name, rate, burst, taken, left);
}

int tm__store_rate_tokens(tm__txn *txn, const char *name, double rate,
                          unsigned burst, double *tokens)
{
	return OPS(txn)->rate_tokens(txn, name, rate, burst, tokens);
}

int tm__store_cron_get(tm__txn *txn, const char *name, int64_t *due_us, bool *found)
{
	return OPS(txn)->cron_get(txn, name, due_us, found);
}

int tm__store_cron_set(tm__txn *txn, const char *name, int64_t due_us, bool if_absent)
{
	return OPS(txn)->cron_set(txn, name, due_us, if_absent);
}

int tm__store_names(tm__txn *txn, tm__name_fn fn, void *ctx)
{
	return OPS(txn)->names(txn, fn, ctx);
}

int tm__store_name_finals(tm__txn *txn, const char *name, bool exact, uint64_t *n)
{
	return OPS(txn)->name_finals(txn, name, exact, n);
}

uint32_t tm__store_wake_seq(tm__store *s) { return s->ops->wake_seq(s); }
void tm__store_wake(tm__store *s, bool self_too) { s->ops->wake(s, self_too); }
void tm__store_wait(tm__store *s, uint32_t seen, unsigned ms) { s->ops->wait(s, seen, ms); }

void tm__store_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes, uint64_t *map)
{
	OPS(txn)->size(txn, used, free_bytes, map);
}

uint64_t tm__store_commits(tm__store *s) { return s->ops->commits(s); }

int tm__store_check(tm__txn *txn, cJSON *problems, uint64_t *n_tasks)
{
	return OPS(txn)->check(txn, problems, n_tasks);
}

int tm__store_backup(tm__store *s, const char *dest) { return s->ops->backup(s, dest); }
