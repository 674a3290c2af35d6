/* Channel threads on the client (docs/protocol.md §13.6, docs/channels.md): a gateway of an entity
 * (PARLEY_ROLE_GATEWAY in its signed staff list) opens one thread per channel customer (channel,
 * channel_user) and is that thread's customer account; end-to-end encryption ends at the gateway.
 *
 * The channel customer is the gateway's word, not the server's: the gateway signs it in the thread's
 * OPEN, the replay (thread_state.c) keeps it from the verified OPEN, and it is shown only while the
 * thread's customer account (the OPEN's signer) is a GATEWAY of the staff list this device verified.
 * The server's ThreadInfo says the channel too; it is only compared: a ThreadInfo naming another
 * channel or channel user marks the thread disputed for good (shown, with the signed values, and no
 * level believed), so a server can neither reroute the staff's view of a number nor quietly claim one.
 */
#include <string.h>

#include "client/thread_core.h"
#include "wire/wire_threads.h"

void client__thread_chan_from(thread_chan *ch, const Parley__Wire__ThreadInfo *ti)
{
	memset(ch, 0, sizeof(*ch));
	ch->known = 1;
	/* as claimed, to be compared with the signed OPEN (the frame check bounds it at 64 bytes) */
	ch->channel = ti->channel;
	if (ti->channel_user != NULL)
		snprintf(ch->user, sizeof(ch->user), "%s", ti->channel_user);
	ch->verification = (unsigned)ti->verification <= (unsigned)PARLEY_VERIFICATION_AUTHENTICATED
				   ? (unsigned)ti->verification
				   : 0;
	ch->verified_until_ms = ch->verification == PARLEY_VERIFICATION_AUTHENTICATED ? ti->verified_until_ms : 0;
	if (ti->verified_by != NULL)
		snprintf(ch->verified_by, sizeof(ch->verified_by), "%s", ti->verified_by);
}

int client__thread_chan_keep(parley_client *c, uint64_t thread_id, const thread_chan *ch)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!ch->known)
		return PARLEY_OK;
	/* the row exists only once its OPEN was verified, so channel and channel_user are the signed ones */
	rc = client__thread_prep(c,
				 "UPDATE threads SET chan_disputed = chan_disputed OR channel != ?2 OR channel_user != ?3,"
				 " verification = ?4, verified_until_ms = ?5, verified_by = ?6 WHERE thread_id = ?1"
				 /* a listing passes every thread by: write (and sync) only what changed */
				 " AND ((chan_disputed = 0 AND (channel != ?2 OR channel_user != ?3)) OR verification != ?4"
				 " OR verified_until_ms != ?5 OR verified_by != ?6)",
				 thread_id, &st);
	if (rc != PARLEY_OK)
		return rc;
	sqlite3_bind_int64(st, 2, ch->channel);
	sqlite3_bind_text(st, 3, ch->user, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)ch->verification);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)ch->verified_until_ms);
	sqlite3_bind_text(st, 6, ch->verified_by, -1, SQLITE_STATIC);
	return client__sql_done(c, st);
}

void client__thread_chan_info(parley_client *c, const client_thread *t, const parley_entity *ent,
			      parley_thread_info *out)
{
	sqlite3_stmt *st = NULL;
	const wire_staff_member *gw;
	int believed;

	if (client__thread_prep(c,
				"SELECT verification, verified_until_ms, verified_by, chan_disputed FROM threads"
				" WHERE thread_id = ?",
				t->thread_id, &st) != PARLEY_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *by = sqlite3_column_text(st, 2);
		out->verification = (parley_verification)sqlite3_column_int(st, 0);
		out->verified_until_ms = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(out->verified_by, sizeof(out->verified_by), "%s", by != NULL ? (const char *)by : "");
		out->channel_disputed = sqlite3_column_int(st, 3) != 0;
	}
	sqlite3_finalize(st);
	out->channel = t->channel;
	if (t->channel != PARLEY_CHANNEL_NATIVE) {
		/* the OPEN's signer is the customer account: still a gateway of the list verified here? */
		gw = ent != NULL ? wire__stafflist_find(&ent->sl, t->customer_account) : NULL;
		out->gateway_verified = gw != NULL && gw->role == WIRE_ROLE_GATEWAY;
		if (out->gateway_verified) {
			snprintf(out->channel_user, sizeof(out->channel_user), "%s", t->channel_user);
			snprintf(out->gateway, sizeof(out->gateway), "%s", t->customer);
		}
	}
	/* the level is the server's word: believed only of a thread whose channel customer it told as
	 * signed and that a verified gateway (or a native customer) stands behind, and CHANNEL only where
	 * the signed channel's carrier vouches for the number (sms, waba) */
	believed = !out->channel_disputed && (t->channel == PARLEY_CHANNEL_NATIVE || out->gateway_verified);
	if (!believed || (out->verification == PARLEY_VERIFICATION_CHANNEL && wire__channel_baseline(t->channel) == 0)) {
		out->verification = PARLEY_VERIFICATION_UNVERIFIED;
		out->verified_until_ms = 0;
		out->verified_by[0] = '\0';
	}
}

void client__thread_chan_open(parley_client *c, struct thread_op *o)
{
	const wire_staff_member *me = wire__stafflist_find(&o->ent->sl, c->account.account_id);
	int rc;

	if (me == NULL || me->role != WIRE_ROLE_GATEWAY) {
		client__set_err(c, "%s is not a gateway of %s (an admin enrols one: parley entity code %s --gateway)",
				c->account.handle, o->entity, o->entity);
		client__thread_finish(c, o, PARLEY_E_NOT_ENTITY_GATEWAY);
		return;
	}
	/* client__thread_sign puts o->want, the channel customer, into the OPEN */
	rc = client__thread_sign(c, o, 0, 1, WIRE_THREADEV_OPEN, c->account.account_id);
	if (rc != PARLEY_OK) {
		client__thread_finish(c, o, rc);
		return;
	}
	client__thread_run(c, o, TS_OPEN);
}

int client__thread_chan_given(parley_client *c, const struct thread_op *o)
{
	client_thread t;
	int rc;

	if (o->kind != TK_SEND_ENTITY || o->want.channel == PARLEY_CHANNEL_NATIVE)
		return PARLEY_OK;
	rc = client__thread_load(c, o->thread_id, &t);
	if (rc == PARLEY_OK && (t.channel != o->want.channel || strcmp(t.channel_user, o->want.user) != 0)) {
		/* the server gave back another channel customer's thread: writing there would hand this
		 * customer's message to another one */
		client__set_err(c, "thread %llu the server gave back was opened for %s %s, not for %s %s",
				(unsigned long long)o->thread_id, parley_channel_name((int)t.channel), t.channel_user,
				parley_channel_name((int)o->want.channel), o->want.user);
		rc = PARLEY_E_PROTO_MALFORMED;
	}
	return rc;
}
