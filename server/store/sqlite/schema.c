/* SQLite backend, schema: the SQLite DDL of the schemas the domain files (server/store/sql/) version on
 * their own, migrated after engine.c's "server" schema. Each array is append-only: a released step is
 * never edited, a change is a new step. The PostgreSQL backend's DDL for the same tables is
 * server/store/postgres/schema.c. */
#include "common/migrate.h"
#include "store/sqlite/sqlite_internal.h"

/* --- from sql/contacts.c --- */
static const char *const contact_steps[] = {
	/* 1: directed acceptance and the presence opt-out replace the undirected threads table */
	"CREATE TABLE IF NOT EXISTS contacts ("
	"  owner INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  peer INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  last_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (owner, peer)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS contacts_peer ON contacts(peer);"
	"CREATE INDEX IF NOT EXISTS contacts_last ON contacts(last_ms);"
	"CREATE TABLE IF NOT EXISTS presence_settings ("
	"  account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,"
	"  share INTEGER NOT NULL"
	");"
	"DROP TABLE IF EXISTS threads;",
};

const migrate_schema sqlite__contacts_schema = {
	.name = "server.contacts",
	MIGRATE_STEPS(contact_steps),
	.legacy_user_version = 0,
};

/* --- from sql/entities.c --- */
static const char *const entity_steps[] = {
	/* 1: the registry */
	"CREATE TABLE IF NOT EXISTS entities ("
	"  id INTEGER PRIMARY KEY,"
	"  handle TEXT NOT NULL UNIQUE,"
	"  display_name TEXT NOT NULL,"
	"  entity_key BLOB NOT NULL,"
	"  primary_admin INTEGER NOT NULL REFERENCES accounts(id),"
	"  staff_version INTEGER NOT NULL,"
	"  staff_list BLOB NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS entity_members ("
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  role INTEGER NOT NULL,"
	"  added_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (entity_id, account_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS entity_members_account ON entity_members(account_id);"
	"CREATE TABLE IF NOT EXISTS entity_codes ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  code_hash BLOB NOT NULL,"
	"  role INTEGER NOT NULL,"
	"  created_by INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  request_id INTEGER,"
	"  UNIQUE (entity_id, code_hash)"
	");"
	"CREATE TABLE IF NOT EXISTS entity_requests ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  code_id INTEGER NOT NULL,"
	"  role INTEGER NOT NULL,"
	"  account_key BLOB NOT NULL,"
	"  devlist BLOB NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  decided_by INTEGER,"
	"  decided_ms INTEGER"
	");"
	"CREATE INDEX IF NOT EXISTS entity_requests_pending ON entity_requests(entity_id, state);"
	/* failed code attempts: leaky buckets shared by every loop (kind 1 entity, 2 account) */
	"CREATE TABLE IF NOT EXISTS entity_guesses ("
	"  kind INTEGER NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  level REAL NOT NULL,"
	"  at_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (kind, id)"
	") WITHOUT ROWID;",
	/* 2: an admin without the entity key approves a request (enrol.c): the approval record waits with
	 * the request for the entity key's holder; at most one per request (the key). A table of its own
	 * rather than a column: every step here must run again harmlessly over existing tables (a file
	 * from before schema_version re-runs this schema's steps) and ADD COLUMN cannot say IF NOT EXISTS. */
	"CREATE TABLE IF NOT EXISTS entity_approvals ("
	"  request_id INTEGER PRIMARY KEY REFERENCES entity_requests(id) ON DELETE CASCADE,"
	"  approval BLOB NOT NULL,"
	"  approver INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");",
};

const migrate_schema sqlite__entities_schema = {
	.name = "server.entities",
	MIGRATE_STEPS(entity_steps),
	.legacy_user_version = 0,
};

/* --- from sql/threads.c --- */
static const char *const thread_steps[] = {
	/* 1: threads, their members and events, and the thread of each queued group envelope (the relay's
	 * queue is shared: a group message is queued exactly as a pairwise one) */
	"CREATE TABLE IF NOT EXISTS threads ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  customer INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  channel INTEGER NOT NULL DEFAULT 0,"
	"  status INTEGER NOT NULL,"
	"  handling_agent INTEGER NOT NULL DEFAULT 0,"
	"  lock_holder INTEGER NOT NULL DEFAULT 0,"
	"  version INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS threads_customer ON threads(customer, entity_id, status);"
	"CREATE INDEX IF NOT EXISTS threads_entity ON threads(entity_id, id);"
	"CREATE TABLE IF NOT EXISTS thread_members ("
	"  thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  role_at_add INTEGER NOT NULL," /* 0 the customer, else WIRE_ROLE_* */
	"  added_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (thread_id, account_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS thread_members_account ON thread_members(account_id);"
	"CREATE TABLE IF NOT EXISTS thread_events ("
	"  thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
	"  version INTEGER NOT NULL,"
	"  event BLOB NOT NULL,"
	"  PRIMARY KEY (thread_id, version)"
	") WITHOUT ROWID;"
	/* the thread of a queued group envelope (relay.c). A table rather than a column of messages: a
	 * file from before schema_version re-runs every step, and ADD COLUMN cannot say IF NOT EXISTS */
	"CREATE TABLE IF NOT EXISTS thread_envelopes ("
	"  message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
	"  thread_id INTEGER NOT NULL"
	");",
	/* 2 (issue 11): the customer on a channel thread (a gateway's thread: its account is the customer);
	 * one open thread per (entity, customer account, channel, channel_user) */
	"ALTER TABLE threads ADD COLUMN channel_user TEXT NOT NULL DEFAULT '';"
	"DROP INDEX IF EXISTS threads_customer;"
	"CREATE INDEX threads_customer ON threads(customer, entity_id, channel, channel_user, status);",
};

