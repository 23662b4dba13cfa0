/* taskmgr, the operator's command-line tool (doc/cli.md): what its files
 * share.  args.c reads the command line and prints the usage texts,
 * session.c opens the store without disturbing its host, commands.c runs
 * the commands, output.c formats what they print, watch.c draws progress.
 * Only the public API (taskmgr.h) is used. */
#ifndef TASKMGR_CLI_H
#define TASKMGR_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

/* Exit statuses (doc/cli.md): a command returns TM_OK, a negative
 * tm_error (main prints its name and message on one line, exit 1), or an
 * exit status of its own (it printed why). */
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_INTERRUPTED 130

enum cli_cmd {
	CMD_NONE, CMD_NAMES, CMD_LS, CMD_SHOW, CMD_TRIGGER, CMD_PATCH,
	CMD_CANCEL, CMD_RETRY, CMD_PAUSE, CMD_RESUME, CMD_STATS, CMD_CHECK,
	CMD_WATCH, CMD_BACKUP
};

#define CLI_STORE_DEFAULT "./var/tasks"
#define CLI_OPERANDS_MAX 3

struct cli {
	const char *store;        /* --store: a directory or a postgresql:// URI */
	bool json;                /* --json */
	enum cli_cmd cmd;
	const char *arg[CLI_OPERANDS_MAX]; /* the command's operands */
	int n_args;
	int page, amt;            /* ls: 0 = the library's default (1, 50) */
	int status;               /* ls --status: a tm_status, or -1 for all */
	bool exclusive;           /* trigger --exclusive */
	double timeout_s;         /* trigger --timeout; 0 = the library's default */
};

/* ---- args.c ---- */

/* What cli_parse found: run the command, print help, or a usage error
 * (already reported on stderr with the usage text). */
enum cli_parsed { CLI_RUN, CLI_HELP, CLI_BAD_USAGE };
enum cli_parsed cli_parse(int argc, char **argv, struct cli *c);
/* The usage text of cmd (CMD_NONE: the whole tool's). */
void cli_usage(FILE *f, enum cli_cmd cmd);
/* The name of cmd ("ls"). */
const char *cli_cmd_name(enum cli_cmd cmd);

/* ---- session.c ---- */

/* Open the store of c->store as a bystander: no workers, no pruning, and
 * never a store created where none was (an LMDB path must already be a
 * store directory).  A tm_error, its message set. */
int session_open(const char *store, tm_manager **tm);
/* Make name callable: it must be known to the store (a host registered it
 * there once), and is then registered here without a handler, with the
 * given job flags and timeout (0: the library's default). */
int session_name(tm_manager *tm, const char *name, unsigned flags, double timeout_s);
/* The tm_stats() document, parsed (NULL and a tm_error on failure). */
cJSON *session_stats(tm_manager *tm, int *err);
/* The text of a BODY operand: "-" reads standard input (malloc'd into
 * *owned); anything else is the text itself. */
int session_body(const char *arg, const char **body, char **owned);

/* ---- output.c ---- */

struct out {
	bool tty;      /* stdout is a terminal */
	bool color;    /* ... and NO_COLOR is not set */
	double now;    /* seconds since the epoch, for relative times */
};

void out_init(struct out *o);
/* Seconds since the epoch, now. */
double out_clock(void);
/* A library document as it came (--json): the text and a newline. */
void out_json(const char *text);
/* Parse a library document; NULL and TM_ENOMEM (or TM_EINVAL for text
 * that is not JSON) on failure. */
cJSON *out_parse(const char *text, int *err);
/* The ANSI colour of a status ("" for none, or when colour is off), and
 * the code that ends it. */
const char *out_status_color(const struct out *o, const char *status);
const char *out_reset(const struct out *o);
/* "3 min ago", "in 2 h", "just now" for a time in seconds since the epoch. */
void out_ago(const struct out *o, double t, char *buf, size_t n);
/* A duration: "850 ms", "12 s", "3 min 4 s", "2 h 5 min", "3 days". */
void out_duration(double s, char *buf, size_t n);
/* Control characters of s (C0, DEL, C1) made '?', in place: text from a
 * task, before it goes to a terminal. */
void out_clean(char *s);
/* A byte count: "512 B", "1.5 KiB", "64.0 MiB". */
void out_bytes(double b, char *buf, size_t n);

/* A table of text cells, printed with aligned columns (the last one not
 * padded); a column may be a status, coloured when colour is on. */
struct table;
struct table *table_new(int n_cols, const char *const *head, int status_col);
int table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, const struct out *o, FILE *f);
void table_free(struct table *t);

/* The task, as lines of "key  value" (show, patch, cancel). */
void out_task(const struct out *o, const cJSON *task, FILE *f);
/* The raw text of each element of the array under the top-level key of a
 * JSON object, without parsing it again: spans[i] begins at starts[i]
 * and has lens[i] bytes.  Returns how many (at most max), or -1 when the
 * text is not such an object. */
int out_array_spans(const char *text, const char *key, const char **starts,
                    size_t *lens, int max);

/* Fields of a task document ("" / -1 when absent). */
const char *task_str(const cJSON *task, const char *key);
double task_num(const cJSON *task, const char *key);
const cJSON *task_detail(const cJSON *task, const char *key);
bool status_final(const char *status);
/* The fraction done that details.progress reports (percent, fraction,
 * step of steps, n_processed of n_total, done of total), or -1. */
double task_fraction(const cJSON *task);

/* ---- commands.c ---- */

int cmd_run(tm_manager *tm, const struct cli *c, const struct out *o);

/* ---- watch.c ---- */

int cmd_watch(tm_manager *tm, const struct cli *c, const struct out *o);

#endif
