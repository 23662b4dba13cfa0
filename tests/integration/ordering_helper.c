/* A process of test_ordering.c: races on an exclusive name from threads of
 * its own and writes what it observed.
 *
 *   ordering-helper STORE START_FD NAME PROC THREADS OPS LOG_FILE
 *
 * STORE is what the test's tt_store_path() gave: a directory or a
 * PostgreSQL URI.  Opens the store (no-sync, no workers, no retention), registers NAME
 * exclusive without a handler, prints "ready", waits until START_FD reaches
 * end of file (the parent closes its end: helper.h), runs THREADS threads
 * of OPS operations each (ordering_load.c), writes their log to LOG_FILE
 * and prints "done".
 * Exit status 0 unless it could not run. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
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
	tm_options o = TM_OPTIONS_INIT;
	tm_manager *tm;
	struct worker *w;
	struct ol_log all = { 0 };
	unsigned threads;
	FILE *f;

	if (argc != 8) {
		fprintf(stderr, "usage: %s STORE START_FD NAME PROC THREADS OPS "
		        "LOG_FILE\n", argv[0]);
		return 2;
	}
	threads = (unsigned)atoi(argv[5]);
	w = calloc(threads ? threads : 1, sizeof(*w));
	if (w == NULL) {
		printf("error: out of memory\n");
		return 2;
	}
	o.path = argv[1];
	o.keep_count = UINT_MAX; /* no retention: the parent checks every task */
	tm = helper_start(&o, argv[3], atoi(argv[2]));
	if (tm == NULL)
		return 2;
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
