/* A power cut, simulated: an LD_PRELOAD layer that keeps, beside the files
 * of one directory, the image a disk would hold after the power failed.
 *
 * The real files play the page cache: every call is made on them as usual,
 * so the process reads what it wrote.  The layer also keeps, per file, a
 * shadow copy in POWERCUT_SHADOW that holds only what was made durable:
 * the writes since the file's last sync wait in an in-memory log, and a
 * sync applies them to the shadow.  At the cut (the POWERCUT_AT-th tracked
 * call, before or after making it), the layer leaves the shadow as the
 * disk would be, writes a report, and kills the process with SIGKILL; the
 * test then swaps the shadow in for the directory.  What makes a write
 * durable:
 *
 *   - fsync or fdatasync of any descriptor of the file: every write,
 *     truncation and allocation logged for that file so far;
 *   - a write through a descriptor opened O_DSYNC or O_SYNC (LMDB writes its
 *     meta pages so): that write, when the call returns;
 *   - msync(MS_SYNC) of a shared writable mapping of the file: the range;
 *   - sync() or syncfs(): everything.
 *
 * Directory entries: a file created during the run is in the image once
 * the file itself was synced (what ext4 and XFS give: the fsync of a new
 * file commits the journal that holds its entry), or, with
 * POWERCUT_STRICT_DIRS=1, only once the directory was fsynced (POSIX).
 *
 * At the cut, POWERCUT_MODE=drop loses every write not yet durable;
 * POWERCUT_MODE=reorder keeps a random subset of them, in 4 KiB pieces
 * aligned in the file, and each pending truncation or allocation and each
 * entry not yet durable with even odds: a disk may have written any of
 * them, in any order, since the last barrier.  Nothing is torn inside a
 * 4 KiB piece, and a durable write is never lost.
 *
 * The layer does not pass fsync, fdatasync, msync, O_DSYNC or O_SYNC on to
 * the real disk (POWERCUT_REAL_SYNC=1 does): the real disk is not the one
 * that loses power, and the test runs many times faster without.
 *
 * Calls the layer cannot model on a tracked file (rename, unlink, dup,
 * O_APPEND, hole punching, a relative path) end the process with exit
 * status 97 and a line in the report, so that a library that starts to make
 * them fails the test instead of passing it untested.  Only absolute paths
 * of the form POWERCUT_DIR/NAME (or POWERCUT_DIR itself) are tracked.
 *
 * Environment:
 *   POWERCUT_DIR      directory whose files are tracked (absolute)
 *   POWERCUT_SHADOW   directory of the durable images (absolute, exists,
 *                     holds a copy of the files of POWERCUT_DIR at start)
 *   POWERCUT_REPORT   file the cut's report line is written to
 *   POWERCUT_AT       the tracked call at which to cut (1, 2, ...; 0: never)
 *   POWERCUT_WHEN     "before" or "after" that call is made
 *   POWERCUT_MODE     "drop" (default) or "reorder"
 *   POWERCUT_SEED     seed of the reorder mode's choices
 *   POWERCUT_STRICT_DIRS, POWERCUT_REAL_SYNC   as above
 *   POWERCUT_TRACE=1  each tracked call on stderr
 *   POWERCUT_BREAK    for proving the test can fail: "nosync" (a sync makes
 *                     nothing durable), "nodsync" (O_DSYNC writes are not
 *                     durable), "late" (the shadow lags one sync behind)
 *
 * Tracked calls, counted for POWERCUT_AT: open with O_CREAT or O_TRUNC,
 * write, pwrite, writev, pwritev, ftruncate, fallocate, posix_fallocate,
 * fsync, fdatasync, msync. */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE 1
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define FD_MAX 4096
#define FILES_MAX 32
#define MAPS_MAX 32
#define PIECE 4096

enum kind { K_WRITE, K_DURABLE, K_TRUNC, K_ALLOC };

struct ent {
	enum kind kind;
	off_t off;
	size_t len;           /* K_ALLOC: allocated length; K_TRUNC: unused */
	unsigned char *data;  /* K_WRITE, K_DURABLE */
};

struct file {
	char name[256];       /* inside the directory */
	mode_t mode;          /* of a file created here */
	int entry_durable;    /* its directory entry is in the image */
	int shadow_fd;        /* the image, open; -1 before */
	struct ent *log;      /* not yet durable (and durable ones, for order) */
	size_t n, cap;
	size_t lag;           /* POWERCUT_BREAK=late: entries one sync behind */
};

