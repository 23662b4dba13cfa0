/* Bearer tokens and their roles: the tokens file, the generated root token,
 * and the constant-time lookup of an Authorization header. */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include <stddef.h>

/* Length of a generated token: 32 random bytes in unpadded base64url. */
#define SRV_TOKEN_GEN_LEN 43
#define SRV_TOKEN_MIN 16
#define SRV_TOKEN_MAX 512
#define SRV_ROLE_MAX 32

typedef struct srv_tokens srv_tokens;

/* Parse tokens-file text: one "ROLE TOKEN" pair a line, separated by spaces
 * or tabs; '#' at the start of a line or of a field starts a comment; blank
 * lines are ignored.  ROLE is 1..32 of [a-z0-9_-]; TOKEN is 16..512 printable
 * ASCII characters other than '#'.  A token may appear once.  At least one
 * pair is needed.  Returns 0, or -1 with "ORIGIN:LINE: reason" in err. */
int srv_tokens_parse(const char *text, size_t len, const char *origin,
                     srv_tokens **out, char *err, size_t errlen);

/* Read and parse a tokens file (at most 1 MiB), which group and others
 * may not read or write (mode 0600 or stricter).  Same returns. */
int srv_tokens_load(const char *path, srv_tokens **out, char *err, size_t errlen);

/* A set holding one fresh random root token, copied to @p token.
 * Returns 0, or -1 when the kernel's CSPRNG or memory failed. */
int srv_tokens_generate(srv_tokens **out, char token[SRV_TOKEN_GEN_LEN + 1]);

/* The role of an `Authorization` header value ("Bearer TOKEN", scheme
 * case-insensitive), or NULL when it is missing, malformed or unknown.
 * Every stored token is compared, in time independent of where the given
 * token differs.  The string belongs to the set.  Thread-safe. */
const char *srv_tokens_role(const srv_tokens *t, const char *authorization);

size_t srv_tokens_count(const srv_tokens *t);

void srv_tokens_free(srv_tokens *t);

/* 1 when a[0..alen) equals b[0..blen), in time that depends on blen only. */
int srv_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
