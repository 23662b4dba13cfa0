/* SHA-256 (FIPS 180-4 examples) and HMAC-SHA256 (RFC 4231, the seven test
 * cases) of examples/server/sha256.c, which signs the download URLs. */
#include "common.h"
#include "sha256.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* Bytes from hex digits. */
static size_t unhex(const char *h, unsigned char *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
	return n;
}

static void expect_sha(const void *msg, size_t n, const char *want)
{
	unsigned char d[SRV_SHA256_LEN];
	char got[2 * SRV_SHA256_LEN + 1];
	srv_sha256 c;

	srv_sha256_init(&c);
	srv_sha256_update(&c, msg, n);
	srv_sha256_final(&c, d);
	hex(d, sizeof(d), got);
	ck_assert_str_eq(got, want);
}

START_TEST(sha256_fips_examples)
{
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	expect_sha("", 0,
	           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	expect_sha("abc", 3,
	           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	expect_sha(two, strlen(two),
	           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

/* One million 'a', fed in uneven pieces: the buffering across blocks. */
START_TEST(sha256_million_a_in_pieces)
{
	static char a[1000];
	unsigned char d[SRV_SHA256_LEN];
	char got[2 * SRV_SHA256_LEN + 1];
	size_t left = 1000000, piece = 1;
	srv_sha256 c;

	memset(a, 'a', sizeof(a));
	srv_sha256_init(&c);
	while (left > 0) {
		size_t n = piece < left ? piece : left;
		srv_sha256_update(&c, a, n);
		left -= n;
		piece = piece % 977 + 13;   /* 13..989 */
	}
	srv_sha256_final(&c, d);
	hex(d, sizeof(d), got);
	ck_assert_str_eq(got,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

/* RFC 4231, section 4: key, data, HMAC-SHA-256 (case 5: its first 128 bits).
 * BIG_KEY: cases 6 and 7, 131 bytes of 0xaa, longer than a block. */
#define BIG_KEY "*"
START_TEST(hmac_rfc4231_vectors)
{
	static const struct {
		const char *key, *data, *mac;
	} v[] = {
		{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
		  "4869205468657265",
		  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
		{ "4a656665",
		  "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
		  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
		  "dddddddddddddddddddddddddddddddddd",
		  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
		{ "0102030405060708090a0b0c0d0e0f10111213141516171819",
		  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
		  "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
		  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
		{ "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
		  "546573742057697468205472756e636174696f6e",
		  "a3b6167473100ee06e0c796c2955552b" },
		{ BIG_KEY,
		  "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
		  "65204b6579202d2048617368204b6579204669727374",
		  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
		{ BIG_KEY,
		  "5468697320697320612074657374207573696e672061206c6172676572207468"
		  "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
		  "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
		  "647320746f20626520686173686564206265666f7265206265696e6720757365"
		  "642062792074686520484d414320616c676f726974686d2e",
		  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char key[256], data[256], mac[SRV_SHA256_LEN];
		size_t kn = unhex(v[i].key, key), dn = unhex(v[i].data, data);

		if (strcmp(v[i].key, BIG_KEY) == 0) {
			kn = 131;
			memset(key, 0xaa, kn);
		}
		char got[2 * SRV_SHA256_LEN + 1];

		srv_hmac_sha256(key, kn, data, dn, mac);
		hex(mac, sizeof(mac), got);
		got[strlen(v[i].mac)] = '\0';   /* case 5 compares a prefix */
		ck_assert_msg(strcmp(got, v[i].mac) == 0, "test case %zu: %s",
		              i + 1, got);
	}
}
END_TEST

TT_MAIN("sha256",
	sha256_fips_examples,
	sha256_million_a_in_pieces,
	hmac_rfc4231_vectors)
