/* taskmgr: look at and act on the tasks of a libtaskmgr store, also while
 * a host process uses it (doc/cli.md).
 *
 *   taskmgr [--store S] [--json] COMMAND [ARG...]
 *
 * Exit status: 0 success; 1 an error, reported as one line on stderr,
 * "taskmgr: ERROR_NAME: message"; 2 bad usage, with the usage text on
 * stderr; 130 when watch is interrupted. */
#include <string.h>

#include "cli.h"

/* The one line of an error: its name and the library's message, newlines
 * (a database's message may have some) folded. */
static void report(int err)
{
	char msg[1024];
	size_t n;

	snprintf(msg, sizeof(msg), "%s", tm_last_error());
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == ' ')
		msg[--n] = '\0';
	fprintf(stderr, "taskmgr: %s: %s\n", tm_error_name(err), n ? msg : "(no message)");
}

int main(int argc, char **argv)
{
	struct cli c;
	struct out o;
	tm_manager *tm = NULL;
	int rc;

	switch (cli_parse(argc, argv, &c)) {
	case CLI_HELP:
		cli_usage(stdout, c.cmd);
		return 0;
	case CLI_BAD_USAGE:
		return CLI_EXIT_USAGE;
	case CLI_RUN:
		break;
	}
	out_init(&o);
	rc = session_open(c.store, &tm);
	if (rc == TM_OK)
		rc = cmd_run(tm, &c, &o);
	fflush(stdout);
	if (rc < 0)
		report(rc); /* before tm_close, which may set a message of its own */
	tm_close(tm);
	if (rc < 0)
		return CLI_EXIT_ERROR;
	if (ferror(stdout)) {
		fprintf(stderr, "taskmgr: cannot write the output\n");
		return CLI_EXIT_ERROR;
	}
	return rc;
}
