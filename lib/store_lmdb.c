/* The LMDB store (store.h), opened and closed: one environment per store
 * directory, its sub-databases opened once.  Its siblings share
 * store_lmdb.h, and no other file includes lmdb.h:
 *   store_lmdb_task.c    task records, the indexes kept in step with them,
 *                        per-name figures
 *   store_lmdb_secret.c  refresh tokens under erasable keys
 *   store_lmdb_scan.c    scans and the consistency check
 *   store_lmdb_txn.c     transactions: group commit, map growth
 * doc/design.md describes the layout. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "id.h"
#include "secret.h"
#include "store_lmdb.h"
#include "task.h"

/* LMDB forbids opening one environment twice in a process, and a second
 * open silently breaks its locking.  This list of open stores (by device
 * and inode) is the library's only process-wide state, for that reason. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static tm__lmdb *open_list;

/* ---- open and close ---------------------------------------------------- */

static int make_dirs(const char *path)
{
	char *p = strdup(path);
	int err = TM_OK;

	if (p == NULL)
		return tm__error_oom();
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			err = tm__error_sys(errno, p);
		*s = '/';
		if (err)
			break;
	}
	if (!err && mkdir(p, 0700) != 0 && errno != EEXIST)
		err = tm__error_sys(errno, p);
	free(p);
	return err;
}

/* LMDB maps its lock file and writes into it: on a full file system a hole
 * in that file would be SIGBUS.  Allocating it first turns that into
 * ENOSPC.  (LMDB only ever grows the file, to less than this.) */
static int reserve_lock_file(const char *dir)
{
	char path[4096];
	int fd, rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/lock.mdb", dir) >= sizeof(path))
		return tm_errorf(TM_EINVAL, "store path is too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return tm__error_sys(errno, path);
	rc = posix_fallocate(fd, 0, LOCK_FILE_BYTES);
	close(fd);
	return rc ? tm__lmdb_error(rc, path) : TM_OK;
}

static int open_dbis(tm__lmdb *s)
{
	static const struct { const char *name; size_t off; } dbs[] = {
		{ "tasks", offsetof(tm__lmdb, tasks) },
		{ "recent", offsetof(tm__lmdb, recent) },
		{ "active", offsetof(tm__lmdb, active) },
		{ "queue", offsetof(tm__lmdb, queue) },
		{ "secrets", offsetof(tm__lmdb, secrets) },
		{ "slots", offsetof(tm__lmdb, slots) },
		{ "names", offsetof(tm__lmdb, names) },
		{ "meta", offsetof(tm__lmdb, meta) },
	};
	MDB_txn *txn;
	MDB_val k = tm__lmdb_val("schema", 6), v;
	uint32_t schema = SCHEMA_VERSION;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return tm__lmdb_error(rc, "opening the store");
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE,
		                  (MDB_dbi *)((char *)s + dbs[i].off));
		if (rc)
			goto fail;
	}
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size != sizeof(schema)) {
			mdb_txn_abort(txn);
			return tm_errorf(TM_ESTORAGE, "store meta record is corrupt");
		}
		memcpy(&schema, v.mv_data, sizeof(schema));
		if (schema > SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			return tm_errorf(TM_ESTORAGE,
			                 "store was written by schema %u; this library "
			                 "(%s) reads up to schema %u", schema,
			                 TM_VERSION_STRING, SCHEMA_VERSION);
		}
	} else if (rc == MDB_NOTFOUND) {
		v = tm__lmdb_val(&schema, sizeof(schema));
		rc = mdb_put(txn, s->meta, &k, &v, 0);
		if (rc)
			goto fail;
	} else {
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	return rc ? tm__lmdb_error(rc, "opening the store") : TM_OK;
fail:
	mdb_txn_abort(txn);
	return tm__lmdb_error(rc, "opening the store");
}

int tm__lmdb_open(const char *path, const tm__store_opts *o, tm__store **out)
{
	tm__lmdb *s;
	struct stat st;
	pthread_rwlockattr_t ra;
	int rc, err;

	*out = NULL;
	err = make_dirs(path);
	if (err)
		return err;
	if (stat(path, &st) != 0)
		return tm__error_sys(errno, path);
	if (!S_ISDIR(st.st_mode))
		return tm_errorf(TM_ESTORAGE, "%s is not a directory", path);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return tm__error_oom();
	s->base.ops = &tm__lmdb_ops;
	s->dev = st.st_dev;
	s->keys_fd = -1;
	s->ino = st.st_ino;
	s->map_max = o->map_size_max;
	s->dir = strdup(path);
	if (s->dir == NULL) {
		free(s);
		return tm__error_oom();
	}

	pthread_mutex_lock(&open_mu);
	for (tm__lmdb *p = open_list; p; p = p->next_open) {
		if (p->dev == s->dev && p->ino == s->ino) {
			pthread_mutex_unlock(&open_mu);
			free(s->dir);
			free(s);
			return tm_errorf(TM_EINVAL, "store %s is already open in this "
			                 "process; share that tm_manager", path);
		}
	}
	s->next_open = open_list;
	open_list = s;
	pthread_mutex_unlock(&open_mu);

	pthread_rwlockattr_init(&ra);
	/* Writers (map growth) must not starve behind a stream of readers. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->resize, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->gc_mu, NULL);
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_cond_init(&s->gc_done, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->gc_more, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->gc_tail = &s->gc_head;

	rc = mdb_env_create(&s->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(s->env, 16);
	if (!rc)
		rc = mdb_env_set_maxreaders(s->env, MAX_READERS);
	if (!rc)
		rc = mdb_env_set_mapsize(s->env, o->map_size);
	if (rc) {
		err = tm__lmdb_error(rc, "creating the LMDB environment");
		goto fail;
	}
	err = reserve_lock_file(path);
	if (!err)
		err = tm__keys_open(path, &s->keys_fd);
	if (err)
		goto fail;
	/* MDB_NOTLS: read transactions are not tied to threads, because the
	 * host's threads, not ours, call in. */
	rc = mdb_env_open(s->env, path,
	                  MDB_NOTLS | (o->nosync ? MDB_NOSYNC : 0), 0600);
	if (rc) {
		err = tm__lmdb_error(rc, path);
		goto fail;
	}
	mdb_reader_check(s->env, NULL); /* slots of processes that died */
	err = open_dbis(s);
	if (!err)
		err = tm__wake_open(path, &s->wake);
	if (err)
		goto fail;
	*out = &s->base;
	return TM_OK;
fail:
	tm__lmdb_close(&s->base);
	return err;
}

