/* A process of test_ordering.c: races on an exclusive name from threads of
 * its own and writes what it observed.
 *
 *   ordering-helper STORE_DIR START_FD NAME PROC THREADS OPS LOG_FILE
 *
 * Opens the store (no-sync, no workers, no retention), registers NAME exclusive without a
 * handler, prints "ready", waits until START_FD reaches end of file (the
 * parent closes its end), runs THREADS threads of OPS operations each
 * (ordering_load.c), writes their log to LOG_FILE and prints "done".
 * Exit status 0 unless it could not run. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ordering_load.h"

struct worker {
	tm_manager *tm;
	const char *name;
	unsigned proc, thread, ops;
	struct ol_log log;
	pthread_t th;
};

static void *work(void *p)
{
	struct worker *w = p;

	ol_run(w->tm, w->name, w->proc, w->thread, w->ops,
	       w->proc * 7919u + w->thread * 104729u + (unsigned)getpid(), &w->log);
	return NULL;
}

int main(int argc, char **argv)
{
	tm_options o;
	tm_job_def d;
	tm_manager *tm = NULL;
	struct worker *w;
	struct ol_log all = { 0 };
	unsigned threads;
	FILE *f;
	char c;
	ssize_t n;
	int rc;

	if (argc != 8) {
		fprintf(stderr, "usage: %s STORE_DIR START_FD NAME PROC THREADS OPS "
		        "LOG_FILE\n", argv[0]);
		return 2;
	}
	threads = (unsigned)atoi(argv[5]);
	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = argv[1];
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	o.keep_count = UINT_MAX; /* no retention: the parent checks every task */
	rc = tm_open(&o, &tm);
	if (rc == TM_OK) {
		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = argv[3];
		d.flags = TM_JOB_EXCLUSIVE;
		rc = tm_register(tm, &d);
	}
	w = calloc(threads ? threads : 1, sizeof(*w));
	if (rc != TM_OK || w == NULL) {
		printf("error %d %s\n", rc, tm_last_error());
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	do
		n = read(atoi(argv[2]), &c, 1);
	while (n > 0 || (n < 0 && errno == EINTR));
	for (unsigned i = 0; i < threads; i++) {
		w[i] = (struct worker){ .tm = tm, .name = argv[3],
		                        .proc = (unsigned)atoi(argv[4]), .thread = i,
		                        .ops = (unsigned)atoi(argv[6]) };
		if (pthread_create(&w[i].th, NULL, work, &w[i]) != 0) {
			printf("error: pthread_create\n");
			return 2;
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(w[i].th, NULL);
		ol_append(&all, &w[i].log);
		ol_free(&w[i].log);
	}
	tm_close(tm);
	f = fopen(argv[7], "w");
	if (f == NULL || ol_write(f, &all) < 0 || fclose(f) != 0) {
		printf("error: cannot write %s\n", argv[7]);
		return 2;
	}
	ol_free(&all);
	free(w);
	printf("done\n");
	return 0;
}
