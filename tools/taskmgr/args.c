/* The command line: the command, its operands and options, and the usage
 * texts.  Options may come before or after the command; those of one
 * command only after it.  Anything wrong is a usage error: one line
 * saying what, then the usage text, on stderr (exit 2). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

struct cmd_def {
	const char *name;
	enum cli_cmd cmd;
	int min, max;        /* operands */
	const char *synopsis;
	const char *summary; /* one line, in the tool's usage */
	const char *help;
};

static const struct cmd_def cmds[] = {
	{ "names", CMD_NAMES, 0, 0, "names",
	  "every task name, its tasks counted by status",
	  "Every task name of the store, with its tasks counted by status.\n" },
	{ "ls", CMD_LS, 1, 1, "ls NAME [--page N] [--amt N] [--status S]",
	  "the tasks of NAME, newest first",
	  "The tasks of NAME, newest first, a page at a time.\n"
	  "  --page N     the page, 1 or more (default 1)\n"
	  "  --amt N      tasks per page, 1 to 64 (default 50)\n"
	  "  --status S   only the tasks in status S: REQUEST_SENT, RUNNING,\n"
	  "               CANCELLED_REQUESTED, FAILED, CANCELLED or COMPLETED;\n"
	  "               --page and --amt then count those tasks only\n" },
	{ "show", CMD_SHOW, 2, 2, "show NAME ID",
	  "one task, with its details",
	  "One task, with its details (the private view).\n" },
	{ "trigger", CMD_TRIGGER, 1, 2, "trigger NAME [BODY] [--exclusive] [--timeout S]",
	  "create a task; prints its id",
	  "Create a task of NAME and print its id.  BODY is the JSON of the\n"
	  "trigger, {\"context_task\": {...}, \"refresh_token\": \"...\",\n"
	  "\"create_reason\": \"...\"}, or - to read it from standard input.\n"
	  "The host's validate hook does not run: taskmgr does not have it.\n"
	  "  --exclusive  refuse (TASK_ALREADY_RUNNING) while NAME has an active\n"
	  "               task: give it for the names the host registers\n"
	  "               exclusive, since taskmgr cannot know them\n"
	  "  --timeout S  the task's timeout in seconds (default 86400, the\n"
	  "               library's; the host's own timeout for NAME does not\n"
	  "               apply to a task created here)\n" },
	{ "patch", CMD_PATCH, 3, 3, "patch NAME ID BODY",
	  "update a task (status, details)",
	  "Update a task as an external worker would: BODY is\n"
	  "{\"status\": S, \"details\": {...}, \"completed\": true, \"failed\": true},\n"
	  "or - to read it from standard input.  Prints the task after.\n" },
	{ "cancel", CMD_CANCEL, 2, 2, "cancel NAME ID",
	  "cancel a task",
	  "Cancel a task: a waiting one becomes CANCELLED, a running one\n"
	  "CANCELLED_REQUESTED (its handler is told to stop).  Prints the task.\n" },
	{ "retry", CMD_RETRY, 2, 2, "retry NAME ID",
	  "a new task from a FAILED or CANCELLED one; prints its id",
	  "Retry a FAILED or CANCELLED task by hand: a new task of NAME with the\n"
	  "old one's payload, create_reason \"retry of ID\" and details.retry_of.\n"
	  "Prints the new task's id.  The old refresh token does not go along.\n" },
	{ "pause", CMD_PAUSE, 1, 1, "pause NAME",
	  "start no task of NAME, in any process, until resumed",
	  "Pause NAME: its tasks are still triggered and stored, but no worker of\n"
	  "any process sharing the store starts one; runs under way finish.\n"
	  "Durable; taskmgr names shows it.\n" },
	{ "resume", CMD_RESUME, 1, 1, "resume NAME",
	  "let the tasks of a paused NAME start again",
	  "Resume a paused NAME: its waiting tasks may start again.\n" },
	{ "stats", CMD_STATS, 0, 0, "stats",
	  "the store's figures",
	  "The store's figures: queue depth, oldest waiting task, sizes.\n" },
	{ "check", CMD_CHECK, 0, 0, "check",
	  "check the store (exit 1 when it is not consistent)",
	  "Check that every index of the store agrees with the task records.\n"
	  "Exit status 0 when the store is consistent, 1 otherwise (the\n"
	  "problems are listed).\n" },
	{ "watch", CMD_WATCH, 1, 2, "watch NAME [ID]",
	  "progress bars until the task(s) end",
	  "Progress bars of the task ID, or of every task of NAME active when\n"
	  "the command starts, redrawn in place on a terminal (plain lines, one\n"
	  "per change, otherwise; with --json each new state of a task as one\n"
	  "line of JSON), until every one of them has ended: exit status 0,\n"
	  "however they ended.  Polls the store every 250 ms.\n" },
	{ "backup", CMD_BACKUP, 1, 1, "backup DEST",
	  "copy the store (LMDB) into the new directory DEST",
	  "Copy the store, while it is in use, into the new directory DEST\n"
	  "(which must not exist, or be empty): a consistent, compacted copy\n"
	  "that taskmgr --store DEST opens.  LMDB stores only: back up a\n"
	  "PostgreSQL store with pg_dump.\n" },
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cmd_def *cmd_def(enum cli_cmd cmd)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (cmds[i].cmd == cmd)
			return &cmds[i];
	return NULL;
}

