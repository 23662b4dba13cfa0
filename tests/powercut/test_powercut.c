/* Power cuts: a load runs on a durable store under the power-cut layer
 * (powercut.c), which keeps the image a disk would hold and, at a random
 * tracked call, "cuts the power": every write not made durable by fsync,
 * fdatasync, msync or O_DSYNC is lost (mode drop) or a random 4 KiB-grained
 * part of them survives (mode reorder).  The image then replaces the
 * store, and a fresh process reopens it without the layer and checks that
 * every acknowledged operation is there and tm_check is ok (pc_child.c).
 * The next load runs on what that left, as after a reboot; every
 * POWERCUT_GEN cuts the store starts anew, so cuts land in the creation
 * of a store too.  README.md here says what is modelled.
 *
 * POWERCUT_CUTS (default 200) cuts; POWERCUT_SEED replays the cut points;
 * POWERCUT_EVENTS (default 400): the cut falls on one of the first that many
 * tracked calls of a load; POWERCUT_MODE drop, reorder or mixed (default:
 * alternate); POWERCUT_STRICT_DIRS=1: a new file's entry is durable only
 * after an fsync of the directory.  The other tests break the disk or the
 * load on purpose and require the check to fail. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

extern char **environ;

struct cfg {
	int cuts, gen, events;
	const char *mode;     /* "mixed", "drop" or "reorder" */
	const char *brk;      /* POWERCUT_BREAK, or NULL */
	int fake_ack;         /* the load acknowledges a trigger it never made */
	int strict_dirs;
	int expect_failure;   /* stop at the first failure, say little */
	unsigned seed;
};

#define CALLS_MAX 16

struct figures {
	int cuts, drop, reorder, before, after, checks, drains, recoveries, failures;
	int unopenable; /* new stores the cut left unopenable (README.md) */
	long acks, checked, checked_all, verified, torn, triggers, seen, intact;
	long unsynced_writes, pieces_lost, pieces_kept, size_ops, files_lost;
	long long unsynced_bytes, bytes_lost, bytes_kept;
	char call[CALLS_MAX][64];
	int call_n[CALLS_MAX];
	int n_calls;
	double seconds;
};

/* Check keeps a test's duration in microseconds in an int: a test case
 * must end within 2147 s.  POWERCUT_CUTS above CHUNK run as a loop test,
 * CHUNK cuts an iteration (POWERCUT_CHUNK, default 1000), each iteration
 * its own process. */
#define CHUNK chunk_size()

