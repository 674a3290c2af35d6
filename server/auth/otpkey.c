/* The key of the one-time codes' MACs, kept in a file of the data directory (auth_otp.key).
 *
 * Why a file and not random per process: a code sent before a restart (a deploy, a crash) must still
 * verify after it. Why not in the database: the store keeps only HMAC(key, request id, code), and a code
 * has 10^6 values, so whoever has the MAC and the key has the code; a database backup or a copy of the
 * DB file alone then gives nothing away. The file is created once with O_EXCL and mode 0600 (two
 * processes racing both end up with the winner's key), never followed through a symbolic link, and
 * refused when its size is wrong or when group or others may read it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/error.h>
#include <sodium.h>

#include "auth/auth.h"

#define OTP_KEY_FILE "auth_otp.key"

static int read_key(int fd, uint8_t key[AUTH_OTP_KEY_LEN])
{
	struct stat st;
	ssize_t n;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != AUTH_OTP_KEY_LEN || (st.st_mode & 077) != 0)
		return PARLEY_E_CONFIG;
	n = read(fd, key, AUTH_OTP_KEY_LEN);
	return n == AUTH_OTP_KEY_LEN ? PARLEY_OK : PARLEY_E_CONFIG;
}

static int write_key(int fd, uint8_t key[AUTH_OTP_KEY_LEN])
{
	randombytes_buf(key, AUTH_OTP_KEY_LEN);
	/* on disk before any code is MAC'd under it: a crash must not leave codes no key verifies */
	if (write(fd, key, AUTH_OTP_KEY_LEN) != AUTH_OTP_KEY_LEN || fsync(fd) != 0)
		return PARLEY_E_IO;
	return PARLEY_OK;
}

int auth__otp_key_load(const char *dir, uint8_t key[AUTH_OTP_KEY_LEN])
{
	char path[CONFIG_STR_MAX + sizeof(OTP_KEY_FILE) + 1];
	int rc = PARLEY_E_CONFIG, fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, OTP_KEY_FILE) >= sizeof(path))
		return PARLEY_E_CONFIG;
	for (int tries = 0; tries < 2; tries++) {
		if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
			rc = read_key(fd, key);
			close(fd);
			break;
		}
		if (errno != ENOENT)
			return PARLEY_E_CONFIG; /* a symbolic link (ELOOP), no permission... */
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0) {
			rc = write_key(fd, key);
			close(fd);
			if (rc != PARLEY_OK)
				unlink(path); /* a short file would stop every later start */
			break;
		}
		if (errno != EEXIST)
			return PARLEY_E_IO;
		/* another process created it between the two opens: read its key */
	}
	if (rc != PARLEY_OK)
		sodium_memzero(key, AUTH_OTP_KEY_LEN);
	return rc;
}
