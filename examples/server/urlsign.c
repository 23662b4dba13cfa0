/* The signing key file and the signatures of download URLs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "urlsign.h"

/* ---- the key file -------------------------------------------------------- */

/* Write a new key to a temporary file beside @p path and link it there.
 * An existing file (another server was faster) is left as it is. */
static int create_key(const char *path, char *err, size_t errlen)
{
	unsigned char key[SRV_KEY_LEN];
	char tmp[PATH_MAX];
	int fd, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "signing key %s: path too long", path);
		return -1;
	}
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		snprintf(err, errlen, "cannot generate a signing key: %s",
		         strerror(errno));
		return -1;
	}
	fd = mkstemp(tmp);   /* mode 0600 */
	if (fd < 0) {
		snprintf(err, errlen, "cannot create signing key %s: %s", path,
		         strerror(errno));
		explicit_bzero(key, sizeof(key));
		return -1;
	}
	if (write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) && fsync(fd) == 0 &&
	    (link(tmp, path) == 0 || errno == EEXIST))
		rc = 0;
	else
		snprintf(err, errlen, "cannot create signing key %s: %s", path,
		         strerror(errno));
	explicit_bzero(key, sizeof(key));
	close(fd);
	unlink(tmp);
	return rc;
}

static int read_key(int fd, const char *path, unsigned char key[SRV_KEY_LEN],
                    char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "signing key %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "signing key %s is not a regular file of this "
		         "user", path);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "signing key %s is accessible by others (mode "
		         "%04o); chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (st.st_size != SRV_KEY_LEN ||
	    (n = read(fd, key, SRV_KEY_LEN)) != SRV_KEY_LEN) {
		snprintf(err, errlen, "signing key %s must hold exactly %d bytes "
		         "(remove it to have a new one made)", path, SRV_KEY_LEN);
		explicit_bzero(key, SRV_KEY_LEN);
		return -1;
	}
	return 0;
}

int srv_key_load(const char *path, unsigned char key[SRV_KEY_LEN],
                 int *created, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	*created = 0;
	if (fd < 0 && errno == ENOENT) {
		if (create_key(path, err, errlen) < 0)
			return -1;
		*created = 1;
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open signing key %s: %s", path,
		         strerror(errno));
		return -1;
	}
	rc = read_key(fd, path, key, err, errlen);
	close(fd);
	return rc;
}

/* ---- signatures ---------------------------------------------------------- */

static int mac(const unsigned char key[SRV_KEY_LEN], const char *resource,
               int64_t expires, unsigned char out[SRV_SHA256_LEN])
{
	char m[SRV_RESOURCE_MAX + 48];
	int len;

	if (strlen(resource) > SRV_RESOURCE_MAX)
		return -1;
	len = snprintf(m, sizeof(m), "local-tables\n%s\n%" PRId64, resource,
	               expires);
	srv_hmac_sha256(key, SRV_KEY_LEN, m, (size_t)len, out);
	explicit_bzero(m, sizeof(m));
	return 0;
}

int srv_url_sign(const unsigned char key[SRV_KEY_LEN], const char *resource,
                 int64_t expires, char hex[SRV_SIG_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char d[SRV_SHA256_LEN];

	if (mac(key, resource, expires, d) < 0)
		return -1;
	for (int i = 0; i < SRV_SHA256_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[SRV_SIG_HEX] = '\0';
	return 0;
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum srv_sig srv_url_verify(const unsigned char key[SRV_KEY_LEN],
                            const char *resource, int64_t expires,
                            const char *sig, int64_t now)
{
	unsigned char want[SRV_SHA256_LEN], got[SRV_SHA256_LEN], diff = 0;

	/* The form is public, only the value is secret: a wrong length or
	 * digit may be refused at once. */
	if (strlen(sig) != SRV_SIG_HEX)
		return SRV_SIG_BAD;
	for (int i = 0; i < SRV_SHA256_LEN; i++) {
		int hi = nibble(sig[2 * i]), lo = nibble(sig[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return SRV_SIG_BAD;
		got[i] = (unsigned char)(hi << 4 | lo);
	}
	if (mac(key, resource, expires, want) < 0)
		return SRV_SIG_BAD;
	for (int i = 0; i < SRV_SHA256_LEN; i++)
		diff |= (unsigned char)(want[i] ^ got[i]);
	if (diff != 0)
		return SRV_SIG_BAD;
	return now > expires ? SRV_SIG_EXPIRED : SRV_SIG_OK;
}
