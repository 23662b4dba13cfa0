/* Store growth (doc/runtime.md, "Store growth"; doc/reliability.md, "The
 * full-disk test"): a full disk gives TM_ESTORAGE, loses nothing
 * acknowledged, and the store works again once there is room.
 *
 * Each test mounts a tmpfs of its own (4 MiB) and opens a durable store on
 * it whose map may grow far beyond the filesystem, so the disk, not the map
 * cap, is what fills up.  (The map cap is test_map.c's.)  Mounting needs
 * root or CAP_SYS_ADMIN: without it the program says so and exits 77, which
 * Meson reports as a skip. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define FS_SIZE "4m"
enum { BLOB = 32 * 1024, MAX_TASKS = 1000, MORE = 8 };

static char *base;  /* made by main(): the tests' mount points go in it */

/* Mount a fresh FS_SIZE tmpfs at base/name; returns the path (malloc'd). */
static char *mount_small(const char *name)
{
	char *dir;

	ck_assert_int_ge(asprintf(&dir, "%s/%s", base, name), 0);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_msg(mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV,
	                    "size=" FS_SIZE ",mode=0700") == 0,
	              "mount %s: %s", dir, strerror(errno));
	return dir;
}

static void unmount(char *dir)
{
	ck_assert_msg(umount2(dir, 0) == 0, "umount %s: %s", dir, strerror(errno));
	rmdir(dir);
	free(dir);
}

