/* watch NAME [ID]: the progress of a task, or of every task of NAME active
 * when the command starts, polled every 250 ms until all of them have
 * ended.  On a terminal, two lines per task (a bar, then the progress
 * message), redrawn in place
 * (the cursor moved back up over the previous frame); otherwise a plain
 * line whenever a task's status, share done or message changes; with
 * --json, each new state of a task as its JSON document on one line. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define POLL_MS 250
#define BAR_WIDTH 20
#define LIST_AMT 64

struct watched {
	char *id;         /* as given: tm_get() judges it */
	char *shown;      /* what was printed last for it (plain, --json) */
};

struct watch {
	const struct cli *c;
	const struct out *o;
	struct watched *w;
	size_t n, cap;
	char *frame;      /* the terminal's last frame */
	size_t frame_lines;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int add(struct watch *s, const char *id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct watched *p = realloc(s->w, cap * sizeof(*p));

		if (p == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		s->w = p;
		s->cap = cap;
	}
	s->w[s->n].id = strdup(id);
	s->w[s->n].shown = NULL;
	if (s->w[s->n].id == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	s->n++;
	return TM_OK;
}

/* How many tasks of name are active now, by the store's figures: the scan
 * below stops once it found them all. */
static double active_count(tm_manager *tm, const char *name, int *err)
{
	cJSON *stats = session_stats(tm, err);
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(stats, "names"), name);
	double count = task_num(n, "REQUEST_SENT") + task_num(n, "RUNNING") +
	               task_num(n, "CANCELLED_REQUESTED");

	cJSON_Delete(stats);
	return count;
}

/* Every task of name active now: read newest first, a page at a time. */
static int find_active(tm_manager *tm, struct watch *s)
{
	const char *name = s->c->arg[0];
	int err;
	double want = active_count(tm, name, &err);
	bool more = true;

	for (int page = 1; !err && more && (double)s->n < want; page++) {
		const cJSON *e;
		cJSON *doc;
		char *text;

		err = tm_list_recent(tm, name, page, LIST_AMT, 0, &text);
		if (err)
			break;
		doc = out_parse(text, &err);
		tm_free(text);
		more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "has_next"));
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "tasks"))
			if (!err && !status_final(task_str(e, "status")))
				err = add(s, task_str(e, "task_id"));
		cJSON_Delete(doc);
	}
	return err;
}

/* ---- one task's line --------------------------------------------------------- */

static void bar(char *buf, double f)
{
	int filled = f < 0 ? 0 : (int)(f * BAR_WIDTH + 0.5);

	buf[0] = '[';
	for (int i = 0; i < BAR_WIDTH; i++)
		buf[1 + i] = i < filled ? '#' : f < 0 ? ' ' : '-';
	buf[BAR_WIDTH + 1] = ']';
	buf[BAR_WIDTH + 2] = '\0';
}

static void percent(char *buf, size_t n, double f)
{
	if (f < 0)
		snprintf(buf, n, "  ?%%");
	else
		snprintf(buf, n, "%3.0f%%", f * 100);
}

/* The terminal's width, 80 when it does not say. */
static int columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Cut line to fit in cols - 1 terminal columns (a line that wraps would
 * break the redraw), counting characters of UTF-8 and skipping colour
 * sequences. */
static void fit(char *line, int cols)
{
	int seen = 0;

	for (char *p = line; *p; p++) {
		if (*p == '\x1b') {
			while (*p && *p != 'm')
				p++;
			if (*p == '\0')
				break;
			continue;
		}
		if (((unsigned char)*p & 0xC0) == 0x80)
			continue;
		if (++seen >= cols) {
			*p = '\0';
			break;
		}
	}
}

/* The terminal lines of a task: id, status, bar, share and time taken;
 * then its progress message, indented. */
