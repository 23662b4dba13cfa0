/* Signed download URLs without sockets: the signatures, the key file, and
 * the two endpoints of downloads.c (the order of their checks, the JSON of
 * a signed URL, the file answer) on a real tables directory. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "downloads.h"

static char *dir;           /* the test's directory: tables/ and others */
static char tables[512];
static srv_downloads dl;

static void setup(void)
{
	dir = tt_tmpdir();
	snprintf(tables, sizeof(tables), "%s/tables", dir);
	ck_assert_int_eq(mkdir(tables, 0755), 0);
	dl.tables_dir = tables;
	for (int i = 0; i < SRV_KEY_LEN; i++)
		dl.key[i] = (unsigned char)(i * 7 + 1);
}

static void teardown(void)
{
	tt_rmdir(dir);
	free(dir);
}

/* The server's clock (time() may read a coarser one, a tick behind). */
static int64_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec;
}

static void put(const char *name, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tables, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* One request; the answer in *rs (free it). */
static void route(const char *method, const char *path, const char *query,
                  const char *role, srv_response *rs)
{
	srv_request rq = { method, path, query, NULL, 0, 0, role };

	ck_assert(srv_downloads_path(path));
	srv_downloads_route(&dl, &rq, rs);
}

static void expect_error(const char *method, const char *path,
                         const char *query, const char *role, int status,
                         const char *name)
{
	srv_response rs;
	cJSON *j, *data;

	route(method, path, query, role, &rs);
	ck_assert_msg(rs.status == status, "%s %s?%s: status %d, expected %d: %s",
	              method, path, query ? query : "", rs.status, status,
	              rs.body ? rs.body : "(file)");
	ck_assert_ptr_null(rs.file);
	j = cJSON_Parse(rs.body);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(cJSON_GetArraySize(j), 4);
	data = cJSON_GetObjectItem(j, "error_data");
	ck_assert_str_eq(cJSON_GetObjectItem(data, "name")->valuestring, name);
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "message")));
	cJSON_Delete(j);
	srv_response_free(&rs);
}

/* GET .../NAME/download/ as root: the url's path and query, and expires. */
static int64_t sign(const char *encoded, const char *query, char *path,
                    char *q, size_t len)
{
	char p[512];
	srv_response rs;
	cJSON *j, *url, *exp;
	const char *u, *mark;

	snprintf(p, sizeof(p), "/storage-signed-urls/local-tables/%s/download/",
	         encoded);
	route("GET", p, query, "root", &rs);
	ck_assert_msg(rs.status == 200, "%s: %d %s", p, rs.status, rs.body);
	j = cJSON_Parse(rs.body);
	ck_assert_int_eq(cJSON_GetArraySize(j), 2);
	url = cJSON_GetObjectItem(j, "url");
	exp = cJSON_GetObjectItem(j, "expires");
	ck_assert(cJSON_IsString(url) && cJSON_IsNumber(exp));
	u = url->valuestring;
	mark = strchr(u, '?');
	ck_assert_ptr_nonnull(mark);
	snprintf(path, len, "%.*s", (int)(mark - u), u);
	snprintf(q, len, "%s", mark + 1);
	{
		int64_t e = (int64_t)exp->valuedouble;
		cJSON_Delete(j);
		srv_response_free(&rs);
		return e;
	}
}

/* The bytes of a file answer. */
static char *slurp(srv_file *f)
{
	char *buf = malloc(f->size + 1);
	ssize_t n = pread(f->fd, buf, f->size + 1, 0);

	ck_assert_int_eq(n, (ssize_t)f->size);
	buf[n] = '\0';
	return buf;
}

