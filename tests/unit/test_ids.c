/* Task ids and claim tokens (id.c): ids are 20 symbols of [A-Za-z0-9],
 * uniform, tokens 64 bits, never 0, both drawn from a pool of getrandom()
 * bytes per thread; a forked child must not make the ids or tokens its
 * parent makes next.  Linked against the internal static library. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "id.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static int by_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int by_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

START_TEST(ids_are_uniform_and_distinct)
{
	enum { N = 100000 };
	char (*ids)[TM_TASK_ID_LEN + 1] = malloc(N * sizeof(*ids));
	long count[62] = { 0 };
	const double expect = (double)N * TM_TASK_ID_LEN / 62;

	ck_assert_ptr_nonnull(ids);
	for (int i = 0; i < N; i++) {
		ck_assert_ok(tm__id_new(ids[i]));
		ck_assert(tm__id_valid(ids[i]));
		for (int k = 0; k < TM_TASK_ID_LEN; k++)
			count[strchr(alphabet, ids[i][k]) - alphabet]++;
	}
	/* About 32 000 of each symbol, a standard deviation of about 180:
	 * 5% either way is 9 of them, so only a bias gets there. */
	for (int c = 0; c < 62; c++)
		ck_assert_msg(count[c] > expect * 0.95 && count[c] < expect * 1.05,
		              "symbol %c: %ld of %.0f", alphabet[c], count[c], expect);
	qsort(ids, N, sizeof(*ids), by_str);
	for (int i = 1; i < N; i++)
		ck_assert_str_ne(ids[i - 1], ids[i]);
	free(ids);
}
END_TEST

START_TEST(a_forked_child_makes_other_ids)
{
	char before[TM_TASK_ID_LEN + 1], mine[TM_TASK_ID_LEN + 1];
	char theirs[TM_TASK_ID_LEN + 1] = "";
	int fd[2], status;
	pid_t pid;

	ck_assert_ok(tm__id_new(before)); /* the pool holds bytes now */
	ck_assert_int_eq(pipe(fd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char id[TM_TASK_ID_LEN + 1];

		close(fd[0]);
		_exit(tm__id_new(id) == TM_OK &&
		      write(fd[1], id, sizeof(id)) == (ssize_t)sizeof(id) ? 0 : 1);
	}
	close(fd[1]);
	ck_assert_ok(tm__id_new(mine));
	ck_assert_int_eq(read(fd[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	close(fd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert(tm__id_valid(theirs));
	ck_assert_str_ne(mine, theirs);
}
END_TEST

START_TEST(tokens_are_distinct_and_never_zero)
{
	enum { N = 100000 };
	uint64_t *t = malloc(N * sizeof(*t));
	int high = 0;

	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < N; i++) {
		t[i] = tm__random64();
		ck_assert(t[i] != 0);
		high += (int)(t[i] >> 63);
	}
	/* Every byte of a token is random, its top bit too: half of them. */
	ck_assert_msg(high > N / 2 - N / 50 && high < N / 2 + N / 50, "%d of %d", high, N);
	qsort(t, N, sizeof(*t), by_u64);
	for (int i = 1; i < N; i++)
		ck_assert(t[i - 1] != t[i]);
	free(t);
}
END_TEST

START_TEST(a_forked_child_makes_other_tokens)
{
	uint64_t mine, theirs = 0;
	int fd[2], status;
	pid_t pid;

	(void)tm__random64(); /* the pool holds bytes now */
	ck_assert_int_eq(pipe(fd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t v = tm__random64();

		close(fd[0]);
		_exit(write(fd[1], &v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : 1);
	}
	close(fd[1]);
	mine = tm__random64();
	ck_assert_int_eq(read(fd[0], &theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	close(fd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert(mine != theirs);
}
END_TEST

TT_MAIN("ids", ids_are_uniform_and_distinct, a_forked_child_makes_other_ids,
        tokens_are_distinct_and_never_zero, a_forked_child_makes_other_tokens)