const char *cli_cmd_name(enum cli_cmd cmd)
{
	const struct cmd_def *d = cmd_def(cmd);

	return d ? d->name : "taskmgr";
}

static const char options_help[] =
	"Options of every command:\n"
	"  --store S    the store: an LMDB directory or a postgresql:// URI\n"
	"               (default ./var/tasks); it must exist already\n"
	"  --json       print the library's JSON documents as they are\n"
	"  -h, --help   this help\n";

void cli_usage(FILE *f, enum cli_cmd cmd)
{
	const struct cmd_def *d = cmd_def(cmd);

	if (d != NULL) {
		fprintf(f, "usage: taskmgr [--store S] [--json] %s\n\n%s\n%s", d->synopsis,
		        d->help, options_help);
		return;
	}
	fputs("usage: taskmgr [--store S] [--json] COMMAND [ARG...]\n\n"
	      "Look at and act on the tasks of a libtaskmgr store, also while a\n"
	      "host process uses it.\n\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < N_CMDS; i++) {
		/* The operands of the synopsis; its options are in COMMAND --help. */
		const char *opt = strstr(cmds[i].synopsis, " [--");
		int n = opt ? (int)(opt - cmds[i].synopsis) : (int)strlen(cmds[i].synopsis);

		fprintf(f, "  %-20.*s %s\n", n, cmds[i].synopsis, cmds[i].summary);
	}
	fprintf(f, "\n%s\n"
	        "Exit status: 0 success; 1 an error (one line on stderr); 2 bad usage.\n"
	        "taskmgr COMMAND --help describes one command; doc/cli.md all of them.\n",
	        options_help);
}

/* ---- options ------------------------------------------------------------ */

enum opt_id { O_STORE, O_JSON, O_HELP, O_PAGE, O_AMT, O_STATUS, O_EXCLUSIVE, O_TIMEOUT };

struct opt_def {
	const char *name;
	enum opt_id id;
	bool value;
	enum cli_cmd only;   /* CMD_NONE: every command */
};

static const struct opt_def opts[] = {
	{ "--store", O_STORE, true, CMD_NONE },
	{ "--json", O_JSON, false, CMD_NONE },
	{ "--help", O_HELP, false, CMD_NONE },
	{ "-h", O_HELP, false, CMD_NONE },
	{ "--page", O_PAGE, true, CMD_LS },
	{ "--amt", O_AMT, true, CMD_LS },
	{ "--status", O_STATUS, true, CMD_LS },
	{ "--exclusive", O_EXCLUSIVE, false, CMD_TRIGGER },
	{ "--timeout", O_TIMEOUT, true, CMD_TRIGGER },
};