START_TEST(signatures_bind_resource_and_expiry)
{
	unsigned char other[SRV_KEY_LEN];
	char sig[SRV_SIG_HEX + 1], again[SRV_SIG_HEX + 1], bad[SRV_SIG_HEX + 1];
	char long_name[300];

	ck_assert_int_eq(srv_url_sign(dl.key, "a.csv", 1000, sig), 0);
	ck_assert_uint_eq(strlen(sig), SRV_SIG_HEX);
	ck_assert_uint_eq(strspn(sig, "0123456789abcdef"), SRV_SIG_HEX);
	ck_assert_int_eq(srv_url_sign(dl.key, "a.csv", 1000, again), 0);
	ck_assert_str_eq(sig, again);
	ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, sig, 999), SRV_SIG_OK);
	ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, sig, 1000), SRV_SIG_OK);
	ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, sig, 1001),
	                 SRV_SIG_EXPIRED);
	/* Another resource, expiry or key; a changed or malformed signature. */
	ck_assert_int_eq(srv_url_verify(dl.key, "b.csv", 1000, sig, 0), SRV_SIG_BAD);
	ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1001, sig, 0), SRV_SIG_BAD);
	memcpy(other, dl.key, sizeof(other));
	other[31] ^= 1;
	ck_assert_int_eq(srv_url_verify(other, "a.csv", 1000, sig, 0), SRV_SIG_BAD);
	for (int i = 0; i < SRV_SIG_HEX; i += 9) {
		strcpy(bad, sig);
		bad[i] = bad[i] == '0' ? '1' : '0';
		ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, bad, 0),
		                 SRV_SIG_BAD);
	}
	strcpy(bad, sig);
	for (char *p = bad; *p; p++)
		if (*p >= 'a')
			*p = (char)(*p - 'a' + 'A');
	if (strcmp(bad, sig) != 0)
		ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, bad, 0),
		                 SRV_SIG_BAD);
	sig[SRV_SIG_HEX - 1] = '\0';
	ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, sig, 0), SRV_SIG_BAD);
	ck_assert_int_eq(srv_url_verify(dl.key, "a.csv", 1000, "", 0), SRV_SIG_BAD);
	/* A name too long to sign is never valid. */
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(srv_url_sign(dl.key, long_name, 1, sig), -1);
	ck_assert_int_eq(srv_url_verify(dl.key, long_name, 1, again, 0), SRV_SIG_BAD);
}
END_TEST

