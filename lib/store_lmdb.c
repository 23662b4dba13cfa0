/* The LMDB store (store.h), opened and closed: one environment per store
 * directory, its sub-databases opened once (and a store of an earlier
 * layout upgraded then).  Its siblings share
 * store_lmdb.h, and no other file includes lmdb.h:
 *   store_lmdb_task.c    task records, the indexes kept in step with them,
 *                        per-name figures
 *   store_lmdb_secret.c  refresh tokens under erasable keys
 *   store_lmdb_scan.c    scans and the consistency check
 *   store_lmdb_txn.c     transactions: group commit, map growth
 *   store_lmdb_backup.c  online copies (tm_backup)
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

/* fsync a directory, so that the entries made in it survive a power cut:
 * POSIX does not promise that a new file's fsync makes its name durable
 * (ext4 and XFS do it, ext2 and some network file systems do not). */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = TM_OK;

	if (fd < 0)
		return tm__error_sys(errno, dir);
	if (fsync(fd) != 0 && errno != EINVAL) /* EINVAL: a file system that cannot */
		err = tm__error_sys(errno, dir);
	close(fd);
	return err;
}

/* mkdir -p, each directory it makes synced into its parent. */
static int make_dirs(const char *path)
{
	char *p = strdup(path);
	int err = TM_OK;

	if (p == NULL)
		return tm__error_oom();
	for (char *s = p + 1; !err; s++) {
		bool last = *s == '\0';
		char *slash;

		if (!last && *s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) == 0) {
			slash = strrchr(p, '/');
			if (slash == NULL) {
				err = sync_dir(".");
			} else if (slash == p) {
				err = sync_dir("/");
			} else {
				*slash = '\0';
				err = sync_dir(p);
				*slash = '/';
			}
		} else if (errno != EEXIST) {
			err = tm__error_sys(errno, p);
		}
		if (last)
			break;
		*s = '/';
	}
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

/* ---- earlier layouts ------------------------------------------------------ */

/* Stores written by an earlier layout are brought to this one when they
 * are opened, in the transaction that opens the sub-databases, so a crash
 * leaves the old layout whole or the new one. */

/* Schema 1 kept records by id ("tasks") and the listing order in an index
 * of its own ("recent"), and found expired tasks by walking the active
 * index.  Records move under their listing keys with an id index beside
 * them, and each active task gets its deadline.  The records' bytes move
 * as they are (task.c reads their format). */
static int from_1(tm__lmdb_txn *t)
{
	MDB_dbi tasks, recent;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_dbi_open(t->txn, "tasks", 0, &tasks), err = TM_OK;

	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc == 0)
		rc = mdb_cursor_open(t->txn, tasks, &c);
	if (rc)
		return tm__lmdb_fail(t, rc, "upgrading the store");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !err;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		unsigned char rk[KEY_MAX], dk[KEY_MAX];
		char id[TM_TASK_ID_LEN + 1] = "";
		tm__task head;
		size_t rn;
		int64_t at;

		if (k.mv_size == TM_TASK_ID_LEN)
			memcpy(id, k.mv_data, TM_TASK_ID_LEN);
		if (!tm__id_valid(id)) {
			err = tm_errorf(TM_ESTORAGE, "upgrading the store: a record's key "
			                "is not a task id");
			break;
		}
		err = tm__task_decode_head(id, v.mv_data, v.mv_size, &head);
		if (err)
			break;
		rn = tm__lmdb_record_key(rk, &head);
		err = tm__lmdb_put(t, t->s->records, tm__lmdb_val(rk, rn), v, "upgrading the store");
		if (!err)
			err = tm__lmdb_put(t, t->s->ids, k, tm__lmdb_val(rk, rn), "upgrading the store");
		if (!err && tm__lmdb_deadline(&head, &at))
			err = tm__lmdb_put(t, t->s->deadlines,
			                   tm__lmdb_val(dk, tm__lmdb_time_key(dk, at, id)),
			                   tm__lmdb_val("", 0), "upgrading the store");
	}
	mdb_cursor_close(c);
	if (err)
		return err;
	if (rc != MDB_NOTFOUND)
		return tm__lmdb_fail(t, rc, "upgrading the store");
	rc = mdb_drop(t->txn, tasks, 1);
	if (rc == 0) {
		rc = mdb_dbi_open(t->txn, "recent", 0, &recent);
		if (rc == 0)
			rc = mdb_drop(t->txn, recent, 1);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	return rc ? tm__lmdb_fail(t, rc, "upgrading the store") : TM_OK;
}

