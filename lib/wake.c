/* Wake-ups across processes: a one-page file beside the store, mapped
 * shared, whose first word is a futex.  A process that queued work bumps
 * it and wakes every waiter; each process's supervisor sleeps on it (with
 * its tick as the timeout), so work triggered by another process starts in
 * microseconds instead of a poll interval.  Losing this file loses nothing:
 * the supervisor's poll still finds the work. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "wake.h"

struct wake_page {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
};

struct tm__wake {
	struct wake_page *page;
	_Atomic uint32_t local_waiters;  /* of this process, among page->waiters */
};

int tm__wake_open(const char *dir, tm__wake **out)
{
	char path[PATH_MAX];
	struct stat st;
	tm__wake *w;
	int fd;

	*out = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/wake", dir) >= sizeof(path))
		return tm_errorf(TM_EINVAL, "store path is too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return tm__error_sys(errno, path);
	/* Allocate the page now: touching a hole of a full file system
	 * through the mapping would be SIGBUS, not an error. */
	if (fstat(fd, &st) != 0 ||
	    (errno = posix_fallocate(fd, 0, 4096)) != 0) {
		int e = errno;
		close(fd);
		return tm__error_sys(e, path);
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		close(fd);
		return tm__error_oom();
	}
	w->page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (w->page == MAP_FAILED) {
		int e = errno;
		free(w);
		return tm__error_sys(e, path);
	}
	*out = w;
	return TM_OK;
}

void tm__wake_close(tm__wake *w)
{
	if (w == NULL)
		return;
	munmap(w->page, 4096);
	free(w);
}

uint32_t tm__wake_seq(tm__wake *w)
{
	return atomic_load(&w->page->seq);
}

void tm__wake_signal(tm__wake *w, bool self_too)
{
	uint32_t others;

	atomic_fetch_add(&w->page->seq, 1);
	/* A wake-up costs a system call and a context switch on the caller's
	 * CPU: skip it when the only sleeper is this process's own supervisor
	 * and the caller has already woken what it needs here. */
	others = atomic_load(&w->page->waiters) -
	         (self_too ? 0 : atomic_load(&w->local_waiters));
	if ((int32_t)others > 0)
		syscall(SYS_futex, &w->page->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void tm__wake_wait(tm__wake *w, uint32_t seen, unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	atomic_fetch_add(&w->local_waiters, 1);
	atomic_fetch_add(&w->page->waiters, 1);
	/* Returns at once if seq moved since `seen`: no wake-up is lost. */
	syscall(SYS_futex, &w->page->seq, FUTEX_WAIT, seen, &ts, NULL, 0);
	atomic_fetch_sub(&w->page->waiters, 1);
	atomic_fetch_sub(&w->local_waiters, 1);
}