struct map {
	unsigned char *addr;
	size_t len;
	off_t off;
	int file;
};

/* The real functions. */
static int (*r_open)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static int (*r_ftruncate)(int, off_t);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_posix_fallocate)(int, off_t, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_msync)(void *, size_t, int);
static int (*r_close)(int);
static void *(*r_mmap)(void *, size_t, int, int, int, off_t);
static int (*r_munmap)(void *, size_t);
static int (*r_rename)(const char *, const char *);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_unlink)(const char *);
static int (*r_unlinkat)(int, const char *, int);
static int (*r_dup)(int);
static int (*r_dup2)(int, int);
static int (*r_dup3)(int, int, int);
static void (*r_sync)(void);
static int (*r_syncfs)(int);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static char dir[4096], shadow[4096], report[4096];
static size_t dir_len;
static int active;              /* POWERCUT_DIR and POWERCUT_SHADOW set */
static long cut_at, events;
static int cut_after, reorder, strict_dirs, real_sync, trace;
static enum { B_NONE, B_NOSYNC, B_NODSYNC, B_LATE } broken;
static uint64_t rng;

/* fd -> 0 (untracked), or 1 + file index, | DSYNC_BIT, or DIR_FD. */
#define DSYNC_BIT 0x10000
#define DIR_FD 0x20000
static _Atomic int fdtab[FD_MAX];
static struct file files[FILES_MAX];
static int n_files;
static struct map maps[MAPS_MAX];

/* ---- set-up ------------------------------------------------------------ */

#define REAL(name) (*(void **)&r_##name = dlsym(RTLD_NEXT, #name))

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static int find_file(const char *name);
static int add_file(const char *name, int entry_durable);

static void init(void)
{
	const char *d = getenv("POWERCUT_DIR"), *s = getenv("POWERCUT_SHADOW");
	const char *v;
	DIR *dp;
	struct dirent *e;

	REAL(open); REAL(openat); REAL(write); REAL(pwrite); REAL(writev);
	REAL(pwritev); REAL(ftruncate); REAL(fallocate); REAL(posix_fallocate);
	REAL(fsync); REAL(fdatasync); REAL(msync); REAL(close); REAL(mmap);
	REAL(munmap); REAL(rename); REAL(renameat); REAL(unlink); REAL(unlinkat);
	REAL(dup); REAL(dup2); REAL(dup3); REAL(sync); REAL(syncfs);
	v = getenv("POWERCUT_REPORT");
	snprintf(report, sizeof(report), "%s", v ? v : "");
	if (d == NULL || s == NULL || d[0] != '/' || s[0] != '/')
		return;
	snprintf(dir, sizeof(dir), "%s", d);
	dir_len = strlen(dir);
	while (dir_len > 1 && dir[dir_len - 1] == '/')
		dir[--dir_len] = '\0';
	snprintf(shadow, sizeof(shadow), "%s", s);
	cut_at = (v = getenv("POWERCUT_AT")) ? atol(v) : 0;
	cut_after = (v = getenv("POWERCUT_WHEN")) && strcmp(v, "after") == 0;
	reorder = (v = getenv("POWERCUT_MODE")) && strcmp(v, "reorder") == 0;
	strict_dirs = (v = getenv("POWERCUT_STRICT_DIRS")) && strcmp(v, "1") == 0;
	real_sync = (v = getenv("POWERCUT_REAL_SYNC")) && strcmp(v, "1") == 0;
	trace = (v = getenv("POWERCUT_TRACE")) && strcmp(v, "1") == 0;
	rng = (v = getenv("POWERCUT_SEED")) ? strtoull(v, NULL, 10) : 1;
	rng = rng * 2654435761u + 0x9e3779b97f4a7c15ull;
	if ((v = getenv("POWERCUT_BREAK")) != NULL) {
		if (strcmp(v, "nosync") == 0)
			broken = B_NOSYNC;
		else if (strcmp(v, "nodsync") == 0)
			broken = B_NODSYNC;
		else if (strcmp(v, "late") == 0)
			broken = B_LATE;
	}
	/* The files already in the image: durable entries and contents. */
	dp = opendir(shadow);
	if (dp == NULL)
		die("cannot read %s: %s", shadow, strerror(errno));
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.' && find_file(e->d_name) < 0)
			add_file(e->d_name, 1);
	closedir(dp);
	active = 1;
}