/* A file of @p bytes that takes room on the filesystem until removed. */
static char *filler(const char *dir, size_t bytes)
{
	static char block[64 * 1024];
	char *path;
	int fd;

	ck_assert_int_ge(asprintf(&path, "%s/filler", dir), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	memset(block, 'f', sizeof(block));
	for (size_t done = 0; done < bytes; done += sizeof(block))
		ck_assert_int_eq(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	ck_assert_int_eq(close(fd), 0);
	return path;
}

/* A durable store (every commit fsynced) whose map starts at 1 MiB and may
 * grow to 64 MiB: sixteen times the filesystem. */
static int open_durable(const char *path, tm_manager **tm)
{
	tm_options o = tt_options(path);
	int err;

	o.flags = 0;
	o.map_size = 1 * MIB;
	o.map_size_max = 64 * MIB;
	err = tm_open(&o, tm);
	if (err == TM_OK)
		tt_register(*tm, "big", 0);
	return err;
}

static char *store_path(const char *dir)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/store", dir), 0);
	return p;
}

/* Trigger big tasks from index `from` until one fails or `limit`; returns
 * the index of the first failure (every index before it acknowledged), its
 * code in *rc and its message in msg. */
static int fill(tm_manager *tm, char ids[][21], int from, int limit, int *rc,
                char msg[512])
{
	int n = tt_fill(tm, "big", BLOB, ids, from, limit, rc);

	snprintf(msg, 512, "%s", *rc == TM_OK ? "" : tm_last_error());
	return n;
}

/* Every acknowledged task reads back whole, nothing else is stored, and
 * every index agrees with the records. */
static void assert_intact(tm_manager *tm, char ids[][21], int n)
{
	tt_assert_filled(tm, "big", BLOB, ids, n);
	tt_assert_check(tm, n);
}

/* Fill the filesystem of @p dir through the store until a trigger fails:
 * it must be TM_ESTORAGE, and nothing acknowledged may be lost, neither in
 * this process nor after a reopen.  Returns the reopened manager, the ids
 * of the n tasks stored in *ids (free it). */
static tm_manager *fill_the_disk(const char *dir, char (**ids_out)[21], int *n)
{
	char *path = store_path(dir), msg[512], (*ids)[21] = calloc(MAX_TASKS, 21);
	tm_manager *tm = NULL;
	int rc, again;

	ck_assert_ptr_nonnull(ids);
	*ids_out = ids;
	ck_assert_ok(open_durable(path, &tm));
	*n = fill(tm, ids, 0, MAX_TASKS, &rc, msg);
	ck_assert_msg(rc == TM_ESTORAGE, "after %d tasks: %s (%s), expected "
	              "STORAGE_ERROR", *n, tm_error_name(rc), msg);
	ck_assert_msg(strstr(msg, "cap") == NULL,
	              "the map cap was hit, not the disk: %s", msg);
	/* It was the disk: a 4 MiB filesystem cannot hold 4 MiB of tasks. */
	ck_assert_int_gt(*n, 0);
	ck_assert_uint_lt((uint64_t)*n * BLOB, 4 * MIB);
	printf("fullfs: %d tasks acknowledged, then: %s\n", *n, msg);
	/* A full disk refuses again, cleanly -- or, once LMDB has reused the
	 * pages the failed write freed (no reader of an older snapshot holds
	 * them any more), takes one more task.  Either way nothing is lost,
	 * and reads go on. */
	again = fill(tm, ids, *n, *n + 1, &rc, msg);
	ck_assert_msg(again == *n + 1 || (again == *n && rc == TM_ESTORAGE),
	              "after a full disk: %d tasks, %s (%s)", again, tm_error_name(rc), msg);
	*n = again;
	assert_intact(tm, ids, *n);
	tm_close(tm);

	/* Reopened on the still-full disk: everything acknowledged is there. */
	tm = NULL;
	ck_assert_ok(open_durable(path, &tm));
	assert_intact(tm, ids, *n);
	free(path);
	return tm;
}

/* Room again: triggers work, and old and new tasks are whole, also after
 * a reopen. */
static void assert_works_again(const char *dir, tm_manager *tm, char ids[][21], int n)
{
	char *path = store_path(dir), msg[512];
	int rc, more = fill(tm, ids, n, n + MORE, &rc, msg);

	ck_assert_msg(more == n + MORE, "only %d triggers after freeing space: "
	              "%s (%s)", more - n, tm_error_name(rc), msg);
	assert_intact(tm, ids, more);
	tm_close(tm);
	tm = NULL;
	ck_assert_ok(open_durable(path, &tm));
	assert_intact(tm, ids, more);
	tm_close(tm);
	free(path);
}

START_TEST(full_disk_refuses_triggers_and_recovers_when_space_is_freed)
{
	char *dir = mount_small("freed"), *fill_file = filler(dir, 1 * MIB), (*ids)[21];
	int n;
	tm_manager *tm = fill_the_disk(dir, &ids, &n);

	ck_assert_int_eq(unlink(fill_file), 0);
	assert_works_again(dir, tm, ids, n);
	free(fill_file);
	free(ids);
	unmount(dir);
}
END_TEST

START_TEST(full_disk_recovers_when_the_filesystem_grows)
{
	char *dir = mount_small("grown"), (*ids)[21];
	int n;
	tm_manager *tm = fill_the_disk(dir, &ids, &n);

	ck_assert_msg(mount("tmpfs", dir, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
	                    "size=8m") == 0, "remount: %s", strerror(errno));
	assert_works_again(dir, tm, ids, n);
	free(ids);
	unmount(dir);
}
END_TEST

START_TEST(status_changes_on_a_full_disk_fail_cleanly_or_succeed)
{
	char *dir = mount_small("changes"), *path = store_path(dir), (*ids)[21];
	int n, rc, ok = 0, done = 0;
	tm_manager *tm = fill_the_disk(dir, &ids, &n);

	/* Each change either fits (LMDB reuses freed pages) or is refused
	 * with STORAGE_ERROR and changes nothing. */
	for (int i = 0; i < n; i++) {
		char st[32];

		rc = tm_patch(tm, "big", ids[i], "{\"completed\":true}", NULL);
		ck_assert_msg(rc == TM_OK || rc == TM_ESTORAGE, "patch gave %s (%s)",
		              tm_error_name(rc), tm_last_error());
		ck_assert_str_eq(tt_status(tm, "big", ids[i], st),
		                 rc == TM_OK ? "COMPLETED" : "REQUEST_SENT");
		ok += rc == TM_OK;
	}
	assert_intact(tm, ids, n);
	tm_close(tm);
	tm = NULL;
	ck_assert_ok(open_durable(path, &tm));
	assert_intact(tm, ids, n);
	/* Exactly the changes that were acknowledged were kept. */
	for (int i = 0; i < n; i++) {
		char st[32];

		done += strcmp(tt_status(tm, "big", ids[i], st), "COMPLETED") == 0;
	}
	ck_assert_int_eq(done, ok);
	printf("fullfs: %d of %d status changes fitted on the full disk\n", ok, n);
	tm_close(tm);
	free(path);
	free(ids);
	unmount(dir);
}
END_TEST

START_TEST(opening_a_store_on_a_full_disk_fails_cleanly)
{
	static char block[4096];
	char *dir = mount_small("open"), *path = store_path(dir), *fill_path;
	tm_manager *tm = NULL;
	ssize_t w;
	int fd, err;

	/* Leave no free block at all. */
	ck_assert_int_ge(asprintf(&fill_path, "%s/filler", dir), 0);
	fd = open(fill_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	while ((w = write(fd, block, sizeof(block))) == (ssize_t)sizeof(block))
		;
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(close(fd), 0);
	/* The store's files cannot be written: an error, not a crash. */
	err = open_durable(path, &tm);
	ck_assert_msg(err == TM_ESTORAGE, "tm_open on a full disk gave %s (%s)",
	              tm_error_name(err), tm_last_error());
	ck_assert_ptr_null(tm);
	/* With room, the same directory opens and works. */
	ck_assert_int_eq(unlink(fill_path), 0);
	ck_assert_ok(open_durable(path, &tm));
	{
		char ids[1][21], msg[512];
		int rc;

		ck_assert_int_eq(fill(tm, ids, 0, 1, &rc, msg), 1);
		assert_intact(tm, ids, 1);
	}
	tm_close(tm);
	free(fill_path);
	free(path);
	unmount(dir);
}
END_TEST

/* Whether this process may mount a tmpfs at all. */
static int can_mount(char *why, size_t len)
{
	char *dir;
	int ok;

	if (asprintf(&dir, "%s/probe", base) < 0 || mkdir(dir, 0700) != 0)
		return 0;
	ok = mount("tmpfs", dir, "tmpfs", 0, "size=64k") == 0;
	if (!ok)
		snprintf(why, len, "%s", strerror(errno));
	else
		umount2(dir, MNT_DETACH);
	rmdir(dir);
	free(dir);
	return ok;
}

int main(void)
{
	static const char *const mounts[] = { "freed", "grown", "changes", "open" };
	const TTest *const tests[] = {
		full_disk_refuses_triggers_and_recovers_when_space_is_freed,
		full_disk_recovers_when_the_filesystem_grows,
		status_changes_on_a_full_disk_fail_cleanly_or_succeed,
		opening_a_store_on_a_full_disk_fails_cleanly,
	};
	char why[256] = "", path[4096];
	int rc;

	/* Not tt_tmpdir(): Check's assertions work only inside a test. */
	if (asprintf(&base, "%s/tmfullfs-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR")
	             ? getenv("TMPDIR") : "/tmp") < 0 || mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (!can_mount(why, sizeof(why))) {
		printf("SKIP: cannot mount a tmpfs (%s): the full-disk tests need "
		       "root or CAP_SYS_ADMIN\n", why);
		rmdir(base);
		return 77;
	}
	rc = tt_run_tests("fullfs", tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
	/* A test that died leaves its filesystem mounted: detach it here. */
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, mounts[i]);
		umount2(path, MNT_DETACH);
	}
	tt_rmdir(base);
	free(base);
	return rc;
}
