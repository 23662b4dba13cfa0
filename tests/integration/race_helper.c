/* A process that races tm_trigger on an exclusive name (test_race.c).
 *
 *   race-helper STORE_DIR START_FD NAME [MAP_SIZE]
 *
 * Opens the store (with an initial map of MAP_SIZE bytes when given, and a
 * cap of 64 MiB), registers NAME exclusive, prints "ready", waits until
 * START_FD reaches end of file (the parent closes its end), triggers once,
 * and prints "<rc> <task_id or ->".  Exit status 0 unless it could not run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskmgr.h"

int main(int argc, char **argv)
{
	tm_options o;
	tm_job_def d;
	tm_manager *tm = NULL;
	char *out = NULL, c;
	const char *id = "-";
	int start, rc;
	ssize_t n;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s STORE_DIR START_FD NAME [MAP_SIZE]\n", argv[0]);
		return 2;
	}
	start = atoi(argv[2]);
	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = argv[1];
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	if (argc == 5) {
		o.map_size = strtoull(argv[4], NULL, 10);
		o.map_size_max = 64ull << 20;
	}
	rc = tm_open(&o, &tm);
	if (rc == TM_OK) {
		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = argv[3];
		d.flags = TM_JOB_EXCLUSIVE;
		rc = tm_register(tm, &d);
	}
	if (rc != TM_OK) {
		printf("error %d %s\n", rc, tm_last_error());
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	do
		n = read(start, &c, 1);
	while (n > 0 || (n < 0 && errno == EINTR));
	rc = tm_trigger(tm, argv[3], NULL, 0, &out);
	if (rc == TM_OK && out && strstr(out, "\"task_id\":\""))
		id = strstr(out, "\"task_id\":\"") + strlen("\"task_id\":\"");
	printf("%d %.20s\n", rc, id);
	fflush(stdout);
	tm_free(out);
	tm_close(tm);
	return 0;
}