/* The fixed fields of task id, read through the ids index. */
static int record_head(tm__lmdb_txn *t, const char *id, tm__task *head)
{
	MDB_val k = tm__lmdb_val(id, TM_TASK_ID_LEN), rk, v;
	int rc = mdb_get(t->txn, t->s->ids, &k, &rk);

	if (rc == 0)
		rc = mdb_get(t->txn, t->s->records, &rk, &v);
	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ESTORAGE, "upgrading the store: queued task %s has "
		                 "no record", id);
	if (rc)
		return tm__lmdb_fail(t, rc, "upgrading the store");
	return tm__task_decode_head(id, v.mv_data, v.mv_size, head);
}

/* Schema 2 kept one queue for every name, by ready time ("queue", the
 * name in each entry's value).  Each name's waiting tasks now lie
 * together by priority, ready time and age ("waiting"); every task of
 * that schema has priority 0. */
static int from_2(tm__lmdb_txn *t)
{
	MDB_dbi queue;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_dbi_open(t->txn, "queue", 0, &queue), err = TM_OK;

	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc == 0)
		rc = mdb_cursor_open(t->txn, queue, &c);
	if (rc)
		return tm__lmdb_fail(t, rc, "upgrading the store");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !err;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		unsigned char qk[KEY_MAX];
		char id[TM_TASK_ID_LEN + 1] = "", name[TM_NAME_MAX + 1];
		tm__task head;

		if (k.mv_size == 8 + TM_TASK_ID_LEN)
			memcpy(id, (const char *)k.mv_data + 8, TM_TASK_ID_LEN);
		if (!tm__id_valid(id) || v.mv_size == 0 || v.mv_size > TM_NAME_MAX) {
			err = tm_errorf(TM_ESTORAGE, "upgrading the store: a queue entry "
			                "is malformed");
			break;
		}
		memcpy(name, v.mv_data, v.mv_size);
		name[v.mv_size] = '\0';
		err = record_head(t, id, &head);
		if (!err)
			err = tm__lmdb_put(t, t->s->queue,
			                   tm__lmdb_val(qk, tm__lmdb_queue_key(qk, name, 0,
			                                tm__lmdb_get_time(k.mv_data), head.start_us, id)),
			                   tm__lmdb_val("", 0), "upgrading the store");
	}
	mdb_cursor_close(c);
	if (err)
		return err;
	if (rc != MDB_NOTFOUND)
		return tm__lmdb_fail(t, rc, "upgrading the store");
	rc = mdb_drop(t->txn, queue, 1);
	return rc ? tm__lmdb_fail(t, rc, "upgrading the store") : TM_OK;
}

static int migrate(tm__lmdb_txn *t, uint32_t schema)
{
	int err = TM_OK;

	if (schema == 1)
		err = from_1(t);
	if (!err && schema <= 2)
		err = from_2(t);
	return err;
}

/* Open (or create) the sub-databases, and bring a store of an earlier
 * schema to this one, in one transaction. */