static int chunk_size(void)
{
	const char *v = getenv("POWERCUT_CHUNK");
	int n = v ? atoi(v) : 1000;

	return n > 0 ? n : 1000;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned next(unsigned *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

/* ---- files ------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
	static char buf[1 << 20];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	struct stat st;
	ssize_t n;

	ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
	ck_assert_int_eq(fstat(in, &st), 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
	ck_assert_msg(out >= 0, "%s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	close(out);
}

/* dst: a new directory holding a copy of src's files (none if src is
 * missing). */
static void copy_dir(const char *src, const char *dst)
{
	DIR *d;
	struct dirent *e;
	struct stat st;

	/* The directory's mode too (0700 for a store not made yet). */
	ck_assert_msg(mkdir(dst, stat(src, &st) == 0 ? st.st_mode & 07777 : 0700) == 0,
	              "%s: %s", dst, strerror(errno));
	if ((d = opendir(src)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char a[1024], b[1024];

		if (e->d_name[0] == '.')
			continue;
		snprintf(a, sizeof(a), "%s/%s", src, e->d_name);
		snprintf(b, sizeof(b), "%s/%s", dst, e->d_name);
		copy_file(a, b);
	}
	closedir(d);
}

/* Count the lines of path after its first `skip`, by their first letter:
 * T (triggers), S (statuses seen), V (tokens a handler found intact). */
static void count_kinds(const char *path, long skip, long *t, long *s, long *v)
{
	FILE *f = fopen(path, "r");
	char line[512];
	long n = 0;

	while (f && fgets(line, sizeof(line), f)) {
		if (n++ < skip)
			continue;
		*t += line[0] == 'T';
		*s += line[0] == 'S';
		*v += line[0] == 'V';
	}
	if (f)
		fclose(f);
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;

	if (f == NULL)
		return 0;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* A kill can cut the last acknowledgement short: it was never made (the
 * load did not finish saying it).  Drop it, so that the next load's lines
 * do not run on from it.  Returns 1 if there was one. */
static int trim_torn(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	off_t size, at;
	char c = '\n';

	if (fd < 0)
		return 0;
	size = lseek(fd, 0, SEEK_END);
	for (at = size; at > 0; at--) {
		ck_assert_int_eq(pread(fd, &c, 1, at - 1), 1);
		if (c == '\n')
			break;
	}
	if (at < size)
		ck_assert_int_eq(ftruncate(fd, at), 0);
	close(fd);
	return at < size;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[4096];
	size_t n;

	buf[0] = '\0';
	if (f == NULL)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* key=value in a report line: the value as a number, or 0. */
static long long field(const char *line, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), " %s=", key);
	p = strstr(line, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : 0;
}

static void field_str(const char *line, const char *key, char *out, size_t n)
{
	char k[64];
	const char *p;
	size_t i = 0;

	snprintf(k, sizeof(k), " %s=", key);
	p = strstr(line, k);
	out[0] = '\0';
	if (p == NULL)
		return;
	for (p += strlen(k); *p && *p != ' ' && *p != '\n' && i + 1 < n; p++)
		out[i++] = *p;
	out[i] = '\0';
}

/* ---- one load, cut ------------------------------------------------------------- */

/* Run the load under the layer with extra environment; returns its wait
 * status, or -1 if it outlived `limit_s` (then it was killed). */
static int run_load(const char *child, char *const extra[], const char *store,
                    const char *acks, unsigned seed, double limit_s)
{
	char seed_s[32], *argv[6];
	char **envp;
	size_t n = 0, k = 0;
	pid_t pid;
	int st;
	double end = now_s() + limit_s;

	while (environ[n])
		n++;
	envp = calloc(n + 16, sizeof(*envp));
	ck_assert_ptr_nonnull(envp);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "POWERCUT_", 9) != 0 &&
		    strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			envp[k++] = environ[i];
	for (size_t i = 0; extra[i]; i++)
		envp[k++] = extra[i];
	envp[k] = NULL;
	snprintf(seed_s, sizeof(seed_s), "%u", seed);
	argv[0] = (char *)child;
	argv[1] = "load";
	argv[2] = (char *)store;
	argv[3] = (char *)acks;
	argv[4] = seed_s;
	argv[5] = NULL;
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execve(child, argv, envp);
		_exit(127);
	}
	free(envp);
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		struct timespec ms = { 0, 1000000 };

		ck_assert_int_ge(w, 0);
		if (w == pid)
			return st;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			ck_assert_int_eq(waitpid(pid, &st, 0), pid);
			return -1;
		}
		nanosleep(&ms, NULL);
	}
}

static void count_call_n(struct figures *f, const char *key, int n)
{
	int i;

	for (i = 0; i < f->n_calls; i++)
		if (strcmp(f->call[i], key) == 0)
			break;
	if (i == f->n_calls) {
		if (f->n_calls == CALLS_MAX)
			return;
		snprintf(f->call[f->n_calls++], sizeof(f->call[0]), "%s", key);
	}
	f->call_n[i] += n;
}

static void count_call(struct figures *f, const char *report)
{
	char call[24], file[24], key[64];

	field_str(report, "call", call, sizeof(call));
	field_str(report, "file", file, sizeof(file));
	if (snprintf(key, sizeof(key), "%s %s", call, file) < (int)sizeof(key))
		count_call_n(f, key, 1);
}

/* to += f */
static void add_figures(struct figures *to, const struct figures *f)
{
	to->cuts += f->cuts; to->drop += f->drop; to->reorder += f->reorder;
	to->before += f->before; to->after += f->after; to->checks += f->checks;
	to->drains += f->drains; to->recoveries += f->recoveries;
	to->failures += f->failures; to->unopenable += f->unopenable;
	to->acks += f->acks; to->checked += f->checked; to->checked_all += f->checked_all;
	to->verified += f->verified; to->torn += f->torn; to->triggers += f->triggers;
	to->seen += f->seen; to->intact += f->intact;
	to->unsynced_writes += f->unsynced_writes; to->pieces_lost += f->pieces_lost;
	to->pieces_kept += f->pieces_kept; to->size_ops += f->size_ops;
	to->files_lost += f->files_lost; to->unsynced_bytes += f->unsynced_bytes;
	to->bytes_lost += f->bytes_lost; to->bytes_kept += f->bytes_kept;
	to->seconds += f->seconds;
	for (int i = 0; i < f->n_calls; i++)
		count_call_n(to, f->call[i], f->call_n[i]);
}

