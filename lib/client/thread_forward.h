/* Forward of a thread to an agent (docs/protocol.md §13.5, docs/threads.md "Forward and history
 * sharing"): thread_forward.c sends (parley_thread_forward*), thread_forward_recv.c imports.
 */
#ifndef PARLEY_CLIENT_THREAD_FORWARD_H
#define PARLEY_CLIENT_THREAD_FORWARD_H
#include "client/thread_core.h"

/* A pairwise Content of kind FORWARD (7) or FORWARD_HISTORY (8) from e's sender (thread_recv.c routes
 * them here; they never reach on_message). A bundle is imported only when every check passes
 * (thread_forward_recv.c); a refusal goes to on_error as PARLEY_E_FORWARD_INVALID with errmsg set. */
void client__forward_receive(parley_client *c, const Parley__Wire__Envelope *e, const client_content *ct);

/* client.db schema "client.forward": the forwards this device accepted (forward_id, from which device,
 * chunks expected) and the chunks it imported. */
int client__forward_ready(parley_client *c);

#endif
