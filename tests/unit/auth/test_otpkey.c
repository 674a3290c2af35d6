/* server/auth/otpkey.c: the one-time codes' MAC key file <dir>/auth_otp.key. Created once (0600, 32
 * random bytes), the same key at every later load, and refused (PARLEY_E_CONFIG) when it could leak or
 * be someone else's: a symbolic link, the wrong size, readable by group or others. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/error.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "test.h"

static char dir[64];
static char path[128];

static void test_create_and_reload(void)
{
	uint8_t a[AUTH_OTP_KEY_LEN], b[AUTH_OTP_KEY_LEN], zero[AUTH_OTP_KEY_LEN] = {0};
	struct stat st;
	TEST_EQ_INT(auth__otp_key_load(dir, a), PARLEY_OK);
	TEST_CHECK(memcmp(a, zero, sizeof(a)) != 0);
	TEST_CHECK(lstat(path, &st) == 0);
	TEST_CHECK(S_ISREG(st.st_mode));
	TEST_EQ_INT(st.st_mode & 0777, 0600);
	TEST_EQ_INT(st.st_size, AUTH_OTP_KEY_LEN);
	TEST_EQ_INT(auth__otp_key_load(dir, b), PARLEY_OK);
	TEST_EQ_MEM(a, b, sizeof(a)); /* a restart: the same key */
	/* another directory: another key */
	char dir2[64], path2[128];
	snprintf(dir2, sizeof(dir2), "/tmp/parley-otpkey2-XXXXXX");
	TEST_CHECK(mkdtemp(dir2) != NULL);
	TEST_EQ_INT(auth__otp_key_load(dir2, b), PARLEY_OK);
	TEST_CHECK(memcmp(a, b, sizeof(a)) != 0);
	snprintf(path2, sizeof(path2), "%s/auth_otp.key", dir2);
	unlink(path2);
	rmdir(dir2);
}

static void test_refusals(void)
{
	uint8_t k[AUTH_OTP_KEY_LEN], junk[AUTH_OTP_KEY_LEN + 1];
	char target[160];
	int fd;

	memset(junk, 7, sizeof(junk));
	/* readable by others */
	TEST_EQ_INT(chmod(path, 0644), 0);
	TEST_EQ_INT(auth__otp_key_load(dir, k), PARLEY_E_CONFIG);
	TEST_EQ_INT(chmod(path, 0640), 0);
	TEST_EQ_INT(auth__otp_key_load(dir, k), PARLEY_E_CONFIG);
	TEST_EQ_INT(chmod(path, 0400), 0);
	TEST_EQ_INT(auth__otp_key_load(dir, k), PARLEY_OK); /* read-only for the owner is fine */
	/* the wrong size */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	TEST_CHECK(fd >= 0 && write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	TEST_EQ_INT(auth__otp_key_load(dir, k), PARLEY_E_CONFIG);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600); /* empty: a crash mid-creation */
	close(fd);
	TEST_EQ_INT(auth__otp_key_load(dir, k), PARLEY_E_CONFIG);
	/* a symbolic link to a perfectly good key file elsewhere */
	unlink(path);
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
	TEST_CHECK(fd >= 0 && write(fd, junk, AUTH_OTP_KEY_LEN) == AUTH_OTP_KEY_LEN);
	close(fd);
	TEST_EQ_INT(symlink(target, path), 0);
	TEST_EQ_INT(auth__otp_key_load(dir, k), PARLEY_E_CONFIG);
	unlink(path);
	unlink(target);
	/* a directory that does not exist: nothing created */
	TEST_CHECK(auth__otp_key_load("/nonexistent-parley-dir", k) != PARLEY_OK);
}

int main(void)
{
	TEST_CHECK(crypto__init() == PARLEY_OK);
	snprintf(dir, sizeof(dir), "/tmp/parley-otpkey-XXXXXX");
	TEST_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/auth_otp.key", dir);
	TEST_RUN(test_create_and_reload);
	TEST_RUN(test_refusals);
	unlink(path);
	rmdir(dir);
	TEST_EXIT();
}