static void setup(void)
{
	pthread_once(&once, init);
}

/* ---- the report, and the end --------------------------------------------- */

static void say(const char *line)
{
	int fd;

	if (report[0] == '\0') {
		(void)!r_write(2, line, strlen(line));
		return;
	}
	fd = r_open(report, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		(void)!r_write(fd, line, strlen(line));
		r_close(fd);
	}
}

static void die(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "error ");

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	say(line);
	_exit(97);
}

/* ---- files --------------------------------------------------------------- */

static int find_file(const char *name)
{
	for (int i = 0; i < n_files; i++)
		if (strcmp(files[i].name, name) == 0)
			return i;
	return -1;
}

static int add_file(const char *name, int entry_durable)
{
	struct file *f;

	if (n_files == FILES_MAX)
		die("more than %d files in %s", FILES_MAX, dir);
	f = &files[n_files];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->entry_durable = entry_durable;
	f->mode = 0644;
	f->shadow_fd = -1;
	return n_files++;
}

/* The image of file i, open (created empty when missing). */
static int shadow_fd(int i)
{
	struct file *f = &files[i];
	char path[8192];

	if (f->shadow_fd < 0) {
		if (snprintf(path, sizeof(path), "%s/%s", shadow, f->name) >= (int)sizeof(path))
			die("path too long");
		f->shadow_fd = r_open(path, O_RDWR | O_CREAT | O_CLOEXEC, f->mode);
		if (f->shadow_fd < 0)
			die("cannot open the image %s: %s", path, strerror(errno));
	}
	return f->shadow_fd;
}

/* "DIR/NAME" -> NAME; "DIR" or "DIR/" -> ""; anything else -> NULL.
 * A relative path that might name a tracked file is refused. */
static const char *tracked_name(int dirfd, const char *path)
{
	const char *rest;

	if (!active || path == NULL)
		return NULL;
	if (path[0] != '/') {
		char cwd[4096];

		if (dirfd == AT_FDCWD && getcwd(cwd, sizeof(cwd)) &&
		    strncmp(cwd, dir, dir_len) != 0)
			return NULL;
		if (dirfd != AT_FDCWD && (dirfd < 0 || dirfd >= FD_MAX ||
		                          atomic_load(&fdtab[dirfd]) == 0))
			return NULL;
		die("a relative path into the tracked directory: %s", path);
	}
	if (strncmp(path, dir, dir_len) != 0)
		return NULL;
	rest = path + dir_len;
	if (*rest == '\0')
		return rest;
	if (*rest != '/')
		return NULL;
	while (*rest == '/')
		rest++;
	if (strchr(rest, '/') != NULL)
		return NULL; /* a subdirectory: the library makes none */
	if (strcmp(rest, ".") == 0 || strcmp(rest, "..") == 0)
		die("an unexpected path: %s", path);
	return rest;
}

static int fd_entry(int fd)
{
	return fd >= 0 && fd < FD_MAX ? atomic_load_explicit(&fdtab[fd], memory_order_relaxed) : 0;
}

/* ---- the log and the image ------------------------------------------------ */

static void log_add(int i, enum kind k, off_t off, size_t len, const void *data)
{
	struct file *f = &files[i];
	struct ent *e;

	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->log = realloc(f->log, f->cap * sizeof(*f->log));
		if (f->log == NULL)
			die("out of memory");
	}
	e = &f->log[f->n++];
	e->kind = k;
	e->off = off;
	e->len = len;
	e->data = NULL;
	if (data) {
		e->data = malloc(len ? len : 1);
		if (e->data == NULL)
			die("out of memory");
		memcpy(e->data, data, len);
	}
}

static void image_write(int i, off_t off, const void *data, size_t len)
{
	int fd = shadow_fd(i);

	for (size_t done = 0; done < len;) {
		ssize_t n = r_pwrite(fd, (const char *)data + done, len - done,
		                     off + (off_t)done);

		if (n <= 0)
			die("writing the image of %s: %s", files[i].name, strerror(errno));
		done += (size_t)n;
	}
}

static void image_size(int i, enum kind k, off_t off, size_t len)
{
	int fd = shadow_fd(i);
	struct stat st;

	if (k == K_TRUNC) {
		if (r_ftruncate(fd, off) != 0)
			die("truncating the image of %s: %s", files[i].name, strerror(errno));
	} else if (fstat(fd, &st) == 0 && st.st_size < off + (off_t)len) {
		if (r_ftruncate(fd, off + (off_t)len) != 0)
			die("growing the image of %s: %s", files[i].name, strerror(errno));
	}
}