void tm__lmdb_close(tm__store *store)
{
	tm__lmdb *s = tm__lmdb_of(store);
	if (s == NULL)
		return;
	pthread_mutex_lock(&open_mu);
	for (tm__lmdb **pp = &open_list; *pp; pp = &(*pp)->next_open) {
		if (*pp == s) {
			*pp = s->next_open;
			break;
		}
	}
	pthread_mutex_unlock(&open_mu);
	tm__wake_close(s->wake);
	while (s->n_pool > 0)
		mdb_txn_abort(s->pool[--s->n_pool]);
	if (s->env)
		mdb_env_close(s->env);
	if (s->keys_fd >= 0)
		close(s->keys_fd);
	free(s->dir);
	pthread_rwlock_destroy(&s->resize);
	pthread_mutex_destroy(&s->gc_mu);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->gc_done);
	pthread_cond_destroy(&s->gc_more);
	free(s);
}

void tm__lmdb_size(tm__txn *txn, uint64_t *used, uint64_t *free_bytes,
                    uint64_t *map)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	MDB_envinfo info;
	MDB_stat st;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t pages = 0;

	mdb_env_info(t->s->env, &info);
	mdb_env_stat(t->s->env, &st);
	*used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	*map = info.me_mapsize;
	/* Pages below the high-water mark that LMDB will reuse: each record
	 * of its free list (sub-database 0) is a count then page numbers. */
	if (mdb_cursor_open(t->txn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, pages ? MDB_NEXT : MDB_FIRST) == 0) {
			size_t n = 0;

			if (v.mv_size >= sizeof(size_t))
				memcpy(&n, v.mv_data, sizeof(n));
			pages += n ? n : 1;
		}
		mdb_cursor_close(c);
	}
	*free_bytes = pages * st.ms_psize;
}

/* ---- wake-ups ------------------------------------------------------------ */

uint32_t tm__lmdb_wake_seq(tm__store *store)
{
	tm__lmdb *s = tm__lmdb_of(store);
	return tm__wake_seq(s->wake);
}

void tm__lmdb_wake(tm__store *store, bool self_too)
{
	tm__lmdb *s = tm__lmdb_of(store);
	tm__wake_signal(s->wake, self_too);
}

void tm__lmdb_wait(tm__store *store, uint32_t seen, unsigned ms)
{
	tm__lmdb *s = tm__lmdb_of(store);
	tm__wake_wait(s->wake, seen, ms);
}

/* ---- the engine -------------------------------------------------------- */

/* One writer at a time holds the whole store: every write transaction is
 * already serialised, so a name needs no lock of its own. */
static int lock_name(tm__txn *txn, const char *name)
{
	(void)txn;
	(void)name;
	return TM_OK;
}

static int64_t now(tm__store *s)
{
	(void)s;
	return tm__now_us();
}

const struct tm__store_ops tm__lmdb_ops = {
	.name = "lmdb",
	.close = tm__lmdb_close, .read = tm__lmdb_read, .write = tm__lmdb_write,
	.now = now,
	.get = tm__lmdb_get, .get_head = tm__lmdb_get_head, .render = tm__lmdb_render,
	.put = tm__lmdb_put_task, .delete = tm__lmdb_delete, .lock_name = lock_name,
	.secret_put = tm__lmdb_secret_put, .secret_get = tm__lmdb_secret_get,
	.secret_del = tm__lmdb_secret_del, .scrub = tm__lmdb_scrub,
	.recent = tm__lmdb_recent, .oldest = tm__lmdb_oldest, .active = tm__lmdb_active,
	.expired = tm__lmdb_expired,
	.queue = tm__lmdb_queue, .queue_head = tm__lmdb_queue_head,
	.name_stats = tm__lmdb_name_stats, .add_changes = tm__lmdb_add_changes,
	.reset_changes = tm__lmdb_reset_changes, .name_touch = tm__lmdb_name_touch,
	.names = tm__lmdb_names, .name_finals = tm__lmdb_name_finals,
	.lock_retention = tm__lmdb_lock_retention,
	.wake_seq = tm__lmdb_wake_seq, .wake = tm__lmdb_wake, .wait = tm__lmdb_wait,
	.size = tm__lmdb_size, .commits = tm__lmdb_commits, .check = tm__lmdb_check,
};