START_TEST(the_key_file_is_made_private_and_kept)
{
	unsigned char k1[SRV_KEY_LEN], k2[SRV_KEY_LEN];
	char path[600], err[256];
	struct stat st;
	int created, fd;

	snprintf(path, sizeof(path), "%s/" SRV_KEY_FILE, dir);
	ck_assert_int_eq(srv_key_load(path, k1, &created, err, sizeof(err)), 0);
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, SRV_KEY_LEN);
	ck_assert_int_eq(srv_key_load(path, k2, &created, err, sizeof(err)), 0);
	ck_assert_int_eq(created, 0);
	ck_assert_mem_eq(k1, k2, SRV_KEY_LEN);
	/* Others may not read it ... */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(srv_key_load(path, k2, &created, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "accessible by others"));
	/* ... and it holds exactly the key. */
	ck_assert_int_eq(chmod(path, 0600), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	ck_assert_int_eq(srv_key_load(path, k2, &created, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "exactly 32 bytes"));
	/* A directory is no key; a missing parent is an error, not a crash. */
	ck_assert_int_eq(srv_key_load(dir, k2, &created, err, sizeof(err)), -1);
	snprintf(path, sizeof(path), "%s/no/such/key", dir);
	ck_assert_int_eq(srv_key_load(path, k2, &created, err, sizeof(err)), -1);
	/* No temporary file is left behind. */
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(download_paths_are_known_by_their_first_segment)
{
	const char *yes[] = { "/storage-signed-urls", "/storage-signed-urls/",
	                      "/storage-signed-urls/x/y/z/w/v",
	                      "/%73torage-signed-urls/local-tables/a/download/" };
	const char *no[] = { "", "/", "/tasks/x/", "storage-signed-urls/",
	                     "/storage-signed-urlsx/", "/storage%2Dsigned-urls%2F/",
	                     "/%00storage-signed-urls/", NULL };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(srv_downloads_path(yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!srv_downloads_path(no[i]), "%s", no[i] ? no[i] : "NULL");
}
END_TEST

START_TEST(checks_come_in_their_order)
{
	const char *sign = "/storage-signed-urls/local-tables/r.json/download/";
	const char *file = "/storage-signed-urls/local-tables/r.json/file/";
	srv_response rs;

	put("r.json", "{}\n");
	/* 401: a token is needed, also to learn which paths exist ... */
	expect_error("GET", sign, NULL, NULL, 401, "UNAUTHORIZED");
	expect_error("GET", "/storage-signed-urls/x/", NULL, NULL, 401,
	             "UNAUTHORIZED");
	expect_error("GET", "/storage-signed-urls/local-tables/%00/download/",
	             NULL, NULL, 401, "UNAUTHORIZED");
	/* ... but not for the file URL: its signature is the credential. */
	expect_error("GET", file, NULL, NULL, 403, "FORBIDDEN");
	/* 404 */
	expect_error("GET", "/storage-signed-urls/x/", NULL, "root", 404, "NOT_FOUND");
	expect_error("GET", "/storage-signed-urls/local-tables/r.json/", NULL,
	             "root", 404, "NOT_FOUND");
	expect_error("GET", "/storage-signed-urls/local-tables/a/b/download/",
	             NULL, "root", 404, "NOT_FOUND");
	expect_error("GET", "/storage-signed-urls/local-tables/r.json/downloads/",
	             NULL, "root", 404, "NOT_FOUND");
	expect_error("GET", "/storage-signed-urls/local-tables/%00/download/", NULL,
	             "root", 404, "NOT_FOUND");
	/* 405, with Allow */
	route("POST", sign, NULL, "root", &rs);
	ck_assert_int_eq(rs.status, 405);
	ck_assert_str_eq(rs.allow, "GET");
	srv_response_free(&rs);
	expect_error("DELETE", file, NULL, NULL, 405, "HTTP_METHOD_NOT_ALLOWED");
	expect_error("HEAD", sign, NULL, "root", 405, "HTTP_METHOD_NOT_ALLOWED");
	/* 403 for a role the task endpoints refuse too */
	expect_error("GET", sign, NULL, "frontend", 403, "FORBIDDEN");
	/* 400: expires_in */
	expect_error("GET", sign, "expires_in=0", "root", 400, "WRONG_DATA_TYPE");
	expect_error("GET", sign, "expires_in=901", "root", 400, "WRONG_DATA_TYPE");
	expect_error("GET", sign, "expires_in=-5", "root", 400, "WRONG_DATA_TYPE");
	expect_error("GET", sign, "expires_in=1.5", "root", 400, "WRONG_DATA_TYPE");
	expect_error("GET", sign, "expires_in=", "root", 400, "WRONG_DATA_TYPE");
	expect_error("GET", sign, "expires_in=5&expires_in=5", "root", 400,
	             "WRONG_DATA_TYPE");
	/* 404 for a resource that is not there (and a tables directory gone) */
	expect_error("GET", "/storage-signed-urls/local-tables/nope.json/download/",
	             NULL, "manager", 404, "RESOURCE_NOT_FOUND");
	dl.tables_dir = dir;   /* a directory without r.json */
	expect_error("GET", sign, NULL, "backend", 404, "RESOURCE_NOT_FOUND");
	strcat(tables, "-gone");
	dl.tables_dir = tables;
	expect_error("GET", sign, NULL, "backend", 404, "RESOURCE_NOT_FOUND");
}
END_TEST

/* Every name the tables refuse is refused here, encoded or not, before any
 * file is looked at; the same for the file URL, signature or not. */
START_TEST(traversal_is_refused)
{
	const char *names[] = { "..", "%2e%2e", "%2E%2E", ".hidden", "%2ehidden",
	                        "%2e%2e%2fetc%2fpasswd", "..%2f..%2fetc%2fpasswd",
	                        "a%2Fb", "%2Fetc%2Fpasswd", "a%5Cb", "x..y",
	                        "%0a", "%7f", "%c3%a9" };
	char path[256], q[400], sig[SRV_SIG_HEX + 1];
	srv_response rs;

	put("passwd", "not this one\n");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path),
		         "/storage-signed-urls/local-tables/%s/download/", names[i]);
		expect_error("GET", path, NULL, "root", 400, "WRONG_DATA_TYPE");
		snprintf(path, sizeof(path),
		         "/storage-signed-urls/local-tables/%s/file/", names[i]);
		expect_error("GET", path, "expires=1&signature=00", NULL, 400,
		             "WRONG_DATA_TYPE");
	}
	/* Even signed (the key leaked?), "../x" is not a name. */
	ck_assert_int_eq(srv_url_sign(dl.key, "../passwd", INT64_C(4102444800), sig), 0);
	snprintf(q, sizeof(q), "expires=4102444800&signature=%s", sig);
	expect_error("GET", "/storage-signed-urls/local-tables/..%2fpasswd/file/", q,
	             NULL, 400, "WRONG_DATA_TYPE");
	/* Segments are the path's own: "../" in the path is a segment "..". */
	expect_error("GET", "/storage-signed-urls/local-tables/../download/", NULL,
	             "root", 400, "WRONG_DATA_TYPE");
	route("GET", "/storage-signed-urls/local-tables/passwd/download/", NULL,
	      "root", &rs);
	ck_assert_int_eq(rs.status, 200);
	srv_response_free(&rs);
}
END_TEST

