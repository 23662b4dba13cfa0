/* The start every helper process of the integration suite shares
 * (race_helper.c, ordering_helper.c); they link the library alone, without
 * Check. */
#ifndef TM_TEST_HELPER_H
#define TM_TEST_HELPER_H

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "taskmgr.h"

/* Open the store of *o no-sync and without workers, register `name`
 * exclusive without a handler, say "ready" on stdout, and wait until
 * gate_fd reaches end of file: the parent closes its end to let every
 * helper go at once.  Returns the manager, or NULL after printing
 * "error <rc> <message>". */
static inline tm_manager *helper_start(tm_options *o, const char *name, int gate_fd)
{
	tm_job_def d = TM_JOB_DEF_INIT;
	tm_manager *tm = NULL;
	ssize_t n;
	char c;
	int rc;

	o->workers = 0;
	o->flags = TM_OPEN_NOSYNC;
	d.name = name;
	d.flags = TM_JOB_EXCLUSIVE;
	rc = tm_open(o, &tm);
	if (rc == TM_OK)
		rc = tm_register(tm, &d);
	if (rc != TM_OK) {
		printf("error %d %s\n", rc, tm_last_error());
		tm_close(tm);
		return NULL;
	}
	printf("ready\n");
	fflush(stdout);
	do
		n = read(gate_fd, &c, 1);
	while (n > 0 || (n < 0 && errno == EINTR));
	return tm;
}

#endif