static enum cli_parsed bad_usage(enum cli_cmd cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("taskmgr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	cli_usage(stderr, cmd);
	return CLI_BAD_USAGE;
}

/* A whole number in lo..hi, nothing else (no sign, no space, no fraction). */
static bool whole(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static int status_of(const char *s)
{
	for (int k = TM_REQUEST_SENT; k <= TM_COMPLETED; k++)
		if (strcasecmp(s, tm_status_name((tm_status)k)) == 0)
			return k;
	return -1;
}

static enum cli_parsed set_opt(struct cli *c, const struct opt_def *o, const char *v)
{
	char *end;

	switch (o->id) {
	case O_STORE:
		if (*v == '\0')
			return bad_usage(c->cmd, "--store needs a store");
		c->store = v;
		break;
	case O_JSON:
		c->json = true;
		break;
	case O_HELP:
		return CLI_HELP;
	case O_PAGE:
		if (!whole(v, 1, INT_MAX, &c->page))
			return bad_usage(c->cmd, "--page wants a whole number of 1 or more, "
			                 "not '%s'", v);
		break;
	case O_AMT:
		if (!whole(v, 1, 64, &c->amt))
			return bad_usage(c->cmd, "--amt wants a whole number from 1 to 64, "
			                 "not '%s'", v);
		break;
	case O_STATUS:
		c->status = status_of(v);
		if (c->status < 0)
			return bad_usage(c->cmd, "--status: unknown status '%s' (REQUEST_SENT, "
			                 "RUNNING, CANCELLED_REQUESTED, FAILED, CANCELLED or "
			                 "COMPLETED)", v);
		break;
	case O_EXCLUSIVE:
		c->exclusive = true;
		break;
	case O_TIMEOUT:
		errno = 0;
		c->timeout_s = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(c->timeout_s) ||
		    c->timeout_s <= 0 || c->timeout_s >= 1e9)
			return bad_usage(c->cmd, "--timeout wants seconds above 0 and "
			                 "below 1e9, not '%s'", v);
		break;
	}
	return CLI_RUN;
}

/* One option at argv[*i] ("--name", "--name=value" or "--name value"). */
static enum cli_parsed option(struct cli *c, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *eq = strchr(arg, '='), *val = NULL;
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct opt_def *o = NULL;

	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !o; k++)
		if (strlen(opts[k].name) == n && strncmp(opts[k].name, arg, n) == 0)
			o = &opts[k];
	if (o == NULL)
		return bad_usage(c->cmd, "unknown option '%.*s'", (int)n, arg);
	if (o->only != CMD_NONE && c->cmd == CMD_NONE)
		return bad_usage(c->cmd, "%s is an option of %s: give it after the "
		                 "command", o->name, cli_cmd_name(o->only));
	if (o->only != CMD_NONE && o->only != c->cmd)
		return bad_usage(c->cmd, "%s is an option of %s, not of %s", o->name,
		                 cli_cmd_name(o->only), cli_cmd_name(c->cmd));
	if (o->value && eq)
		val = eq + 1;
	else if (o->value && *i + 1 < argc)
		val = argv[++*i];
	else if (o->value)
		return bad_usage(c->cmd, "%s needs a value", o->name);
	else if (eq)
		return bad_usage(c->cmd, "%s takes no value", o->name);
	return set_opt(c, o, val);
}

static enum cli_parsed operand(struct cli *c, const char *arg)
{
	if (c->cmd == CMD_NONE) {
		for (size_t k = 0; k < N_CMDS; k++)
			if (strcmp(cmds[k].name, arg) == 0)
				c->cmd = cmds[k].cmd;
		return c->cmd == CMD_NONE ? bad_usage(CMD_NONE, "unknown command '%s'", arg)
		                          : CLI_RUN;
	}
	if (c->n_args == cmd_def(c->cmd)->max)
		return bad_usage(c->cmd, "too many arguments for %s: '%s'",
		                 cli_cmd_name(c->cmd), arg);
	c->arg[c->n_args++] = arg;
	return CLI_RUN;
}

enum cli_parsed cli_parse(int argc, char **argv, struct cli *c)
{
	bool operands_only = false;
	const struct cmd_def *d;

	memset(c, 0, sizeof(*c));
	c->store = CLI_STORE_DEFAULT;
	c->status = -1;
	for (int i = 1; i < argc; i++) {
		enum cli_parsed r;

		if (!operands_only && strcmp(argv[i], "--") == 0) {
			operands_only = true;
			continue;
		}
		if (!operands_only && argv[i][0] == '-' && argv[i][1] != '\0')
			r = option(c, argc, argv, &i);
		else
			r = operand(c, argv[i]);
		if (r != CLI_RUN)
			return r;
	}
	if (c->cmd == CMD_NONE)
		return bad_usage(CMD_NONE, "no command given");
	d = cmd_def(c->cmd);
	if (c->n_args < d->min)
		return bad_usage(c->cmd, "too few arguments for %s", d->name);
	return CLI_RUN;
}