START_TEST(a_signed_url_serves_the_file)
{
	const char *text = "{\"report\": \"analytics\"}\n";
	char path[512], q[512], *got;
	int64_t now = now_s(), expires;
	srv_response rs;

	put("r.json", text);
	expires = sign("r.json", NULL, path, q, sizeof(path));
	ck_assert_str_eq(path, "/storage-signed-urls/local-tables/r.json/file/");
	ck_assert(expires >= now + SRV_DL_EXPIRES_MAX &&
	          expires <= now_s() + SRV_DL_EXPIRES_MAX);
	route("GET", path, q, NULL, &rs);
	ck_assert_int_eq(rs.status, 200);
	ck_assert_ptr_null(rs.body);
	ck_assert_ptr_nonnull(rs.file);
	ck_assert_uint_eq(rs.file->size, strlen(text));
	ck_assert_str_eq(rs.file->content_type, "application/json");
	ck_assert_str_eq(rs.file->disposition, "attachment; filename=\"r.json\"");
	got = slurp(rs.file);
	ck_assert_str_eq(got, text);
	free(got);
	srv_response_free(&rs);
	ck_assert_ptr_null(rs.file);
	/* A token does not matter; other parameters are ignored. */
	strcat(q, "&x=1");
	route("GET", path, q, "frontend", &rs);
	ck_assert_int_eq(rs.status, 200);
	srv_response_free(&rs);
	/* expires_in shortens the life of the URL. */
	now = now_s();
	expires = sign("r.json", "expires_in=5", path, q, sizeof(path));
	ck_assert(expires >= now + 5 && expires <= now_s() + 5);
	/* The file gone, the URL finds nothing. */
	{
		char gone[600];

		snprintf(gone, sizeof(gone), "%s/r.json", tables);
		ck_assert_int_eq(unlink(gone), 0);
	}
	expect_error("GET", path, q, NULL, 404, "RESOURCE_NOT_FOUND");
}
END_TEST

