/* A process that races tm_trigger on an exclusive name (test_race.c).
 *
 *   race-helper STORE START_FD NAME [MAP_SIZE]
 *
 * STORE is what the test's tt_store_path() gave: a directory or a
 * PostgreSQL URI.  Opens the store (with an initial map of MAP_SIZE bytes when given, and a
 * cap of 64 MiB), registers NAME exclusive, prints "ready", waits until
 * START_FD reaches end of file (the parent closes its end), triggers once,
 * and prints "<rc> <task_id or ->".  Exit status 0 unless it could not run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"

int main(int argc, char **argv)
{
	tm_options o = TM_OPTIONS_INIT;
	tm_manager *tm;
	char *out = NULL;
	const char *id = "-";
	int rc;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s STORE START_FD NAME [MAP_SIZE]\n", argv[0]);
		return 2;
	}
	o.path = argv[1];
	if (argc == 5) {
		o.map_size = strtoull(argv[4], NULL, 10);
		o.map_size_max = 64ull << 20;
	}
	tm = helper_start(&o, argv[3], atoi(argv[2]));
	if (tm == NULL)
		return 2;
	rc = tm_trigger(tm, argv[3], NULL, 0, &out);
	if (rc == TM_OK && out && strstr(out, "\"task_id\":\""))
		id = strstr(out, "\"task_id\":\"") + strlen("\"task_id\":\"");
	printf("%d %.20s\n", rc, id);
	fflush(stdout);
	tm_free(out);
	tm_close(tm);
	return 0;
}
