/* taskmgr-server: the Background Tasks REST API over libtaskmgr (doc/http.md).
 *
 *   taskmgr-server [OPTION...]     (usage() below lists them)
 *
 * Standard output gets, in this order, "root token: TOKEN" (only without
 * --tokens) and "listening on HOST:PORT" once connections are accepted;
 * standard error gets the access log.  --store takes an LMDB directory or
 * a postgresql:// URI: servers on several machines then share one store
 * (doc/postgresql.md).  SIGINT and SIGTERM stop it
 * gracefully, with exit status 0. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "downloads.h"
#include "http.h"
#include "http_writes.h"
#include "jobs.h"
#include "taskmgr.h"

struct args {
	const char *store, *tables, *tokens, *signing_key;
	unsigned workers;
	double simulate_s;
	srv_http_config http;
	/* The library's limits (tm_options); 0: its default. */
	double max_task_bytes, max_details_bytes, max_keys, max_list_bytes;
};

static void usage(FILE *f)
{
	fputs("usage: taskmgr-server [OPTION...]\n"
	      "  --listen HOST:PORT        127.0.0.1:8080; port 0 picks a free port\n"
	      "  --store DIR|URI           ./var/tasks, or a postgresql:// URI\n"
	      "  --tables DIR              ./var/tables (outside the store)\n"
	      "  --tokens FILE             mode 0600; without it a root token is\n"
	      "                            generated and printed once\n"
	      "  --signing-key FILE        the key of signed download URLs, made\n"
	      "                            when missing: DIR/signing.key of an LMDB\n"
	      "                            store, else beside the tables directory\n"
	      "  --workers N               2 (0..256)\n"
	      "  --simulate-seconds S      10 (0..86400)\n"
	      "  --idle-timeout S          30 (1..3600)\n"
	      "  --request-deadline S      10 (1..3600): headers and body within S\n"
	      "  --max-connections N       1024 (1..65536)\n"
	      "  --per-ip-connections N    64 (0..65536; 0: no limit)\n"
	      "  --http-threads N          the number of CPUs, at least 2 (1..256)\n"
	      "  --write-threads N         32 (0..256): requests that change the\n"
	      "                            store wait for their commit there; 0:\n"
	      "                            on the HTTP threads\n"
	      "  --tls-cert FILE           with --tls-key: serve HTTPS\n"
	      "  --tls-key FILE            PEM, not readable by others\n"
	      "  --insecure-http           allow plain HTTP on a non-loopback address\n"
	      "  --max-task-bytes N        the library's limits; 0: its default,\n"
	      "  --max-details-bytes N       1 MiB, 256 KiB, 10000 keys and 8 MiB\n"
	      "  --max-keys N\n"
	      "  --max-list-bytes N\n",
	      f);
}

