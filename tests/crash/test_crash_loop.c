/* SIGKILL a process running a mixed load at random instants; after each
 * batch of kills, a fresh process checks that nothing acknowledged is lost,
 * that every index agrees, and that orphaned tasks are resolved.
 * CRASH_KILLS (default 200) sets the number of kills. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Copy what the killed child acknowledged into the acks file; returns the
 * number of lines (acknowledged operations). */
static int drain(FILE *from, FILE *acks)
{
	char line[256];
	int n = 0;

	while (fgets(line, sizeof(line), from)) {
		ck_assert_int_ge(fputs(line, acks), 0);
		n += strchr(line, '\n') != NULL;
	}
	ck_assert_int_eq(fflush(acks), 0);
	return n;
}

START_TEST(acknowledged_operations_survive_sigkill)
{
	const char *child = getenv("CRASH_CHILD");
	const char *k = getenv("CRASH_KILLS");
	int kills = k ? atoi(k) : 200, checks = 0, acked = 0, checked = 0;
	/* Kill within this window; it widens while no operation has been
	 * acknowledged yet, for builds (TSan) whose child starts slowly. */
	int window_us = 60000;
	char *dir = tt_tmpdir(), store[512], ackpath[512], seed[32];
	FILE *acks;

	ck_assert_msg(child != NULL, "CRASH_CHILD is not set");
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(ackpath, sizeof(ackpath), "%s/acks", dir);
	acks = fopen(ackpath, "a");
	ck_assert_ptr_nonnull(acks);
	srand((unsigned)time(NULL));
	for (int i = 1; i <= kills; i++) {
		int status;
		FILE *from;
		pid_t pid;

		snprintf(seed, sizeof(seed), "%d", rand());
		pid = tt_spawn((char *[]){ (char *)child, "load", store, seed, NULL }, -1, &from);
		/* A random instant: from before the store is open to deep in
		 * the load, including inside commits and handlers. */
		sleep_us(rand() % window_us);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) || WEXITSTATUS(status) == 0,
		              "load child failed on its own: exit %d", WEXITSTATUS(status));
		acked += drain(from, acks);
		fclose(from);
		if (acked == 0 && window_us < 2000000)
			window_us *= 2;
		if (i % 20 == 0 || i == kills) {
			tt_reap(tt_spawn((char *[]){ (char *)child, "check", store, ackpath,
			                             NULL }, -1, NULL));
			checks++;
			checked = acked;
		}
	}
	fclose(acks);
	printf("crash loop: %d kills, %d checks passed over %d acknowledged operations\n",
	       kills, checks, checked);
	/* The checks had something to find: operations were acknowledged
	 * before the kills, and the last check read every one of them. */
	ck_assert_int_gt(checked, 0);
	ck_assert_int_eq(checked, acked);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("acknowledged_operations_survive_sigkill");

	tcase_set_timeout(tc, 900); /* CRASH_KILLS kills take minutes */
	tcase_add_test(tc, acknowledged_operations_survive_sigkill);
	suite_add_tcase(s, tc);
	return tt_run(s);
}