static void apply(int i, const struct ent *e)
{
	if (e->kind == K_WRITE || e->kind == K_DURABLE)
		image_write(i, e->off, e->data, e->len);
	else
		image_size(i, e->kind, e->off, e->len);
}

static void log_clear(int i, size_t upto)
{
	struct file *f = &files[i];

	for (size_t k = 0; k < upto; k++)
		free(f->log[k].data);
	memmove(f->log, f->log + upto, (f->n - upto) * sizeof(*f->log));
	f->n -= upto;
}

/* A sync of file i: everything logged becomes durable. */
static void sync_file(int i)
{
	struct file *f = &files[i];
	size_t upto = f->n;

	if (broken == B_NOSYNC)
		return;
	if (broken == B_LATE) {
		/* Broken on purpose: a sync makes durable only what the
		 * previous sync of the file should have. */
		upto = f->lag;
		f->lag = f->n - upto;
	}
	for (size_t k = 0; k < upto; k++)
		apply(i, &f->log[k]);
	log_clear(i, upto);
	if (!strict_dirs && !f->entry_durable) {
		f->entry_durable = 1;
		shadow_fd(i);
	}
}

static void sync_dir(void)
{
	/* Every file there now has its entry in the image, with its
	 * durable contents (empty if none were synced). */
	for (int i = 0; i < n_files; i++) {
		if (!files[i].entry_durable) {
			files[i].entry_durable = 1;
			shadow_fd(i);
		}
	}
}

/* ---- the cut ---------------------------------------------------------------- */

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static _Noreturn void cut(const char *call, const char *name)
{
	long writes = 0, pieces_kept = 0, pieces_lost = 0, size_ops = 0;
	long long bytes = 0, bytes_kept = 0, bytes_lost = 0;
	int files_lost = 0;
	char line[1024];

	for (int j = 0; j < n_files; j++) {
		struct file *f = &files[j];
		/* A file whose entry is not durable: in reorder mode, the
		 * file system may have written its entry; else it is gone. */
		int keep_entry = f->entry_durable || (reorder && next_rand() % 2);

		if (keep_entry)
			shadow_fd(j);
		for (size_t k = 0; k < f->n; k++) {
			struct ent *e = &f->log[k];

			if (e->kind == K_DURABLE) {
				if (keep_entry)
					apply(j, e); /* in order with what is kept */
				continue;
			}
			if (e->kind != K_WRITE) {
				size_ops++;
				if (keep_entry && reorder && next_rand() % 2)
					apply(j, e);
				continue;
			}
			writes++;
			bytes += (long long)e->len;
			/* Each 4 KiB piece of the file the write touched. */
			for (off_t at = e->off; at < e->off + (off_t)e->len;) {
				off_t end = (at / PIECE + 1) * PIECE;
				size_t n;

				if (end > e->off + (off_t)e->len)
					end = e->off + (off_t)e->len;
				n = (size_t)(end - at);
				if (keep_entry && reorder && next_rand() % 2) {
					image_write(j, at, e->data + (at - e->off), n);
					pieces_kept++;
					bytes_kept += (long long)n;
				} else {
					pieces_lost++;
					bytes_lost += (long long)n;
				}
				at = end;
			}
		}
		if (!keep_entry) {
			char path[8192];

			if (snprintf(path, sizeof(path), "%s/%s", shadow, f->name) >= (int)sizeof(path))
				die("path too long");
			if (r_unlink(path) != 0 && errno != ENOENT)
				die("removing %s: %s", path, strerror(errno));
			files_lost++;
		}
	}
	snprintf(line, sizeof(line),
	         "cut event=%ld when=%s call=%s file=%s mode=%s unsynced_writes=%ld "
	         "unsynced_bytes=%lld pieces_lost=%ld bytes_lost=%lld pieces_kept=%ld "
	         "bytes_kept=%lld size_ops=%ld files_lost=%d\n",
	         events, cut_after ? "after" : "before", call, name,
	         reorder ? "reorder" : "drop", writes, bytes, pieces_lost, bytes_lost,
	         pieces_kept, bytes_kept, size_ops, files_lost);
	say(line);
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

/* Count a tracked call; cut before it when it is the one. */
static void event(const char *call, const char *name)
{
	if (trace) {
		char line[512];

		snprintf(line, sizeof(line), "powercut: %ld %s %s\n", events + 1, call, name);
		(void)!r_write(2, line, strlen(line));
	}
	if (++events == cut_at && !cut_after)
		cut(call, name);
}

/* After the call was made: cut when it was the one. */
static void after(const char *call, const char *name)
{
	if (events == cut_at && cut_after)
		cut(call, name);
}

/* ---- opening and closing ---------------------------------------------------- */

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	const char *name;
	int fd, i, real_flags = flags, dsync = (flags & O_DSYNC) != 0;

	setup();
	name = tracked_name(dirfd, path);
	if (name == NULL)
		return dirfd == AT_FDCWD ? r_open(path, flags, mode) : r_openat(dirfd, path, flags, mode);
	pthread_mutex_lock(&mu);
	if (*name == '\0') {
		/* The directory itself: fsync of it makes entries durable. */
		fd = r_open(path, flags, mode);
		if (fd >= 0 && fd < FD_MAX)
			atomic_store(&fdtab[fd], DIR_FD);
		pthread_mutex_unlock(&mu);
		return fd;
	}
	if (flags & O_APPEND)
		die("O_APPEND on %s", path);
	if ((flags & (O_CREAT | O_TRUNC)) != 0)
		event("open", name);
	if (!real_sync)
		real_flags &= ~(O_DSYNC | O_SYNC);
	fd = r_open(path, real_flags, mode);
	if (fd >= 0) {
		if (fd >= FD_MAX)
			die("descriptor %d too high", fd);
		i = find_file(name);
		if (i < 0) {
			i = add_file(name, 0); /* created now: not yet durable */
			files[i].mode = mode & 07777;
		}
		if (flags & O_TRUNC)
			log_add(i, K_TRUNC, 0, 0, NULL);
		atomic_store(&fdtab[fd], (i + 1) | (dsync ? DSYNC_BIT : 0));
	}
	if ((flags & (O_CREAT | O_TRUNC)) != 0)
		after("open", name);
	pthread_mutex_unlock(&mu);
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags | O_LARGEFILE, mode);
}

