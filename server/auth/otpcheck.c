/* One OTP key across the nodes of one database. The key stays in each node's data_dir (otpkey.c says
 * why not in the database); what the database keeps is its fingerprint, HMAC-SHA256(key, a fixed
 * label), which tells keys apart without giving one away. A node whose key differs would answer "wrong
 * code" to every correct code another node sent, silently: at start-up it compares instead.
 *
 * With PostgreSQL (several nodes) a differing key is an operator's mistake to fix before serving: the
 * node refuses to start. With SQLite (one node) it is a restored backup or a lost key file: codes sent
 * before cannot verify whatever we do, so the node warns, takes the new fingerprint and starts. */
#include <stdio.h>
#include <string.h>

#include <parley/error.h>
#include <sodium.h>

#include "auth/auth.h"
#include "base/log.h"

#define MODULE "auth"
#define OTP_FP_SETTING "auth.otp_key_fingerprint"
#define OTP_FP_LABEL "parley auth otp key fingerprint v1"

int auth__otp_key_check(store *s, const parleyd_config *cfg)
{
	uint8_t key[AUTH_OTP_KEY_LEN];
	store_job *j;
	int rc, several = cfg->store[0] != '\0';

	/* an unusable key file: the auth service's init reports it and parleyd does not start */
	if (auth__otp_key_load(cfg->data_dir, key) != PARLEY_OK)
		return PARLEY_OK;
	if ((j = store__job_new(STORE_OP_SETTING_CHECK)) == NULL) {
		sodium_memzero(key, sizeof(key));
		return PARLEY_E_NOMEM;
	}
	snprintf(j->set.name, sizeof(j->set.name), "%s", OTP_FP_SETTING);
	crypto_auth_hmacsha256(j->set.value, (const unsigned char *)OTP_FP_LABEL, strlen(OTP_FP_LABEL), key);
	sodium_memzero(key, sizeof(key));
	j->set.value_len = crypto_auth_hmacsha256_BYTES;
	j->set.replace = !several;
	rc = store__run_sync(s, j);
	if (rc != PARLEY_OK) {
		log_error(MODULE, "checking %s/auth_otp.key against the database: %s", cfg->data_dir, parley_strerror(rc));
	} else if (j->set.result == STORE_SETTING_STORED) {
		log_info(MODULE, "%s/auth_otp.key: its fingerprint is now the database's (every node must use this key)",
			 cfg->data_dir);
	} else if (j->set.result == STORE_SETTING_DIFFERS && several) {
		log_error(MODULE, "%s/auth_otp.key differs from the key the other nodes of this database use (their codes "
			  "would all fail here): stop parleyd, copy auth_otp.key from a running node's data_dir into %s "
			  "(32 bytes, mode 0600, owned by parleyd's user) and start again",
			  cfg->data_dir, cfg->data_dir);
		rc = PARLEY_E_CONFIG;
	} else if (j->set.result == STORE_SETTING_DIFFERS) {
		log_warn(MODULE, "%s/auth_otp.key is not the key this database last ran with (a restored backup, a lost "
			 "key file?): one-time codes sent before cannot verify; its fingerprint replaces the stored one",
			 cfg->data_dir);
	}
	store__job_free(j);
	return rc;
}