/* Run the cuts of c; returns with the figures in *f.  Keeps the image of a
 * failed cut (unless c->expect_failure) and prints where. */
static void run_cuts(const struct cfg *c, struct figures *f)
{
	const char *child = getenv("POWERCUT_CHILD"), *layer = getenv("POWERCUT_LAYER");
	char *base = tt_tmpdir();
	char store[512], shadow[512], image[512], acks[512], report[512];
	unsigned x = c->seed ? c->seed : 1;
	int gen_left = 0;

	ck_assert_msg(child && layer, "POWERCUT_CHILD and POWERCUT_LAYER must be set");
	memset(f, 0, sizeof(*f));
	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(shadow, sizeof(shadow), "%s/shadow", base);
	snprintf(image, sizeof(image), "%s/image", base);
	snprintf(acks, sizeof(acks), "%s/acks", base);
	snprintf(report, sizeof(report), "%s/report", base);
	for (int cut = 1; cut <= c->cuts; cut++) {
		char e_pre[600], e_dir[600], e_sh[600], e_rep[600], e_at[64], e_when[64],
		     e_mode[64], e_seed[64], e_strict[64], e_brk[64], e_fake[64];
		char *extra[16], line[512], *rep;
		/* A quarter of the cuts among the first 40 calls: opening
		 * (creating, at a store's first cut), recovery. */
		int span = next(&x) % 4 == 0 && c->events > 40 ? 40 : c->events;
		int at = 1 + (int)(next(&x) % (unsigned)span), when = (int)(next(&x) % 2);
		unsigned seed = next(&x);
		int reorder, st, ok, fresh;
		long before;
		long checked = 0, tasks = 0, verified = 0, torn = 0, problems = 0;
		int last_of_gen;
		FILE *out;
		pid_t pid;
		size_t k = 0;

		if (strcmp(c->mode, "mixed") == 0)
			reorder = cut % 2 == 0;
		else
			reorder = strcmp(c->mode, "reorder") == 0;
		if (gen_left == 0) {
			/* A new store. */
			tt_rmdir(store);
			unlink(acks);
			gen_left = c->gen;
		}
		fresh = gen_left == c->gen;
		last_of_gen = --gen_left == 0 || cut == c->cuts;
		tt_rmdir(shadow);
		copy_dir(store, shadow);
		unlink(report);
		snprintf(e_pre, sizeof(e_pre), "LD_PRELOAD=%s", layer);
		snprintf(e_dir, sizeof(e_dir), "POWERCUT_DIR=%s", store);
		snprintf(e_sh, sizeof(e_sh), "POWERCUT_SHADOW=%s", shadow);
		snprintf(e_rep, sizeof(e_rep), "POWERCUT_REPORT=%s", report);
		snprintf(e_at, sizeof(e_at), "POWERCUT_AT=%d", at);
		snprintf(e_when, sizeof(e_when), "POWERCUT_WHEN=%s", when ? "after" : "before");
		snprintf(e_mode, sizeof(e_mode), "POWERCUT_MODE=%s", reorder ? "reorder" : "drop");
		snprintf(e_seed, sizeof(e_seed), "POWERCUT_SEED=%u", seed);
		snprintf(e_strict, sizeof(e_strict), "POWERCUT_STRICT_DIRS=%d", c->strict_dirs);
		snprintf(e_brk, sizeof(e_brk), "POWERCUT_BREAK=%s", c->brk ? c->brk : "");
		snprintf(e_fake, sizeof(e_fake), "POWERCUT_FAKE_ACK=%d", c->fake_ack && cut == 1);
		extra[k++] = e_pre; extra[k++] = e_dir; extra[k++] = e_sh; extra[k++] = e_rep;
		extra[k++] = e_at; extra[k++] = e_when; extra[k++] = e_mode; extra[k++] = e_seed;
		extra[k++] = e_strict; extra[k++] = e_brk; extra[k++] = e_fake;
		extra[k] = NULL;
		before = count_lines(acks);
		st = run_load(child, extra, store, acks, seed, 60.0);
		rep = slurp(report);
		ck_assert_msg(st != -1, "cut %d (seed %u): the load made fewer than %d "
		              "tracked calls in 60 s", cut, c->seed, at);
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
		              strncmp(rep, "cut ", 4) == 0,
		              "cut %d (seed %u): the load ended on its own (status 0x%x): %s",
		              cut, c->seed, st, rep);
		f->cuts++;
		f->torn += trim_torn(acks);
		f->acks += count_lines(acks) - before;
		count_kinds(acks, before, &f->triggers, &f->seen, &f->intact);
		reorder ? f->reorder++ : f->drop++;
		when ? f->after++ : f->before++;
		f->unsynced_writes += field(rep, "unsynced_writes");
		f->unsynced_bytes += field(rep, "unsynced_bytes");
		f->pieces_lost += field(rep, "pieces_lost");
		f->bytes_lost += field(rep, "bytes_lost");
		f->pieces_kept += field(rep, "pieces_kept");
		f->bytes_kept += field(rep, "bytes_kept");
		f->size_ops += field(rep, "size_ops");
		f->files_lost += field(rep, "files_lost");
		count_call(f, rep);

		/* The power comes back: the disk holds the image. */
		tt_rmdir(store);
		ck_assert_int_eq(rename(shadow, store), 0);
		tt_rmdir(image);
		copy_dir(store, image);
		pid = tt_spawn((char *[]){ (char *)child, "check", store, acks,
		                           last_of_gen ? "drain" : NULL, NULL }, -1, &out);
		line[0] = '\0';
		if (fgets(line, sizeof(line), out) == NULL)
			line[0] = '\0';
		fclose(out);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		sscanf(line, "checked %ld acknowledgements (%ld torn) of %ld tasks, %ld tokens "
		       "verified by a drain, %ld problems", &checked, &torn, &tasks, &verified,
		       &problems);
		ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		f->checks++;
		f->checked_all += checked;
		f->verified += verified;
		f->drains += last_of_gen;
		if (c->cuts >= 2000 && cut % 1000 == 0) {
			printf("  ... %d cuts, %d failures so far\n", cut, f->failures + !ok);
			fflush(stdout);
		}
		if (ok) {
			f->recoveries++;
			if (last_of_gen)
				f->checked += checked;
			tt_rmdir(image);
			continue;
		}
		if (fresh && !c->expect_failure && count_lines(acks) == 0 &&
		    WIFEXITED(st) && WEXITSTATUS(st) == 2 &&
		    strstr(line, "open failed:") && strstr(line, "MDB_INVALID")) {
			/* The cut fell in the creation of the store, before its
			 * first commit, and kept part of LMDB's unsynced first
			 * write (its two meta pages): nothing was acknowledged,
			 * but the store no longer opens.  Counted apart, not as a
			 * loss (README.md, "Found"). */
			f->unopenable++;
			printf("note: cut %d (POWERCUT_AT=%d POWERCUT_WHEN=%s POWERCUT_MODE=%s "
			       "POWERCUT_SEED=%u) cut the creation of a store and left it "
			       "unopenable: %s  layer: %s", cut, at, when ? "after" : "before",
			       reorder ? "reorder" : "drop", seed, line, rep);
			tt_rmdir(image);
			gen_left = 0;
			continue;
		}
		f->failures++;
		if (c->expect_failure) {
			printf("  cut %d failed as it must (%s): %s", cut,
			       WIFSIGNALED(st) ? "the check was killed by a signal" : "check",
			       line[0] ? line : "no figures\n");
			break;
		}
		{
			char kept[600], kept_acks[600];

			snprintf(kept, sizeof(kept), "%s/failed-cut-%d", base, cut);
			snprintf(kept_acks, sizeof(kept_acks), "%s/failed-cut-%d.acks", base, cut);
			rename(image, kept);
			copy_file(acks, kept_acks);
			printf("FAILED: cut %d of seed %u (POWERCUT_AT=%d POWERCUT_WHEN=%s "
			       "POWERCUT_MODE=%s POWERCUT_SEED=%u); check %s%s%s  layer: %s"
			       "  the image as cut: %s, its acknowledgements: %s\n",
			       cut, c->seed, at, when ? "after" : "before",
			       reorder ? "reorder" : "drop", seed,
			       WIFSIGNALED(st) ? "killed by a signal" : "exit status",
			       line[0] ? ": " : "\n", line, rep, kept, kept_acks);
			fflush(stdout);
		}
		gen_left = 0; /* a failed store is left alone: start anew */
	}
	if (f->failures == 0 || c->expect_failure)
		tt_rmdir(base);
	else
		printf("kept: %s\n", base);
	free(base);
}