static void tty_lines(const struct out *o, const cJSON *task, FILE *f)
{
	const char *status = task_str(task, "status");
	const cJSON *end = task_detail(task, "end_time");
	double frac = task_fraction(task), start = task_num(task, "start_time");
	char b[BAR_WIDTH + 3], pct[8], took[32], line[4096];
	int cols = columns();

	bar(b, frac);
	percent(pct, sizeof(pct), frac);
	out_duration((cJSON_IsNumber(end) ? end->valuedouble : o->now) - start, took,
	             sizeof(took));
	snprintf(line, sizeof(line), "%s  %s%-12s%s  %s %s  %s", task_str(task, "task_id"),
	         out_status_color(o, status), status, out_reset(o), b, pct, took);
	fit(line, cols);
	fprintf(f, "\r\x1b[2K%s\n", line);
	snprintf(line, sizeof(line), "    %s", task_str(task, "progress"));
	out_clean(line);
	fit(line, cols);
	fprintf(f, "\r\x1b[2K%s\n", line);
}

/* The plain line of a task: what changes, without the clock. */
static void plain_line(const cJSON *task, char *buf, size_t n)
{
	char pct[8];

	percent(pct, sizeof(pct), task_fraction(task));
	snprintf(buf, n, "%s %s %s %s", task_str(task, "task_id"),
	         task_str(task, "status"), pct, task_str(task, "progress"));
	out_clean(buf);
}

/* Print s when it is not what was printed last for w. */
static void print_changed(struct watched *w, const char *s)
{
	if (w->shown && strcmp(w->shown, s) == 0)
		return;
	free(w->shown);
	w->shown = strdup(s);
	puts(s);
}

/* ---- the loop ----------------------------------------------------------------- */

static void draw(struct watch *s, const char *frame, size_t lines)
{
	if (s->frame && strcmp(s->frame, frame) == 0)
		return;
	if (s->frame == NULL)
		fputs("\x1b[?25l", stdout); /* the cursor hides while we draw */
	else if (s->frame_lines > 0)
		printf("\x1b[%zuA", s->frame_lines); /* back up over the last frame */
	fputs(frame, stdout);
	free(s->frame);
	s->frame = strdup(frame);
	s->frame_lines = lines;
}

/* One poll: read every task, print what changed.  *done when all ended. */
static int poll_once(tm_manager *tm, struct watch *s, bool *done)
{
	struct out o = *s->o;
	char *frame = NULL;
	size_t flen = 0;
	FILE *f = open_memstream(&frame, &flen);
	int err = f ? TM_OK : tm_errorf(TM_ENOMEM, "out of memory");

	o.now = out_clock();
	*done = true;
	for (size_t i = 0; i < s->n && !err; i++) {
		char *text, line[4096];
		cJSON *task;

		err = tm_get(tm, s->c->arg[0], s->w[i].id, 0, &text);
		if (err)
			break;
		task = out_parse(text, &err);
		if (task != NULL) {
			*done &= status_final(task_str(task, "status"));
			if (s->c->json) {
				print_changed(&s->w[i], text);
			} else if (s->o->tty) {
				tty_lines(&o, task, f);
			} else {
				plain_line(task, line, sizeof(line));
				print_changed(&s->w[i], line);
			}
		}
		cJSON_Delete(task);
		tm_free(text);
	}
	if (f)
		fclose(f);
	if (!err && !s->c->json && s->o->tty)
		draw(s, frame, 2 * s->n);
	free(frame);
	fflush(stdout);
	return err;
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* a signal ends it early: the loop looks */
}

int cmd_watch(tm_manager *tm, const struct cli *c, const struct out *o)
{
	struct watch s = { .c = c, .o = o };
	struct sigaction sa;
	bool done = false;
	int err = session_name(tm, c->arg[0], 0, 0);

	if (!err && c->n_args > 1)
		err = add(&s, c->arg[1]);
	else if (!err)
		err = find_active(tm, &s);
	if (!err && s.n == 0 && !c->json)
		printf("no active task of %s\n", c->arg[0]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!err && s.n > 0) {
		err = poll_once(tm, &s, &done);
		if (err || done || interrupted)
			break;
		pause_ms(POLL_MS);
	}
	if (s.frame)
		fputs("\x1b[?25h", stdout); /* the cursor back */
	fflush(stdout);
	for (size_t i = 0; i < s.n; i++) {
		free(s.w[i].id);
		free(s.w[i].shown);
	}
	free(s.w);
	free(s.frame);
	if (!err && interrupted && !done)
		return CLI_EXIT_INTERRUPTED;
	return err;
}