EXPORT int __open_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

EXPORT int creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_LARGEFILE, mode);
}

EXPORT int close(int fd)
{
	int rc;

	setup();
	if (fd_entry(fd) == 0)
		return r_close(fd);
	pthread_mutex_lock(&mu);
	atomic_store(&fdtab[fd], 0);
	rc = r_close(fd);
	pthread_mutex_unlock(&mu);
	return rc;
}

/* ---- writes ------------------------------------------------------------------- */

static ssize_t do_write(int fd, const struct iovec *iov, int iovcnt, off_t off,
                        int positioned, const char *call)
{
	int t = fd_entry(fd), i;
	unsigned char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	if (t == 0 || t == DIR_FD) {
		if (positioned)
			return iovcnt == 1 ? r_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off)
			                   : r_pwritev(fd, iov, iovcnt, off);
		return iovcnt == 1 ? r_write(fd, iov[0].iov_base, iov[0].iov_len)
		                   : r_writev(fd, iov, iovcnt);
	}
	i = (t & 0xffff) - 1;
	pthread_mutex_lock(&mu);
	event(call, files[i].name);
	if (!positioned)
		off = lseek(fd, 0, SEEK_CUR);
	if (off < 0)
		die("no offset for a write to %s", files[i].name);
	if (positioned)
		n = iovcnt == 1 ? r_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off)
		                : r_pwritev(fd, iov, iovcnt, off);
	else
		n = iovcnt == 1 ? r_write(fd, iov[0].iov_base, iov[0].iov_len)
		                : r_writev(fd, iov, iovcnt);
	if (n > 0) {
		/* What reached the file, gathered. */
		buf = malloc((size_t)n);
		if (buf == NULL)
			die("out of memory");
		for (int k = 0; k < iovcnt && len < (size_t)n; k++) {
			size_t c = iov[k].iov_len < (size_t)n - len ? iov[k].iov_len : (size_t)n - len;

			memcpy(buf + len, iov[k].iov_base, c);
			len += c;
		}
		if ((t & DSYNC_BIT) && broken != B_NODSYNC) {
			/* Durable when the call returns; logged too, so that
			 * a later sync does not put older writes over it. */
			image_write(i, off, buf, len);
			log_add(i, K_DURABLE, off, len, buf);
			if (!strict_dirs)
				files[i].entry_durable = 1;
		} else {
			log_add(i, K_WRITE, off, len, buf);
		}
		free(buf);
	}
	after(call, files[i].name);
	pthread_mutex_unlock(&mu);
	return n;
}