static void print_figures(const char *what, unsigned seed, const struct figures *f)
{
	printf("power cuts%s: %d cuts (%d drop, %d reorder; %d before the call, %d after) "
	       "in %.1f s, seed %u\n", what, f->cuts, f->drop, f->reorder, f->before,
	       f->after, f->seconds, seed);
	printf("  cut at:");
	for (int i = 0; i < f->n_calls; i++)
		printf("%s %s %d", i ? "," : "", f->call[i], f->call_n[i]);
	printf("\n  acknowledged: %ld (%ld triggers, %ld statuses returned by "
	       "patch, cancel or get, %ld refresh tokens a handler found intact); "
	       "each checked after its cut and every later cut of its store: %ld "
	       "checks of one in %d checks; %ld checked at their store's last check\n",
	       f->acks, f->triggers, f->seen, f->intact, f->checked_all, f->checks,
	       f->checked);
	printf("  tokens found intact by the drains at a store's last check: %ld "
	       "(%d drains); acknowledgements cut short by the kill (never made): %ld\n",
	       f->verified, f->drains, f->torn);
	printf("  writes not yet durable at the cuts: %ld (%lld bytes); lost: %ld "
	       "pieces of 4 KiB or less (%lld bytes); kept by reorder: %ld pieces "
	       "(%lld bytes); size changes pending: %ld; files whose entry was not "
	       "durable: %ld\n", f->unsynced_writes, f->unsynced_bytes, f->pieces_lost,
	       f->bytes_lost, f->pieces_kept, f->bytes_kept, f->size_ops, f->files_lost);
	printf("  recoveries (reopen, tm_check ok, nothing acknowledged lost): %d; "
	       "new stores left unopenable by a cut before their first commit "
	       "(nothing acknowledged): %d; failures: %d\n", f->recoveries,
	       f->unopenable, f->failures);
	fflush(stdout);
}

