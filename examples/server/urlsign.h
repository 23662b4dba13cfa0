/* Signed download URLs: the server's signing key, kept in a file, and the
 * HMAC-SHA256 signature of a resource name and an expiry time. */
#ifndef SRV_URLSIGN_H
#define SRV_URLSIGN_H

#include <stddef.h>
#include <stdint.h>

#define SRV_KEY_LEN 32        /* bytes of the signing key */
#define SRV_SIG_HEX 64        /* a signature: lower-case hex digits */
#define SRV_KEY_FILE "signing.key"
#define SRV_RESOURCE_MAX 255  /* longest resource name signed */

/* Read the signing key from @p path; when no file is there, first create
 * it with SRV_KEY_LEN bytes of the kernel's CSPRNG, mode 0600 (written to
 * a temporary file and linked into place, so that it appears whole, and
 * two servers starting at once agree on one key).  The file must be a
 * regular file owned by this user that its group and others can neither
 * read nor write, holding exactly SRV_KEY_LEN bytes.  *created says
 * whether it was made now.  Returns 0, or -1 with a message in err. */
int srv_key_load(const char *path, unsigned char key[SRV_KEY_LEN],
                 int *created, char *err, size_t errlen);

/* The signature of (@p resource, @p expires) under @p key:
 * HMAC-SHA256 of "local-tables\n" RESOURCE "\n" EXPIRES (decimal), as
 * SRV_SIG_HEX lower-case hex digits and a NUL.  A resource name holds no
 * newline (it is a table name), so no two pairs sign the same text.
 * Returns 0, or -1 for a resource over SRV_RESOURCE_MAX bytes. */
int srv_url_sign(const unsigned char key[SRV_KEY_LEN], const char *resource,
                 int64_t expires, char hex[SRV_SIG_HEX + 1]);

enum srv_sig { SRV_SIG_OK, SRV_SIG_BAD, SRV_SIG_EXPIRED };

/* Check a signature @p sig as given in a URL against (@p resource,
 * @p expires): SRV_SIG_BAD unless it is the signature (lower-case hex), compared in time
 * that does not depend on where it differs; else SRV_SIG_EXPIRED when
 * @p now (seconds since the epoch) is past @p expires; else SRV_SIG_OK. */
enum srv_sig srv_url_verify(const unsigned char key[SRV_KEY_LEN],
                            const char *resource, int64_t expires,
                            const char *sig, int64_t now);

#endif
