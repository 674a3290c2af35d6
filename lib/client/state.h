/* Local device state of libparley: one directory, one SQLite database (`client.db`).
 *
 * The directory is created 0700 and every file in it 0600, because client.db holds the device's secret
 * key (and later the Signal session stores). Opening refuses, with PARLEY_E_PERM and a message naming
 * the file, any state file that another user could read or that we do not own — the same rule ssh
 * applies to private keys — instead of silently using a key that may have leaked.
 *
 * Updates are single SQLite transactions (BEGIN IMMEDIATE), so a crash or a concurrent `parley` process
 * never leaves a half-saved account or two different device keys.
 */
#ifndef PARLEY_CLIENT_STATE_H
#define PARLEY_CLIENT_STATE_H
#include <stddef.h>
#include <stdint.h>

#include <parley/client.h>
#include <sqlite3.h>
#include <sodium.h>

#define CLIENT_DB_NAME "client.db"

/* Wall-clock time in Unix milliseconds, as stored in client.db and used for message ids. */
uint64_t client__now_ms(void);

typedef struct client_state client_state;

/* The account this device belongs to, as saved after register/link. */
typedef struct client_account {
	char handle[PARLEY_HANDLE_MAX + 1];
	uint64_t account_id;
	uint32_t device_id;
	char server_url[PARLEY_URL_MAX + 1];
	uint64_t saved_ms;
	int registered; /* this device registered the account (it created the account key) */
} client_account;

/* The Ed25519 device key pair. The secret key lives only in memory owned by the client and is wiped
 * with sodium_memzero when the client is freed. */
typedef struct client_key {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
} client_key;

/* Resolves the state directory: `dir` if non-NULL, else $XDG_DATA_HOME/parley (only if absolute, as
 * the XDG spec requires), else $HOME/.local/share/parley. *out is allocated (parley__free).
 * PARLEY_E_CONFIG when neither variable is usable, PARLEY_E_TOO_LARGE, PARLEY_E_NOMEM. */
int client__state_dir_resolve(const char *dir, char **out);

/* Creates `dir` (and missing parents) with mode 0700, checks permissions, creates/opens client.db 0600
 * and brings its schema up to date (every table of the file, including those of e2e.c; a file written
 * by an older parley is migrated, one written by a newer parley is refused with PARLEY_E_STORE).
 * err (errlen bytes) receives a one-line detail on failure.
 * Returns PARLEY_OK, PARLEY_E_IO, PARLEY_E_PERM, PARLEY_E_STORE, PARLEY_E_NOMEM. */
int client__state_open(const char *dir, client_state **out, char *err, size_t errlen);
void client__state_close(client_state *s);

/* The database, for other modules of libparley that keep their own tables in client.db. */
sqlite3 *client__state_db(client_state *s);

/* Loads the device key; when there is none and `create` is set, generates one and saves it atomically
 * (if another process saved one first, that one is loaded). PARLEY_E_NOT_FOUND when absent and
 * !create; PARLEY_E_STORE when the stored key is corrupt (its public half does not match its seed). */
int client__state_key(client_state *s, int create, client_key *out, char *err, size_t errlen);

/* PARLEY_OK and *out filled, or PARLEY_E_NO_IDENTITY when no account is saved. */
int client__state_account(client_state *s, client_account *out, char *err, size_t errlen);

/* Saves the account if none is saved yet (one transaction). PARLEY_E_STATE if one already exists. */
int client__state_save_account(client_state *s, const client_account *a, char *err, size_t errlen);

/* Deletes the saved account (this device was removed from it); the device key stays, so the device can
 * be added again or register anew. */
int client__state_forget_account(client_state *s, char *err, size_t errlen);

/* Checks that an existing file is a regular file owned by us with no group/other permission bits.
 * PARLEY_OK, PARLEY_E_PERM (with detail), PARLEY_E_IO. A missing file is PARLEY_E_NOT_FOUND. */
int client__check_private_file(const char *path, char *err, size_t errlen);

/* Formats into a caller's error buffer (NULL or 0 bytes: nothing); the state and the history store use it
 * where no parley_client is at hand. */
void client__errbuf_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
