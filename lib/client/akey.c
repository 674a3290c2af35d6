/* This account's account key (AK, docs/protocol.md §11): the key that signs the account's device lists.
 * client.db's account_key table holds its public half on every device that knows it (register: made
 * here; link/auth: AuthResponse.account_key) and its private half only on the device that holds it (the
 * one that registered, or the one it was transferred to). The private half is read from disk for each
 * signature and wiped from memory right after, so it never lingers in the client handle. */
#include <string.h>

#include "client/client_internal.h"
#include "crypto/crypto.h"

int client__akey_load(parley_client *c, uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN], uint8_t priv[32], int *have_private)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "SELECT public_key, private_key FROM account_key WHERE id = 1", &st);
	if (rc != PARLEY_OK)
		return rc;
	if (have_private != NULL)
		*have_private = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = PARLEY_E_NOT_FOUND;
	} else if (rc != SQLITE_ROW) {
		rc = client__sql_err(c);
	} else if (sqlite3_column_bytes(st, 0) != PARLEY_SIGNAL_PUBKEY_LEN) {
		client__set_err(c, "client.db: the account key has the wrong size");
		rc = PARLEY_E_STORE;
	} else {
		if (pub != NULL)
			memcpy(pub, sqlite3_column_blob(st, 0), PARLEY_SIGNAL_PUBKEY_LEN);
		if (sqlite3_column_bytes(st, 1) == 32) {
			if (have_private != NULL)
				*have_private = 1;
			if (priv != NULL)
				memcpy(priv, sqlite3_column_blob(st, 1), 32);
		}
		rc = PARLEY_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

int client__akey_save(parley_client *c, const uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN], const uint8_t *priv)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c,
				  "INSERT OR REPLACE INTO account_key (id, public_key, private_key, created_ms)"
				  " VALUES (1, ?, ?, ?)",
				  &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_blob(st, 1, pub, PARLEY_SIGNAL_PUBKEY_LEN, SQLITE_TRANSIENT);
	if (priv != NULL)
		sqlite3_bind_blob(st, 2, priv, 32, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)client__now_ms());
	return client__sql_done(c, st);
}

int client__akey_learn(parley_client *c, const uint8_t *pub, size_t len)
{
	uint8_t have[PARLEY_SIGNAL_PUBKEY_LEN], raw[32];
	int rc;

	if (len == 0)
		return PARLEY_OK;
	if (len != PARLEY_SIGNAL_PUBKEY_LEN || crypto__pubkey_parse(raw, pub, len) != PARLEY_OK)
		return PARLEY_E_PROTO_MALFORMED;
	rc = client__akey_load(c, have, NULL, NULL);
	if (rc == PARLEY_OK && memcmp(have, pub, sizeof(have)) == 0)
		return PARLEY_OK; /* known (and the private half, if held, stays) */
	if (rc != PARLEY_OK && rc != PARLEY_E_NOT_FOUND)
		return rc;
	return client__akey_save(c, pub, NULL);
}

int client__akey_drop_private(parley_client *c)
{
	sqlite3_stmt *st = NULL;
	int rc = client__sql_prep(c, "UPDATE account_key SET private_key = NULL WHERE id = 1", &st);
	return rc != PARLEY_OK ? rc : client__sql_done(c, st);
}

int client__account_key(parley_client *c, uint8_t pub[33], int *have_private)
{
	if (c == NULL)
		return PARLEY_E_INVAL;
	int rc = client__ensure_key(c, 0);
	if (rc != PARLEY_OK && rc != PARLEY_E_NO_IDENTITY)
		return rc; /* NO_IDENTITY: no device key yet, but client.db is open */
	return client__akey_load(c, pub, NULL, have_private);
}

int client__akey_generate(parley_client *c, uint8_t pub[PARLEY_SIGNAL_PUBKEY_LEN])
{
	crypto_keypair kp;
	int rc = crypto__keypair_generate(&kp);
	if (rc != PARLEY_OK)
		return rc;
	crypto__pubkey_serialize(pub, kp.pub);
	/* saved before the server hears of it: a crash after the server accepted the registration must
	 * not lose the only copy of the private half */
	rc = client__akey_save(c, pub, kp.priv);
	crypto__keypair_wipe(&kp);
	return rc;
}
