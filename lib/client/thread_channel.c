/* Channel threads on the client (docs/protocol.md §13.6, docs/channels.md): a gateway of an entity
 * (PARLEY_ROLE_GATEWAY in its signed staff list) opens one thread per channel customer (channel,
 * channel_user) and is that thread's customer account; end-to-end encryption ends at the gateway.
 *
 * The channel and its customer are the server's word (the signed OPEN does not carry them): this
 * device keeps the first ones it is told for a thread and never lets them change, and shows them only
 * while the thread's customer account is a GATEWAY of the staff list it verified itself: a server
 * cannot dress an ordinary customer up as "sms +1555... via a gateway", and a gateway the entity
 * removed is shown as an unverified channel.
 */
#include <string.h>

#include "client/thread_core.h"
#include "wire/wire_threads.h"

void client__thread_chan_from(thread_chan *ch, const Parley__Wire__ThreadInfo *ti)
{
	memset(ch, 0, sizeof(*ch));
	ch->known = 1;
	if (ti->channel != 0 && ti->channel_user != NULL && wire__channel_valid(ti->channel, ti->channel_user)) {
		ch->channel = ti->channel;
		snprintf(ch->user, sizeof(ch->user), "%s", ti->channel_user);
	}
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
	rc = client__thread_prep(c,
				 "UPDATE threads SET channel = CASE WHEN chan_set THEN channel ELSE ?2 END,"
				 " channel_user = CASE WHEN chan_set THEN channel_user ELSE ?3 END, chan_set = 1,"
				 " verification = ?4, verified_until_ms = ?5, verified_by = ?6 WHERE thread_id = ?1"
				 /* a listing passes every thread by: write (and sync) only what changed */
				 " AND (chan_set = 0 OR verification != ?4 OR verified_until_ms != ?5 OR verified_by != ?6)",
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
	thread_chan ch;
	const wire_staff_member *gw;

	memset(&ch, 0, sizeof(ch));
	if (client__thread_prep(c,
				"SELECT channel, channel_user, verification, verified_until_ms, verified_by FROM threads"
				" WHERE thread_id = ?",
				t->thread_id, &st) != PARLEY_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *u = sqlite3_column_text(st, 1), *by = sqlite3_column_text(st, 4);
		ch.channel = (uint32_t)sqlite3_column_int64(st, 0);
		snprintf(ch.user, sizeof(ch.user), "%s", u != NULL ? (const char *)u : "");
		ch.verification = (unsigned)sqlite3_column_int(st, 2);
		ch.verified_until_ms = (uint64_t)sqlite3_column_int64(st, 3);
		snprintf(ch.verified_by, sizeof(ch.verified_by), "%s", by != NULL ? (const char *)by : "");
	}
	sqlite3_finalize(st);
	out->channel = ch.channel;
	out->verification = (parley_verification)ch.verification;
	out->verified_until_ms = ch.verified_until_ms;
	snprintf(out->verified_by, sizeof(out->verified_by), "%s", ch.verified_by);
	if (ch.channel == PARLEY_CHANNEL_NATIVE)
		return;
	gw = ent != NULL ? wire__stafflist_find(&ent->sl, t->customer_account) : NULL;
	out->gateway_verified = gw != NULL && gw->role == WIRE_ROLE_GATEWAY;
	if (!out->gateway_verified) {
		/* nobody the entity vouches for stands behind the channel: no name, no number, no level */
		out->verification = PARLEY_VERIFICATION_UNVERIFIED;
		out->verified_until_ms = 0;
		out->verified_by[0] = '\0';
		return;
	}
	snprintf(out->channel_user, sizeof(out->channel_user), "%s", ch.user);
	snprintf(out->gateway, sizeof(out->gateway), "%s", t->customer);
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
	rc = client__thread_sign(c, o, 0, 1, WIRE_THREADEV_OPEN, c->account.account_id);
	if (rc != PARLEY_OK) {
		client__thread_finish(c, o, rc);
		return;
	}
	client__thread_run(c, o, TS_OPEN);
}
