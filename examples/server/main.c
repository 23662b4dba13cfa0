/* taskmgr-server: the Background Tasks REST API over libtaskmgr (doc/http.md).
 *
 *   taskmgr-server [--listen HOST:PORT] [--store DIR|URI] [--tables DIR]
 *                  [--tokens FILE] [--workers N] [--simulate-seconds S]
 *                  [--idle-timeout S]
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
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "http.h"
#include "jobs.h"
#include "taskmgr.h"

struct args {
	const char *listen, *store, *tables, *tokens;
	unsigned workers;
	double simulate_s;
	unsigned idle_s;
};

static void usage(FILE *f)
{
	fputs("usage: taskmgr-server [--listen HOST:PORT] [--store DIR|URI] "
	      "[--tables DIR]\n"
	      "                      [--tokens FILE] [--workers N] "
	      "[--simulate-seconds S]\n"
	      "                      [--idle-timeout S]\n"
	      "defaults: --listen 127.0.0.1:8080 --store ./var/tasks "
	      "--tables ./var/tables\n"
	      "          --workers 2 --simulate-seconds 10 --idle-timeout 30; "
	      "without --tokens\n"
	      "          a root token is generated and printed once.  Port 0 "
	      "picks a free port.\n",
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

/* Returns 0 to run, 1 to exit 0 (--help), 2 on a usage error. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const char *const names[] = { "--listen", "--store", "--tables",
	                                     "--tokens", "--workers",
	                                     "--simulate-seconds", "--idle-timeout" };
	double v;

	a->listen = "127.0.0.1:8080";
	a->store = "./var/tasks";
	a->tables = "./var/tables";
	a->tokens = NULL;
	a->workers = 2;
	a->simulate_s = 10;
	a->idle_s = SRV_HTTP_IDLE_S;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		size_t k, n = sizeof(names) / sizeof(names[0]);

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return 1;
		for (k = 0; k < n; k++) {
			size_t l = strlen(names[k]);
			if (strncmp(arg, names[k], l) == 0 && arg[l] == '=') {
				val = arg + l + 1;
				break;
			}
			if (strcmp(arg, names[k]) == 0) {
				if (i + 1 == argc) {
					fprintf(stderr, "taskmgr-server: %s needs a value\n", arg);
					return 2;
				}
				val = argv[++i];
				break;
			}
		}
		switch (k) {
		case 0: a->listen = val; break;
		case 1: a->store = val; break;
		case 2: a->tables = val; break;
		case 3: a->tokens = val; break;
		case 4:
			if (number(val, 0, 256, &v) < 0 || v != floor(v)) {
				fprintf(stderr, "taskmgr-server: --workers wants 0..256\n");
				return 2;
			}
			a->workers = (unsigned)v;
			break;
		case 5:
			if (number(val, 0, 86400, &a->simulate_s) < 0) {
				fprintf(stderr, "taskmgr-server: --simulate-seconds wants "
				        "0..86400\n");
				return 2;
			}
			break;
		case 6:
			if (number(val, 1, 3600, &v) < 0 || v != floor(v)) {
				fprintf(stderr, "taskmgr-server: --idle-timeout wants "
				        "1..3600 seconds\n");
				return 2;
			}
			a->idle_s = (unsigned)v;
			break;
		default:
			fprintf(stderr, "taskmgr-server: unknown argument '%s'\n", arg);
			return 2;
		}
		if (*val == '\0') {
			fprintf(stderr, "taskmgr-server: %s needs a value\n", names[k]);
			return 2;
		}
	}
	return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
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
	if (rc == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

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

static int is_uri(const char *store)
{
	return strncmp(store, "postgresql://", 13) == 0 ||
	       strncmp(store, "postgres://", 11) == 0;
}

static int open_store(const struct args *a, tm_manager **tm)
{
	tm_options o;
	struct stat st;
	int new_tables = stat(a->tables, &st) < 0 && errno == ENOENT;
	/* A URI may hold a password: never print it. */
	const char *shown = is_uri(a->store) ? "(a PostgreSQL URI)" : a->store;
	int err;

	if ((!is_uri(a->store) && make_dirs(a->store) < 0) || make_dirs(a->tables) < 0) {
		fprintf(stderr, "taskmgr-server: cannot create %s or %s: %s\n",
		        shown, a->tables, strerror(errno));
		return -1;
	}
	if (new_tables)
		seed_tables(a->tables);
	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = a->store;
	o.workers = a->workers;
	err = tm_open(&o, tm);
	if (err) {
		fprintf(stderr, "taskmgr-server: cannot open the store %s: %s (%s)\n",
		        shown, tm_error_name(err), tm_last_error());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	srv_tokens *tokens = NULL;
	srv_http *http = NULL;
	srv_jobs jobs;
	tm_manager *tm = NULL;
	char token[SRV_TOKEN_GEN_LEN + 1] = "", bound[128], err[512];
	sigset_t stop;
	int sig = 0, rc;

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
	jobs.tm = tm;
	jobs.tables_dir = a.tables;
	jobs.simulate_s = a.simulate_s;
	if (srv_jobs_register_ml(&jobs) || srv_jobs_register_tables(&jobs)) {
		fprintf(stderr, "taskmgr-server: cannot register the jobs: %s\n",
		        tm_last_error());
		goto fail;
	}
	if (srv_http_start(a.listen, tm, tokens, a.idle_s, &http, bound,
	                   sizeof(bound), err, sizeof(err)) < 0) {
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
	return 0;
fail:
	tm_close(tm);
	srv_tokens_free(tokens);
	return 1;
}