const migrate_schema sqlite__threads_schema = {
	.name = "server.threads",
	MIGRATE_STEPS(thread_steps),
	.legacy_user_version = 0,
};

/* --- from sql/auth.c --- */
static const char *const auth_steps[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS auth_components ("
	"  id INTEGER PRIMARY KEY,"
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL, type INTEGER NOT NULL, state INTEGER NOT NULL,"
	"  issuer TEXT NOT NULL, discovery_url TEXT NOT NULL, authorization_endpoint TEXT NOT NULL,"
	"  token_endpoint TEXT NOT NULL, jwks_uri TEXT NOT NULL, userinfo_endpoint TEXT NOT NULL,"
	"  client_id TEXT NOT NULL, secret_ref TEXT NOT NULL, scopes TEXT NOT NULL,"
	"  binding INTEGER NOT NULL, credential_ttl_s INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	"  UNIQUE (entity_id, name)"
	");"
	/* state / nonce / verifier never leave the server; otp_mac is an HMAC under a key that lives only
	 * in parleyd's memory, so a copy of the database does not give the codes away */
	"CREATE TABLE IF NOT EXISTS auth_requests ("
	"  id INTEGER PRIMARY KEY,"
	"  thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
	"  component_id INTEGER NOT NULL REFERENCES auth_components(id) ON DELETE CASCADE,"
	"  token TEXT NOT NULL UNIQUE, state TEXT NOT NULL UNIQUE, nonce TEXT NOT NULL, verifier TEXT NOT NULL,"
	"  otp_mac BLOB, attempts INTEGER NOT NULL DEFAULT 0,"
	"  status INTEGER NOT NULL, error INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS auth_requests_thread ON auth_requests(thread_id, status);"
	"CREATE INDEX IF NOT EXISTS auth_requests_open ON auth_requests(status, expires_ms);"
	/* the customer of a thread is the account for a native thread, (gateway account, channel,
	 * channel user) for a channel thread: a subject is linked to that identity at its first success */
	"CREATE TABLE IF NOT EXISTS auth_links ("
	"  component_id INTEGER NOT NULL REFERENCES auth_components(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  channel INTEGER NOT NULL, channel_user TEXT NOT NULL,"
	"  sub TEXT NOT NULL, linked_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (component_id, account_id, channel, channel_user)"
	") WITHOUT ROWID;"
	/* step 1's known emails (keyed by account alone: replaced by step 2) */
	"CREATE TABLE IF NOT EXISTS auth_known_emails ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  email TEXT NOT NULL,"
	"  PRIMARY KEY (account_id, email)"
	") WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS auth_credentials ("
	"  id INTEGER PRIMARY KEY,"
	"  thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE,"
	"  request_id INTEGER NOT NULL, component_id INTEGER NOT NULL,"
	"  token_hash BLOB NOT NULL, sub TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS auth_thread_level ("
	"  thread_id INTEGER PRIMARY KEY REFERENCES threads(id) ON DELETE CASCADE,"
	"  credential_id INTEGER NOT NULL, until_ms INTEGER NOT NULL, verified_by TEXT NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS auth_thread_level_until ON auth_thread_level(until_ms);",
	/* 2: known emails belong to (entity, customer identity), the identity auth_links uses: a business's
	 * record never serves another business, and a channel thread's customer is (gateway account,
	 * channel, channel user), not the gateway's account shared by all its channel users. The table of
	 * step 1 was keyed by account alone and no call ever filled it: it is replaced, not migrated. */
	"DROP TABLE IF EXISTS auth_known_emails;"
	"CREATE TABLE auth_known_emails ("
	"  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  channel INTEGER NOT NULL, channel_user TEXT NOT NULL,"
	"  email TEXT NOT NULL, added_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (entity_id, account_id, channel, channel_user, email)"
	") WITHOUT ROWID;",
};

const migrate_schema sqlite__auth_schema = {
	.name = "server.auth",
	MIGRATE_STEPS(auth_steps),
	.legacy_user_version = 0,
};

/* --- from sql/auth.c --- */
/* The jti of every accepted business-signed assertion, until its exp: a replay is the insert's
 * conflict, in the transaction that records the credential, so it holds across restarts and between
 * concurrent answers. Its own schema (not a step of server.auth): it can be added, or dropped and
 * rebuilt, without touching the requests' history. */
static const char *const auth_jti_steps[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS auth_jti ("
	"  component_id INTEGER NOT NULL REFERENCES auth_components(id) ON DELETE CASCADE,"
	"  jti_hash BLOB NOT NULL,"
	"  exp_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (component_id, jti_hash)"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS auth_jti_exp ON auth_jti(exp_ms);",
};

const migrate_schema sqlite__auth_jti_schema = {
	.name = "server.auth_jti",
	MIGRATE_STEPS(auth_jti_steps),
	.legacy_user_version = 0,
};

/* --- from sql/settings.c --- */
/* Small facts about the whole database that every node must agree on (name -> value), e.g. the
 * fingerprint of the OTP key (auth/otpcheck.c). Its own schema: the domain schemas never depend on it. */
static const char *const settings_steps[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS server_settings ("
	"  name TEXT PRIMARY KEY,"
	"  value BLOB NOT NULL"
	") WITHOUT ROWID;",
};

const migrate_schema sqlite__settings_schema = {
	.name = "server.settings",
	MIGRATE_STEPS(settings_steps),
	.legacy_user_version = 0,
};