EXPORT ssize_t write(int fd, const void *p, size_t n)
{
	struct iovec v = { (void *)p, n };

	setup();
	return do_write(fd, &v, 1, 0, 0, "write");
}

EXPORT ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
	struct iovec v = { (void *)p, n };

	setup();
	return do_write(fd, &v, 1, off, 1, "pwrite");
}

EXPORT ssize_t pwrite64(int fd, const void *p, size_t n, off64_t off)
{
	struct iovec v = { (void *)p, n };

	setup();
	return do_write(fd, &v, 1, off, 1, "pwrite");
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	setup();
	return do_write(fd, iov, iovcnt, 0, 0, "writev");
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	setup();
	return do_write(fd, iov, iovcnt, off, 1, "pwritev");
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off)
{
	setup();
	return do_write(fd, iov, iovcnt, off, 1, "pwritev");
}

/* ---- sizes ---------------------------------------------------------------------- */

static int do_size(int fd, enum kind k, int mode, off_t off, off_t len, const char *call)
{
	int t = fd_entry(fd), i, rc;

	if (t == 0 || t == DIR_FD) {
		if (k == K_TRUNC)
			return r_ftruncate(fd, off);
		return mode < 0 ? r_posix_fallocate(fd, off, len) : r_fallocate(fd, mode, off, len);
	}
	i = (t & 0xffff) - 1;
	if (k == K_ALLOC && mode > 0 && mode != FALLOC_FL_KEEP_SIZE)
		die("fallocate mode %d on %s", mode, files[i].name);
	pthread_mutex_lock(&mu);
	event(call, files[i].name);
	if (k == K_TRUNC)
		rc = r_ftruncate(fd, off);
	else
		rc = mode < 0 ? r_posix_fallocate(fd, off, len) : r_fallocate(fd, mode, off, len);
	/* posix_fallocate returns the error; the others set errno. */
	if (rc == 0 && !(k == K_ALLOC && mode == FALLOC_FL_KEEP_SIZE))
		log_add(i, k, off, (size_t)len, NULL);
	after(call, files[i].name);
	pthread_mutex_unlock(&mu);
	return rc;
}

EXPORT int ftruncate(int fd, off_t len)
{
	setup();
	return do_size(fd, K_TRUNC, 0, len, 0, "ftruncate");
}

EXPORT int ftruncate64(int fd, off64_t len)
{
	setup();
	return do_size(fd, K_TRUNC, 0, len, 0, "ftruncate");
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	setup();
	return do_size(fd, K_ALLOC, mode, off, len, "fallocate");
}

EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	setup();
	return do_size(fd, K_ALLOC, mode, off, len, "fallocate");
}

EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
	setup();
	return do_size(fd, K_ALLOC, -1, off, len, "posix_fallocate");
}

EXPORT int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	setup();
	return do_size(fd, K_ALLOC, -1, off, len, "posix_fallocate");
}

/* ---- syncs ------------------------------------------------------------------------ */

static int do_sync(int fd, int data_only, const char *call)
{
	int t = fd_entry(fd), i, rc = 0;

	if (t == 0)
		return data_only ? r_fdatasync(fd) : r_fsync(fd);
	pthread_mutex_lock(&mu);
	if (t == DIR_FD) {
		event(call, ".");
		if (real_sync)
			rc = r_fsync(fd);
		if (rc == 0)
			sync_dir();
		after(call, ".");
		pthread_mutex_unlock(&mu);
		return rc;
	}
	i = (t & 0xffff) - 1;
	event(call, files[i].name);
	if (real_sync)
		rc = data_only ? r_fdatasync(fd) : r_fsync(fd);
	if (rc == 0)
		sync_file(i);
	after(call, files[i].name);
	pthread_mutex_unlock(&mu);
	return rc;
}

EXPORT int fsync(int fd)
{
	setup();
	return do_sync(fd, 0, "fsync");
}

EXPORT int fdatasync(int fd)
{
	setup();
	return do_sync(fd, 1, "fdatasync");
}

EXPORT void sync(void)
{
	setup();
	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_files; i++)
		sync_file(i);
	sync_dir();
	pthread_mutex_unlock(&mu);
	r_sync();
}