static int open_dbis_once(tm__lmdb *s, bool *map_full)
{
	static const struct { const char *name; size_t off; } dbs[] = {
		{ "records", offsetof(tm__lmdb, records) },
		{ "ids", offsetof(tm__lmdb, ids) },
		{ "active", offsetof(tm__lmdb, active) },
		{ "waiting", offsetof(tm__lmdb, queue) },
		{ "deadlines", offsetof(tm__lmdb, deadlines) },
		{ "secrets", offsetof(tm__lmdb, secrets) },
		{ "slots", offsetof(tm__lmdb, slots) },
		{ "names", offsetof(tm__lmdb, names) },
		{ "meta", offsetof(tm__lmdb, meta) },
	};
	tm__lmdb_txn t = { .s = s };
	MDB_val k = tm__lmdb_val("schema", 6), v;
	uint32_t schema = SCHEMA_VERSION, stored = SCHEMA_VERSION;
	int rc, err = TM_OK;

	rc = mdb_txn_begin(s->env, NULL, 0, &t.txn);
	if (rc)
		return tm__lmdb_error(rc, "opening the store");
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(t.txn, dbs[i].name, MDB_CREATE,
		                  (MDB_dbi *)((char *)s + dbs[i].off));
		if (rc)
			goto fail;
	}
	rc = mdb_get(t.txn, s->meta, &k, &v);
	if (rc == 0 && v.mv_size != sizeof(stored)) {
		err = tm_errorf(TM_ESTORAGE, "store meta record is corrupt");
	} else if (rc == 0) {
		memcpy(&stored, v.mv_data, sizeof(stored));
		if (stored > SCHEMA_VERSION)
			err = tm_errorf(TM_ESTORAGE, "store was written by schema %u; this "
			                "library (%s) reads up to schema %u", stored,
			                TM_VERSION_STRING, SCHEMA_VERSION);
		else if (stored < SCHEMA_VERSION)
			err = migrate(&t, stored);
	} else if (rc != MDB_NOTFOUND) {
		goto fail;
	}
	if (err) {
		*map_full = t.map_full;
		mdb_txn_abort(t.txn);
		return err;
	}
	if (rc == MDB_NOTFOUND || stored < SCHEMA_VERSION) {
		v = tm__lmdb_val(&schema, sizeof(schema));
		rc = mdb_put(t.txn, s->meta, &k, &v, 0);
		if (rc)
			goto fail;
	}
	rc = mdb_txn_commit(t.txn);
	*map_full = rc == MDB_MAP_FULL;
	return rc ? tm__lmdb_error(rc, "opening the store") : TM_OK;
fail:
	*map_full = rc == MDB_MAP_FULL;
	mdb_txn_abort(t.txn);
	return tm__lmdb_error(rc, "opening the store");
}

/* An upgrade may need more room than the map has: grow it, as writes do,
 * up to the cap. */
static int open_dbis(tm__lmdb *s)
{
	for (;;) {
		bool map_full = false;
		int err = open_dbis_once(s, &map_full);
		MDB_envinfo info;

		if (!map_full)
			return err;
		mdb_env_info(s->env, &info);
		if (info.me_mapsize >= s->map_max ||
		    mdb_env_set_mapsize(s->env, info.me_mapsize * 2 < s->map_max ?
		                                info.me_mapsize * 2 : s->map_max) != 0)
			return err;
	}
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
	s->hints = calloc(HINTS, sizeof(*s->hints)); /* without, every read asks ids */

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
	/* The names of data.mdb and keys (made by this open, or by one a power
	 * cut interrupted) are durable before anything is acknowledged. */
	if (!err)
		err = sync_dir(path);
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
	free(s->hints);
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
	return tm__store_clock(s, tm__now_us());
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
	.pause = tm__lmdb_pause, .paused = tm__lmdb_paused,
	.rate_take = tm__lmdb_rate_take, .rate_tokens = tm__lmdb_rate_tokens,
	.names = tm__lmdb_names, .name_finals = tm__lmdb_name_finals,
	.lock_retention = tm__lmdb_lock_retention,
	.cron_get = tm__lmdb_cron_get, .cron_set = tm__lmdb_cron_set,
	.wake_seq = tm__lmdb_wake_seq, .wake = tm__lmdb_wake, .wait = tm__lmdb_wait,
	.size = tm__lmdb_size, .commits = tm__lmdb_commits, .check = tm__lmdb_check,
	.backup = tm__lmdb_backup,
};
