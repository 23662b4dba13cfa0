/* Task ids and clocks. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "error.h"
#include "id.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int tm__random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return tm__error_sys(errno, "getrandom");
		}
		p += n;
		len -= (size_t)n;
	}
	return TM_OK;
}

/* Ids and claim tokens draw on a pool of getrandom() bytes per thread,
 * refilled 256 bytes at a time: one system call for about a dozen ids or
 * 32 tokens, where each made one (a few microseconds on a virtual
 * machine, inside a trigger's cost of tens).  A byte is wiped as it is
 * used.  A forked child starts with an empty pool: it must not make the
 * ids and tokens its parent will. */
#define POOL_LEN 256

static _Thread_local struct {
	unsigned char b[POOL_LEN];
	size_t avail;               /* the last `avail` bytes of b are unused */
} pool;

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
	memset(&pool, 0, sizeof(pool));
}

static void pool_init(void)
{
	pthread_atfork(NULL, NULL, pool_forget);
}

static int pool_byte(unsigned char *out)
{
	unsigned char *p;

	if (pool.avail == 0) {
		int err = tm__random_bytes(pool.b, POOL_LEN);
		if (err)
			return err;
		pool.avail = POOL_LEN;
	}
	p = &pool.b[POOL_LEN - pool.avail--];
	*out = *p;
	*p = 0;
	return TM_OK;
}

int tm__id_new(char id[TM_TASK_ID_LEN + 1])
{
	size_t n = 0;

	pthread_once(&pool_once, pool_init);
	/* Rejection sampling keeps the 62 symbols uniform: bytes >= 248
	 * (4 * 62) are dropped rather than folded onto the first symbols. */
	while (n < TM_TASK_ID_LEN) {
		unsigned char c;
		int err = pool_byte(&c);

		if (err)
			return err;
		if (c < 248)
			id[n++] = alphabet[c % 62];
	}
	id[TM_TASK_ID_LEN] = '\0';
	return TM_OK;
}

bool tm__id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return false;
	for (i = 0; i < TM_TASK_ID_LEN; i++) {
		char c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return id[i] == '\0';
}

uint64_t tm__random64(void)
{
	uint64_t v = 0;

	pthread_once(&pool_once, pool_init);
	while (v == 0) {
		for (size_t i = 0; i < sizeof(v); i++) {
			unsigned char c;

			if (pool_byte(&c) != TM_OK) /* getrandom failed: not unique,
			                            * still never 0 */
				return (uint64_t)tm__now_us() * 6364136223846793005ULL + 1;
			v = v << 8 | c;
		}
	}
	return v;
}

int64_t tm__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tm__mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t tm__hash64_more(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}