static struct cfg config(void)
{
	struct cfg c = {
		.cuts = atoi(env_or("POWERCUT_CUTS", "200")),
		.gen = atoi(env_or("POWERCUT_GEN", "20")),
		.events = atoi(env_or("POWERCUT_EVENTS", "400")),
		.mode = env_or("POWERCUT_MODE", "mixed"),
		.strict_dirs = strcmp(env_or("POWERCUT_STRICT_DIRS", "0"), "1") == 0,
	};
	const char *s = getenv("POWERCUT_SEED");

	c.seed = s && *s ? (unsigned)strtoul(s, NULL, 10)
	                 : (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
	if (c.seed == 0)
		c.seed = 1;
	if (c.gen < 1)
		c.gen = 1;
	if (c.events < 1)
		c.events = 1;
	return c;
}

START_TEST(acknowledged_operations_survive_power_cuts)
{
	struct cfg c = config();
	const char *totals = getenv("POWERCUT_TOTALS");
	int chunks = (c.cuts + CHUNK - 1) / CHUNK, first = _i * CHUNK, total = c.cuts;
	unsigned base = c.seed;
	struct figures f;
	double t0 = now_s();

	if (chunks > 1) {
		c.cuts = c.cuts - first < CHUNK ? c.cuts - first : CHUNK;
		c.seed = base + (unsigned)_i * 0x9e3779b9u;
		if (c.seed == 0)
			c.seed = 1;
		printf("power cuts %d to %d of %d: seed %u (POWERCUT_SEED=%u "
		       "POWERCUT_CUTS=%d replays their cut points)\n", first + 1,
		       first + c.cuts, total, c.seed, c.seed, c.cuts);
	} else {
		printf("power cuts: seed %u (POWERCUT_SEED=%u replays the cut points), "
		       "%d cuts\n", c.seed, c.seed, c.cuts);
	}
	fflush(stdout);
	run_cuts(&c, &f);
	f.seconds = now_s() - t0;
	print_figures("", c.seed, &f);
	if (chunks > 1 && totals) {
		/* Each iteration adds its figures; the last prints the sums. */
		FILE *t = fopen(totals, "ab");
		struct figures one, all;

		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(fwrite(&f, sizeof(f), 1, t), 1);
		ck_assert_int_eq(fclose(t), 0);
		if (_i == chunks - 1 && (t = fopen(totals, "rb")) != NULL) {
			memset(&all, 0, sizeof(all));
			while (fread(&one, sizeof(one), 1, t) == 1)
				add_figures(&all, &one);
			fclose(t);
			print_figures(", in all", base, &all);
		}
	}
	ck_assert_int_eq(f.failures, 0);
	/* The checks had something to find. */
	ck_assert_int_gt(f.acks, 0);
	ck_assert_int_gt(f.checked, 0);
}
END_TEST

/* A broken disk or load, which the check must catch within `cuts`. */
static void must_fail(const char *what, const char *brk, int fake_ack, int cuts)
{
	struct cfg c = config();
	struct figures f;

	c.cuts = cuts;
	c.gen = 1000;
	c.mode = "drop";
	c.strict_dirs = 0;
	c.brk = brk;
	c.fake_ack = fake_ack;
	c.expect_failure = 1;
	printf("%s (seed %u):\n", what, c.seed);
	fflush(stdout);
	run_cuts(&c, &f);
	printf("  caught after %d cuts\n", f.cuts);
	ck_assert_msg(f.failures == 1, "%s: %d cuts passed the check", what, f.cuts);
}

START_TEST(a_disk_that_drops_synced_writes_is_caught)
{
	must_fail("a disk that drops synced writes (POWERCUT_BREAK=nosync)", "nosync", 0, 20);
}
END_TEST

START_TEST(a_disk_one_sync_behind_is_caught)
{
	must_fail("a disk one sync behind (POWERCUT_BREAK=late)", "late", 0, 40);
}
END_TEST

START_TEST(a_disk_that_drops_o_dsync_writes_is_caught)
{
	must_fail("a disk that drops O_DSYNC writes (POWERCUT_BREAK=nodsync)", "nodsync", 0, 40);
}
END_TEST

START_TEST(an_acknowledgement_of_nothing_is_caught)
{
	must_fail("a load that acknowledges a trigger it never made", NULL, 1, 1);
}
END_TEST

int main(void)
{
	struct cfg c = config();
	const TTest *const tests[] = {
		acknowledged_operations_survive_power_cuts,
		a_disk_that_drops_synced_writes_is_caught,
		a_disk_one_sync_behind_is_caught,
		a_disk_that_drops_o_dsync_writes_is_caught,
		an_acknowledgement_of_nothing_is_caught,
	};
	Suite *s = suite_create("powercut");
	char seed[32], totals[512];
	int fd, rc, chunks = c.cuts > CHUNK ? (c.cuts + CHUNK - 1) / CHUNK : 1;

	if (tt_backend_pg()) {
		printf("skipped on PostgreSQL: power cuts model LMDB's files\n");
		return 77;
	}
	/* One seed for every test and iteration (each runs in a process of
	 * its own), and a file for the iterations' figures. */
	snprintf(seed, sizeof(seed), "%u", c.seed);
	setenv("POWERCUT_SEED", seed, 1);
	snprintf(totals, sizeof(totals), "%s/powercut-figures-XXXXXX", env_or("TMPDIR", "/tmp"));
	fd = mkstemp(totals);
	if (fd >= 0) {
		close(fd);
		setenv("POWERCUT_TOTALS", totals, 1);
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		TCase *tc = tcase_create(tests[i]->name);

		/* About 0.3 s a cut; far more allowed for a loaded machine. */
		tcase_set_timeout(tc, i == 0 ? 300 + 2.0 * (c.cuts < CHUNK ? c.cuts : CHUNK) : 300);
		if (i == 0)
			tcase_add_loop_test(tc, tests[i], 0, chunks);
		else
			tcase_add_test(tc, tests[i]);
		suite_add_tcase(s, tc);
	}
	rc = tt_run(s);
	if (fd >= 0)
		unlink(totals);
	return rc;
}