EXPORT int syncfs(int fd)
{
	setup();
	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_files; i++)
		sync_file(i);
	sync_dir();
	pthread_mutex_unlock(&mu);
	return r_syncfs(fd);
}

/* ---- mappings ------------------------------------------------------------------------ */

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int t = fd_entry(fd);
	void *p = r_mmap(addr, len, prot, flags, fd, off);

	if (p == MAP_FAILED || t == 0 || t == DIR_FD || !(prot & PROT_WRITE) ||
	    !(flags & MAP_SHARED))
		return p;
	pthread_mutex_lock(&mu);
	for (int k = 0; k < MAPS_MAX; k++) {
		if (maps[k].addr == NULL) {
			maps[k] = (struct map){ p, len, off, (t & 0xffff) - 1 };
			pthread_mutex_unlock(&mu);
			return p;
		}
	}
	die("more than %d writable mappings", MAPS_MAX);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	setup();
	return do_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	setup();
	return do_mmap(addr, len, prot, flags, fd, off);
}

EXPORT int munmap(void *addr, size_t len)
{
	setup();
	pthread_mutex_lock(&mu);
	for (int k = 0; k < MAPS_MAX; k++)
		if (maps[k].addr == addr)
			maps[k].addr = NULL;
	pthread_mutex_unlock(&mu);
	return r_munmap(addr, len);
}

/* Writes through a shared mapping are durable after msync(MS_SYNC) of
 * their range; without it (the lock file, the wake file), never. */
EXPORT int msync(void *addr, size_t len, int flags)
{
	unsigned char *a = addr;
	int rc = 0;

	setup();
	pthread_mutex_lock(&mu);
	for (int k = 0; k < MAPS_MAX; k++) {
		struct map *m = &maps[k];
		unsigned char *lo, *hi;

		if (m->addr == NULL || a >= m->addr + m->len || a + len <= m->addr)
			continue;
		lo = a > m->addr ? a : m->addr;
		hi = a + len < m->addr + m->len ? a + len : m->addr + m->len;
		event("msync", files[m->file].name);
		if (real_sync || !(flags & MS_SYNC))
			rc = r_msync(addr, len, flags);
		if (rc == 0 && (flags & MS_SYNC)) {
			off_t at = m->off + (lo - m->addr);

			if (broken != B_NOSYNC) {
				image_write(m->file, at, lo, (size_t)(hi - lo));
				log_add(m->file, K_DURABLE, at, (size_t)(hi - lo), lo);
			}
		}
		after("msync", files[m->file].name);
		pthread_mutex_unlock(&mu);
		return rc;
	}
	pthread_mutex_unlock(&mu);
	return r_msync(addr, len, flags);
}

/* ---- what the layer does not model on a tracked file ---------------------------------- */

static void refuse_path(int dirfd, const char *path, const char *call)
{
	const char *name = tracked_name(dirfd, path);

	if (name != NULL && *name != '\0')
		die("%s of %s is not modelled", call, path);
}

EXPORT int rename(const char *from, const char *to)
{
	setup();
	refuse_path(AT_FDCWD, from, "rename");
	refuse_path(AT_FDCWD, to, "rename");
	return r_rename(from, to);
}

EXPORT int renameat(int fd1, const char *from, int fd2, const char *to)
{
	setup();
	refuse_path(fd1, from, "renameat");
	refuse_path(fd2, to, "renameat");
	return r_renameat(fd1, from, fd2, to);
}

EXPORT int unlink(const char *path)
{
	setup();
	refuse_path(AT_FDCWD, path, "unlink");
	return r_unlink(path);
}

EXPORT int unlinkat(int fd, const char *path, int flags)
{
	setup();
	refuse_path(fd, path, "unlinkat");
	return r_unlinkat(fd, path, flags);
}

EXPORT int dup(int fd)
{
	setup();
	if (fd_entry(fd) != 0)
		die("dup of a tracked descriptor");
	return r_dup(fd);
}

EXPORT int dup2(int fd, int to)
{
	setup();
	if (fd_entry(fd) != 0 || fd_entry(to) != 0)
		die("dup2 of a tracked descriptor");
	return r_dup2(fd, to);
}

EXPORT int dup3(int fd, int to, int flags)
{
	setup();
	if (fd_entry(fd) != 0 || fd_entry(to) != 0)
		die("dup3 of a tracked descriptor");
	return r_dup3(fd, to, flags);
}