START_TEST(names_give_type_and_encoded_url)
{
	static const struct {
		const char *name, *encoded, *type, *disposition;
	} v[] = {
		{ "a.json", "a.json", "application/json", "attachment; filename=\"a.json\"" },
		{ "a.csv", "a.csv", "text/csv", "attachment; filename=\"a.csv\"" },
		{ "a.csv.gz", "a.csv.gz", "application/gzip",
		  "attachment; filename=\"a.csv.gz\"" },
		{ "analytics_report_123xyz", "analytics_report_123xyz",
		  "application/octet-stream",
		  "attachment; filename=\"analytics_report_123xyz\"" },
		{ "a b&c?d#e%f\"g.csv", "a%20b%26c%3Fd%23e%25f%22g.csv", "text/csv",
		  "attachment; filename=\"a b&c?d#e%f\\\"g.csv\"" },
		{ "A.JSON", "A.JSON", "application/octet-stream",
		  "attachment; filename=\"A.JSON\"" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char path[512], q[512], want[512];
		srv_response rs;

		put(v[i].name, "x");
		sign(v[i].encoded, NULL, path, q, sizeof(path));
		snprintf(want, sizeof(want), "/storage-signed-urls/local-tables/%s/file/",
		         v[i].encoded);
		ck_assert_str_eq(path, want);
		route("GET", path, q, NULL, &rs);
		ck_assert_msg(rs.status == 200, "%s: %d", v[i].name, rs.status);
		ck_assert_str_eq(rs.file->content_type, v[i].type);
		ck_assert_str_eq(rs.file->disposition, v[i].disposition);
		srv_response_free(&rs);
	}
}
END_TEST

START_TEST(bad_signatures_are_403)
{
	const char *file = "/storage-signed-urls/local-tables/r.json/file/";
	char path[512], q[512], other_q[512], bad[600], sig[SRV_SIG_HEX + 1];
	int64_t expires;
	char *s;

	put("r.json", "{}\n");
	put("s.json", "{}\n");
	expires = sign("r.json", NULL, path, q, sizeof(path));
	sign("s.json", NULL, path, other_q, sizeof(path));
	/* missing, repeated or malformed parameters */
	expect_error("GET", file, NULL, NULL, 403, "FORBIDDEN");
	expect_error("GET", file, "expires=1", NULL, 403, "FORBIDDEN");
	s = strstr(q, "&signature=");
	expect_error("GET", file, s + 1, NULL, 403, "FORBIDDEN");
	snprintf(bad, sizeof(bad), "%s&%s", q, s + 1);
	expect_error("GET", file, bad, NULL, 403, "FORBIDDEN");
	snprintf(bad, sizeof(bad), "expires=x%s", s);
	expect_error("GET", file, bad, NULL, 403, "FORBIDDEN");
	/* tampered: one digit of the signature, or the expiry */
	snprintf(bad, sizeof(bad), "%s", q);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
	expect_error("GET", file, bad, NULL, 403, "FORBIDDEN");
	snprintf(bad, sizeof(bad), "expires=%" PRId64 "%s", expires + 3600, s);
	expect_error("GET", file, bad, NULL, 403, "FORBIDDEN");
	/* another resource's signature */
	expect_error("GET", file, other_q, NULL, 403, "FORBIDDEN");
	/* expired: signed for a second ago */
	expires = now_s() - 1;
	ck_assert_int_eq(srv_url_sign(dl.key, "r.json", expires, sig), 0);
	snprintf(bad, sizeof(bad), "expires=%" PRId64 "&signature=%s", expires, sig);
	expect_error("GET", file, bad, NULL, 403, "FORBIDDEN");
	/* ... while the same URL with a future expiry passes */
	expires += 120;
	ck_assert_int_eq(srv_url_sign(dl.key, "r.json", expires, sig), 0);
	snprintf(bad, sizeof(bad), "expires=%" PRId64 "&signature=%s", expires, sig);
	{
		srv_response rs;

		route("GET", file, bad, NULL, &rs);
		ck_assert_int_eq(rs.status, 200);
		srv_response_free(&rs);
	}
}
END_TEST

/* With a valid signature, the file endpoint still serves regular files of
 * the directory only: no link (in or out), directory or FIFO. */
START_TEST(links_and_special_files_are_not_served)
{
	const char *names[] = { "out-link", "in-link", "sub", "fifo" };
	char path[700], target[700], q[400], sig[SRV_SIG_HEX + 1];

	snprintf(target, sizeof(target), "%s/secret", dir);
	{
		FILE *f = fopen(target, "w");
		ck_assert_ptr_nonnull(f);
		fputs("outside\n", f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/out-link", tables);
	ck_assert_int_eq(symlink(target, path), 0);
	put("r.json", "{}\n");
	snprintf(path, sizeof(path), "%s/in-link", tables);
	ck_assert_int_eq(symlink("r.json", path), 0);
	snprintf(path, sizeof(path), "%s/sub", tables);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/fifo", tables);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int64_t expires = now_s() + 60;

		snprintf(path, sizeof(path),
		         "/storage-signed-urls/local-tables/%s/download/", names[i]);
		expect_error("GET", path, NULL, "root", 404, "RESOURCE_NOT_FOUND");
		ck_assert_int_eq(srv_url_sign(dl.key, names[i], expires, sig), 0);
		snprintf(q, sizeof(q), "expires=%" PRId64 "&signature=%s", expires, sig);
		snprintf(path, sizeof(path),
		         "/storage-signed-urls/local-tables/%s/file/", names[i]);
		expect_error("GET", path, q, NULL, 404, "RESOURCE_NOT_FOUND");
	}
}
END_TEST

START_TEST(query_parameters_are_read_once)
{
	char v[8];

	ck_assert_int_eq(srv_query_get(NULL, "a", v, sizeof(v)), 0);
	ck_assert_int_eq(srv_query_get("", "a", v, sizeof(v)), 0);
	ck_assert_int_eq(srv_query_get("b=1", "a", v, sizeof(v)), 0);
	ck_assert_int_eq(srv_query_get("b=1&a=x%20y", "a", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "x y");
	ck_assert_int_eq(srv_query_get("%61=2", "a", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "2");
	ck_assert_int_eq(srv_query_get("a", "a", v, sizeof(v)), 1);
	ck_assert_str_eq(v, "");
	ck_assert_int_eq(srv_query_get("a=1&a=1", "a", v, sizeof(v)), -1);
	ck_assert_int_eq(srv_query_get("a=1234567", "a", v, sizeof(v)), 1);
	ck_assert_int_eq(srv_query_get("a=12345678", "a", v, sizeof(v)), -1);
	ck_assert_int_eq(srv_query_get("a=%zz", "a", v, sizeof(v)), -1);
	ck_assert_int_eq(srv_query_get("a=%00", "a", v, sizeof(v)), -1);
	ck_assert_int_eq(srv_query_get("%zz=1&a=1", "a", v, sizeof(v)), -1);
}
END_TEST

TT_MAIN_FIXTURE("downloads", setup, teardown,
	signatures_bind_resource_and_expiry,
	the_key_file_is_made_private_and_kept,
	download_paths_are_known_by_their_first_segment,
	checks_come_in_their_order,
	traversal_is_refused,
	a_signed_url_serves_the_file,
	names_give_type_and_encoded_url,
	bad_signatures_are_403,
	links_and_special_files_are_not_served,
	query_parameters_are_read_once)