static int number(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

enum kind { STR, FLAG, REAL, UINT };

struct opt {
	const char *name;
	enum kind kind;
	void *to;           /* const char **, int *, double * or unsigned * */
	double lo, hi;      /* REAL and UINT; UINT wants an integer */
};

static int set_value(const struct opt *o, const char *val)
{
	double v;

	if (o->kind == STR) {
		*(const char **)o->to = val;
		return 0;
	}
	if (number(val, o->lo, o->hi, &v) < 0 ||
	    (o->kind == UINT && v != floor(v))) {
		fprintf(stderr, "taskmgr-server: %s wants %s%.15g..%.15g\n", o->name,
		        o->kind == UINT ? "an integer " : "", o->lo, o->hi);
		return -1;
	}
	if (o->kind == UINT)
		*(unsigned *)o->to = (unsigned)v;
	else
		*(double *)o->to = v;
	return 0;
}

/* The option @p arg names ("--name" or "--name=value"), or NULL. */
static const struct opt *find_opt(const struct opt *opts, size_t n,
                                  const char *arg, const char **inline_val)
{
	for (size_t k = 0; k < n; k++) {
		size_t l = strlen(opts[k].name);

		if (strncmp(arg, opts[k].name, l) != 0)
			continue;
		if (arg[l] == '=' && opts[k].kind != FLAG) {
			*inline_val = arg + l + 1;
			return &opts[k];
		}
		if (arg[l] == '\0') {
			*inline_val = NULL;
			return &opts[k];
		}
	}
	return NULL;
}

static void defaults(struct args *a)
{
	memset(a, 0, sizeof(*a));
	a->store = "./var/tasks";
	a->tables = "./var/tables";
	a->workers = 2;
	a->simulate_s = 10;
	a->http.listen = "127.0.0.1:8080";
	a->http.idle_s = SRV_HTTP_IDLE_S;
	a->http.deadline_s = SRV_HTTP_DEADLINE_S;
	a->http.max_connections = SRV_HTTP_CONNECTIONS;
	a->http.per_ip = SRV_HTTP_PER_IP;
	a->http.threads = srv_http_default_threads();
	a->http.write_threads = SRV_WRITE_THREADS;
}

/* Returns 0 to run, 1 to exit 0 (--help), 2 on a usage error. */
static int parse_args(int argc, char **argv, struct args *a)
{
	const struct opt opts[] = {
		{ "--listen", STR, &a->http.listen, 0, 0 },
		{ "--store", STR, &a->store, 0, 0 },
		{ "--tables", STR, &a->tables, 0, 0 },
		{ "--tokens", STR, &a->tokens, 0, 0 },
		{ "--signing-key", STR, &a->signing_key, 0, 0 },
		{ "--workers", UINT, &a->workers, 0, 256 },
		{ "--simulate-seconds", REAL, &a->simulate_s, 0, 86400 },
		{ "--idle-timeout", UINT, &a->http.idle_s, 1, 3600 },
		{ "--request-deadline", UINT, &a->http.deadline_s, 1, 3600 },
		{ "--max-connections", UINT, &a->http.max_connections, 1, 65536 },
		{ "--per-ip-connections", UINT, &a->http.per_ip, 0, 65536 },
		{ "--http-threads", UINT, &a->http.threads, 1, SRV_HTTP_THREADS_MAX },
		{ "--write-threads", UINT, &a->http.write_threads, 0, SRV_WRITE_THREADS_MAX },
		{ "--tls-cert", STR, &a->http.tls_cert, 0, 0 },
		{ "--tls-key", STR, &a->http.tls_key, 0, 0 },
		{ "--insecure-http", FLAG, &a->http.insecure_http, 0, 0 },
		{ "--max-task-bytes", REAL, &a->max_task_bytes, 0, 9007199254740992.0 },
		{ "--max-details-bytes", REAL, &a->max_details_bytes, 0,
		  9007199254740992.0 },
		{ "--max-keys", REAL, &a->max_keys, 0, UINT_MAX },
		{ "--max-list-bytes", REAL, &a->max_list_bytes, 0, 9007199254740992.0 },
	};

	defaults(a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val;
		const struct opt *o;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return 1;
		o = find_opt(opts, sizeof(opts) / sizeof(opts[0]), arg, &val);
		if (o == NULL) {
			fprintf(stderr, "taskmgr-server: unknown argument '%s'\n", arg);
			return 2;
		}
		if (o->kind == FLAG) {
			*(int *)o->to = 1;
			continue;
		}
		if (val == NULL && i + 1 == argc) {
			fprintf(stderr, "taskmgr-server: %s needs a value\n", arg);
			return 2;
		}
		if (val == NULL)
			val = argv[++i];
		if (*val == '\0') {
			fprintf(stderr, "taskmgr-server: %s needs a value\n", o->name);
			return 2;
		}
		if (set_value(o, val) < 0)
			return 2;
	}
	if (!a->http.tls_cert != !a->http.tls_key) {
		fprintf(stderr, "taskmgr-server: --tls-cert and --tls-key go together\n");
		return 2;
	}
	/* Integers for the library: REAL only to hold 64 bits. */
	if (a->max_task_bytes != floor(a->max_task_bytes) ||
	    a->max_details_bytes != floor(a->max_details_bytes) ||
	    a->max_keys != floor(a->max_keys) ||
	    a->max_list_bytes != floor(a->max_list_bytes)) {
		fprintf(stderr, "taskmgr-server: the --max-* options want integers\n");
		return 2;
	}
	return 0;
}

/* ---- paths ------------------------------------------------------------------- */

/* mkdir -p; the last directory gets @p mode. */
static int make_dirs(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int rc = 0;

	if (p == NULL)
		return -1;
	for (char *s = p + 1; *s && rc == 0; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (rc == 0 && mkdir(p, mode) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* Append the components of @p rest to the absolute path @p out, dropping
 * "." and going up for "..", as the directories made later will be. */
static int append_lexically(char *out, size_t len, const char *rest)
{
	while (*rest) {
		size_t n = strcspn(rest, "/"), o = strlen(out);

		if (n == 0 || (n == 1 && rest[0] == '.')) {
			/* nothing */
		} else if (n == 2 && rest[0] == '.' && rest[1] == '.') {
			char *slash = strrchr(out, '/');
			if (slash)
				slash[slash == out ? 1 : 0] = '\0';
		} else {
			if (o + 1 + n >= len)
				return -1;
			if (o > 1 || out[0] != '/')
				out[o++] = '/';
			memcpy(out + o, rest, n);
			out[o + n] = '\0';
		}
		rest += n;
		if (*rest == '/')
			rest++;
	}
	return 0;
}

/* The absolute, symlink-free form of @p path, which need not exist yet:
 * its longest existing prefix through realpath(), the rest appended.  A
 * dangling link or an unreadable directory on the way is an error. */
static int resolve(const char *path, char *out, size_t len)
{
	char abs[PATH_MAX], cwd[PATH_MAX], real[PATH_MAX];
	struct stat st;
	size_t cut;

	if (path[0] == '/')
		snprintf(abs, sizeof(abs), "%s", path);
	else if (getcwd(cwd, sizeof(cwd)) == NULL ||
	         (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= sizeof(abs))
		return -1;
	/* abs[0..cut) is the prefix tried: the whole path, then its parents. */
	for (cut = strlen(abs);; ) {
		char keep = abs[cut];
		const char *r;
		int missing;

		abs[cut] = '\0';
		r = realpath(cut ? abs : "/", real);
		missing = r == NULL && errno == ENOENT && lstat(abs, &st) < 0;
		abs[cut] = keep;
		if (r)
			break;
		if (!missing)
			return -1;
		while (cut > 0 && abs[--cut] != '/')
			;
	}
	if (strlen(real) >= len)
		return -1;
	strcpy(out, real);
	return append_lexically(out, len, abs + cut);
}

/* Whether @p inner is @p outer or lies below it (both resolved). */
static int within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return 1;
	return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

static int is_uri(const char *store)
{
	return strncmp(store, "postgresql://", 13) == 0 ||
	       strncmp(store, "postgres://", 11) == 0;
}

/* Table outputs are written into --tables under names callers choose: it
 * may hold neither the store nor any file the server reads at start. */
static int check_paths(const struct args *a, const char *key)
{
	const char *files[] = { a->tokens, a->http.tls_cert, a->http.tls_key, key };
	char tables[PATH_MAX], other[PATH_MAX];

	if (resolve(a->tables, tables, sizeof(tables)) < 0) {
		fprintf(stderr, "taskmgr-server: cannot resolve --tables %s: %s\n",
		        a->tables, strerror(errno));
		return -1;
	}
	if (!is_uri(a->store)) {
		if (resolve(a->store, other, sizeof(other)) < 0) {
			fprintf(stderr, "taskmgr-server: cannot resolve --store %s: %s\n",
			        a->store, strerror(errno));
			return -1;
		}
		if (within(tables, other) || within(other, tables)) {
			fprintf(stderr, "taskmgr-server: --tables %s (%s) and --store %s "
			        "(%s) overlap: table outputs would overwrite the store's "
			        "files; give them separate directories\n", a->tables,
			        tables, a->store, other);
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i] && resolve(files[i], other, sizeof(other)) == 0 &&
		    within(other, tables)) {
			fprintf(stderr, "taskmgr-server: %s is inside --tables %s: a "
			        "table output could replace it; keep it elsewhere\n",
			        files[i], a->tables);
			return -1;
		}
	return 0;
}

/* The signing key's file: --signing-key, else in the store's directory
 * (the owner's alone, like the keys of the refresh tokens), else, for a
 * PostgreSQL store, which has no directory, beside the tables directory:
 * never inside it, where a table output could replace it. */
static int key_path(const struct args *a, char *out, size_t len)
{
	const char *slash;
	size_t n = strlen(a->tables);

	if (a->signing_key)
		return (size_t)snprintf(out, len, "%s", a->signing_key) < len ? 0 : -1;
	if (!is_uri(a->store))
		return (size_t)snprintf(out, len, "%s/" SRV_KEY_FILE, a->store) < len ?
		       0 : -1;
	while (n > 1 && a->tables[n - 1] == '/')
		n--;
	slash = memrchr(a->tables, '/', n);
	if (slash == NULL)
		return (size_t)snprintf(out, len, SRV_KEY_FILE) < len ? 0 : -1;
	return (size_t)snprintf(out, len, "%.*s/" SRV_KEY_FILE,
	                        (int)(slash - a->tables), a->tables) < len ? 0 : -1;
}

/* ---- the tables directory ------------------------------------------------------ */

/* Copy one file; 0 on success.  An existing target is left alone. */
static int copy_file(const char *from, const char *to)
{
	char buf[8192];
	ssize_t n = 0;
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;

	if (in >= 0)
		out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (in >= 0 && out >= 0) {
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		rc = n == 0 ? 0 : -1;
	}
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		rc = -1;
	return rc;
}

/* A tables directory made now starts with the example tables that the
 * docs use (examples/tables), so their examples work as shown. */
static void seed_tables(const char *dir)
{
	DIR *d = opendir(SRV_EXAMPLE_TABLES);
	struct dirent *e;
	char from[4096], to[4096];

	if (d == NULL)
		return; /* built elsewhere: start empty */
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    (size_t)snprintf(from, sizeof(from), "%s/%s", SRV_EXAMPLE_TABLES,
		                     e->d_name) >= sizeof(from) ||
		    (size_t)snprintf(to, sizeof(to), "%s/%s", dir, e->d_name) >= sizeof(to))
			continue;
		if (copy_file(from, to) < 0)
			fprintf(stderr, "taskmgr-server: cannot copy %s to %s: %s\n",
			        from, to, strerror(errno));
	}
	closedir(d);
}

/* Outputs a crash interrupted left their temporary files behind. */
static void sweep_tables(const char *dir)
{
	int dirfd, n;

	if (srv_tables_dir_open(dir, &dirfd) != TM_OK)
		return;
	n = srv_out_sweep(dirfd);
	if (n > 0)
		fprintf(stderr, "taskmgr-server: removed %d unfinished output%s "
		        "(.NAME.XXXXXXXX.tmp) from %s\n", n, n == 1 ? "" : "s", dir);
	close(dirfd);
}

/* ---- start -------------------------------------------------------------------- */

static int open_store(const struct args *a, tm_manager **tm)
{
	tm_options o;
	struct stat st;
	int new_tables = stat(a->tables, &st) < 0 && errno == ENOENT;
	/* A URI may hold a password: never print it. */
	const char *shown = is_uri(a->store) ? "(a PostgreSQL URI)" : a->store;
	int err;

	/* The store holds the refresh tokens' keys: its directory is the
	 * owner's alone (the library makes its files 0600 or 0644). */
	if ((!is_uri(a->store) && make_dirs(a->store, 0700) < 0) ||
	    make_dirs(a->tables, 0755) < 0) {
		fprintf(stderr, "taskmgr-server: cannot create %s or %s: %s\n",
		        shown, a->tables, strerror(errno));
		return -1;
	}
	if (!is_uri(a->store) && stat(a->store, &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "taskmgr-server: warning: the store directory %s is "
		        "accessible by others (mode %04o); chmod 700 it\n", a->store,
		        (unsigned)(st.st_mode & 07777));
	if (new_tables)
		seed_tables(a->tables);
	sweep_tables(a->tables);
	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = a->store;
	o.workers = a->workers;
	o.max_task_bytes = (uint64_t)a->max_task_bytes;
	o.max_details_bytes = (uint64_t)a->max_details_bytes;
	o.max_keys = (unsigned)a->max_keys;
	o.max_list_bytes = (uint64_t)a->max_list_bytes;
	err = tm_open(&o, tm);
	if (err) {
		fprintf(stderr, "taskmgr-server: cannot open the store %s: %s (%s)\n",
		        shown, tm_error_name(err), tm_last_error());
		return -1;
	}
	return 0;
}

/* Every connection is a descriptor: raise the soft limit to what
 * --max-connections needs, as far as the hard limit allows. */
static void raise_fd_limit(unsigned connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)connections + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
	              want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		fprintf(stderr, "taskmgr-server: warning: %u connections need %llu "
		        "file descriptors, the limit is %llu\n", connections,
		        (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
	struct args a;
	srv_tokens *tokens = NULL;
	srv_http *http = NULL;
	srv_downloads dl;
	srv_jobs jobs;
	tm_manager *tm = NULL;
	char token[SRV_TOKEN_GEN_LEN + 1] = "", bound[128], err[512], key[PATH_MAX];
	sigset_t stop;
	int sig = 0, rc, created;

	rc = parse_args(argc, argv, &a);
	if (rc) {
		usage(rc == 1 ? stdout : stderr);
		return rc == 1 ? 0 : 2;
	}
	/* Scripts read stdout through a pipe: each line must go out at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Block the stop signals before any thread starts, so that every
	 * thread inherits the mask and only sigwait() below receives them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(a.http.max_connections);

	if (key_path(&a, key, sizeof(key)) < 0) {
		fprintf(stderr, "taskmgr-server: the signing key's path is too long\n");
		return 1;
	}
	if (check_paths(&a, key) < 0)
		return 1;
	if (a.tokens)
		rc = srv_tokens_load(a.tokens, &tokens, err, sizeof(err));
	else if ((rc = srv_tokens_generate(&tokens, token)) < 0)
		snprintf(err, sizeof(err), "cannot generate a token: %s",
		         strerror(errno));
	if (rc < 0) {
		fprintf(stderr, "taskmgr-server: %s\n", err);
		return 1;
	}
	if (open_store(&a, &tm) < 0)
		goto fail;
	/* After open_store(): the default key lives in the store's directory. */
	dl.tables_dir = a.tables;
	if (srv_key_load(key, dl.key, &created, err, sizeof(err)) < 0) {
		fprintf(stderr, "taskmgr-server: %s\n", err);
		goto fail;
	}
	if (created)
		fprintf(stderr, "taskmgr-server: made the signing key %s\n", key);
	jobs.tm = tm;
	jobs.tables_dir = a.tables;
	jobs.simulate_s = a.simulate_s;
	if (srv_jobs_register_ml(&jobs) || srv_jobs_register_tables(&jobs)) {
		fprintf(stderr, "taskmgr-server: cannot register the jobs: %s\n",
		        tm_last_error());
		goto fail;
	}
	if (srv_http_start(&a.http, tm, tokens, &dl, &http, bound, sizeof(bound),
	                   err, sizeof(err)) < 0) {
		fprintf(stderr, "taskmgr-server: %s\n", err);
		goto fail;
	}
	if (token[0])
		printf("root token: %s\n", token);
	printf("listening on %s\n", bound);

	explicit_bzero(token, sizeof(token));
	while (sigwait(&stop, &sig) != 0) {
		/* only EINTR-like failures: wait again */
	}
	fprintf(stderr, "taskmgr-server: %s, stopping\n",
	        sig == SIGINT ? "SIGINT" : "SIGTERM");
	srv_http_stop(http);
	tm_close(tm);
	srv_tokens_free(tokens);
	explicit_bzero(dl.key, sizeof(dl.key));
	return 0;
fail:
	tm_close(tm);
	srv_tokens_free(tokens);
	explicit_bzero(dl.key, sizeof(dl.key));
	return 1;
}
