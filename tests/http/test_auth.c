/* Tokens file, generated token, Authorization header lookup. */
#include <sys/stat.h>

#include "common.h"
#include "auth.h"

#define T1 "0123456789abcdef-root"
#define T2 "0123456789abcdef-front"

static srv_tokens *parse(const char *text, char *err, size_t errlen)
{
	srv_tokens *t = NULL;

	if (srv_tokens_parse(text, strlen(text), "tokens", &t, err, errlen) < 0)
		ck_assert_ptr_null(t);
	return t;
}

START_TEST(tokens_file_maps_tokens_to_roles)
{
	char err[256];
	srv_tokens *t = parse("# who may call\n\n  root   " T1 "  # the admin\r\n"
	                      "frontend\t" T2 "\n",
	                      err, sizeof(err));

	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_uint_eq(srv_tokens_count(t), 2);
	ck_assert_str_eq(srv_tokens_role(t, "Bearer " T1), "root");
	ck_assert_str_eq(srv_tokens_role(t, "bearer " T2), "frontend");
	ck_assert_str_eq(srv_tokens_role(t, "BEARER \t" T1 "  "), "root");
	ck_assert_ptr_null(srv_tokens_role(t, "Bearer 0123456789abcdef"));
	srv_tokens_free(t);
}
END_TEST

START_TEST(bad_tokens_files_say_where)
{
	static const struct { const char *text, *where; } bad[] = {
		{ "root\n", "tokens:1:" },
		{ "# c\nroot " T1 " extra\n", "tokens:2:" },
		{ "root short\n", "tokens:1:" },
		{ "Root " T1 "\n", "tokens:1:" },
		{ "ro/ot " T1 "\n", "tokens:1:" },
		{ "root " T1 "\nbackend " T1 "\n", "tokens:2:" },
		{ "", "tokens:" },
		{ "# only a comment\n", "tokens:" },
		{ "root 0123456789abcdef\xc3\xa9\n", "tokens:1:" },
		{ "root 0123456789abcdef#x\n", "tokens:1:" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_ptr_null(parse(bad[i].text, err, sizeof(err)));
		ck_assert_msg(strncmp(err, bad[i].where, strlen(bad[i].where)) == 0,
		              "case %zu: '%s'", i, err);
	}
	ck_assert_int_eq(srv_tokens_parse("root \0x", 7, "t", &(srv_tokens *){ NULL },
	                                  err, sizeof(err)), -1);
}
END_TEST

START_TEST(tokens_file_is_read_from_disk)
{
	char *dir = tt_tmpdir(), path[512], err[256];
	srv_tokens *t = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tokens", dir);
	ck_assert_int_eq(srv_tokens_load(path, &t, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	f = fopen(path, "w");
	fputs("backend " T2 "\n", f);
	fclose(f);
	/* Readable or writable by group or others: refused, as ssh would. */
	for (size_t i = 0; i < 4; i++) {
		static const mode_t modes[] = { 0644, 0640, 0602, 0660 };
		char want[64];

		ck_assert_int_eq(chmod(path, modes[i]), 0);
		ck_assert_int_eq(srv_tokens_load(path, &t, err, sizeof(err)), -1);
		ck_assert_ptr_null(t);
		snprintf(want, sizeof(want), "(mode %04o); chmod 600 it",
		         (unsigned)modes[i]);
		ck_assert_msg(strstr(err, want) && strstr(err, path), "%s", err);
	}
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(srv_tokens_load(path, &t, err, sizeof(err)), 0);
	ck_assert_str_eq(srv_tokens_role(t, "Bearer " T2), "backend");
	srv_tokens_free(t);
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(srv_tokens_load(path, &t, err, sizeof(err)), 0);
	srv_tokens_free(t);
	ck_assert_int_eq(srv_tokens_load(dir, &t, err, sizeof(err)), -1);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(malformed_headers_have_no_role)
{
	char err[256];
	srv_tokens *t = parse("root " T1 "\n", err, sizeof(err));
	const char *bad[] = { NULL, "", "Bearer", "Bearer ", "Bearer  ", T1,
	                      "Basic " T1, "Bearer" T1, "Bearer " T1 "x",
	                      "Bearer x" T1, "Bearer " T1 " " T1 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(srv_tokens_role(t, bad[i]) == NULL, "case %zu", i);
	ck_assert_ptr_null(srv_tokens_role(NULL, "Bearer " T1));
	srv_tokens_free(t);
}
END_TEST

START_TEST(generated_token_is_a_fresh_root_token)
{
	char a[SRV_TOKEN_GEN_LEN + 1], b[SRV_TOKEN_GEN_LEN + 1], hdr[64];
	srv_tokens *ta, *tb;

	ck_assert_int_eq(srv_tokens_generate(&ta, a), 0);
	ck_assert_int_eq(srv_tokens_generate(&tb, b), 0);
	ck_assert_uint_eq(strlen(a), SRV_TOKEN_GEN_LEN);
	ck_assert_uint_eq(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                         "0123456789-_"), SRV_TOKEN_GEN_LEN);
	ck_assert_str_ne(a, b);
	snprintf(hdr, sizeof(hdr), "Bearer %s", a);
	ck_assert_str_eq(srv_tokens_role(ta, hdr), "root");
	ck_assert_ptr_null(srv_tokens_role(tb, hdr));
	srv_tokens_free(ta);
	srv_tokens_free(tb);
}
END_TEST

START_TEST(constant_time_compare_is_exact)
{
	ck_assert(srv_ct_equal("abc", 3, "abc", 3));
	ck_assert(!srv_ct_equal("abd", 3, "abc", 3));
	ck_assert(!srv_ct_equal("ab", 2, "abc", 3));
	ck_assert(!srv_ct_equal("abcd", 4, "abc", 3));
	ck_assert(!srv_ct_equal("abc\0", 4, "abc", 3));
	ck_assert(srv_ct_equal("", 0, "", 0));
}
END_TEST

TT_MAIN("auth",
	tokens_file_maps_tokens_to_roles,
	bad_tokens_files_say_where,
	tokens_file_is_read_from_disk,
	malformed_headers_have_no_role,
	generated_token_is_a_fresh_root_token,
	constant_time_compare_is_exact)
