/* Customer authentication inside lib/client (public API <parley/auth.h>, docs/auth.md, protocol §14).
 *
 *   auth.c       the calls: argument checks, one auth_op per request, the blocking variants
 *   auth_wire.c  the wire <-> public struct conversions (and the known emails) (every server string copied bounded: one that
 *                does not fit its field is PARLEY_E_PROTO_MALFORMED, never cut), the pushes AuthPrompt
 *                and AuthResult to the application's parley_auth_events, the name functions
 */
#ifndef PARLEY_CLIENT_AUTH_INTERNAL_H
#define PARLEY_CLIENT_AUTH_INTERNAL_H
#include <parley/auth.h>

#include "client/client_internal.h"

/* A component from the server. PARLEY_E_PROTO_MALFORMED: a string longer than its field, an entity that
 * is no valid handle, an empty or over-long name. */
int client__auth_component_from_wire(const Parley__Wire__AuthComponent *w, parley_auth_component *out);
/* A request from the server. PARLEY_E_PROTO_MALFORMED as above, request_id 0, or a sign-in URL that is
 * not http(s) printable ASCII (the URL is shown to a customer to open: nothing else may pass). */
int client__auth_request_from_wire(const Parley__Wire__AuthRequestInfo *w, parley_auth_request *out);
/* The wire form of a component; its strings point into in (which must outlive w). in is checked first:
 * PARLEY_E_INVAL (errmsg in err) for a field without its NUL, an empty name, an unknown type or
 * binding, an invalid entity handle. */
int client__auth_component_to_wire(const parley_auth_component *in, Parley__Wire__AuthComponent *w, char *err,
				   size_t errlen);
/* A status response: PARLEY_E_PROTO_MALFORMED as above and for more requests or claims than the
 * struct holds (the server's documented bounds). */
int client__auth_status_from_wire(const Parley__Wire__AuthStatusResponse *w, parley_auth_status *out);
/* A list of known emails (emails, n) from the server into out (n_out, size PARLEY_AUTH_EMAILS_MAX):
 * PARLEY_E_PROTO_MALFORMED (out emptied) for more than fit, or one that is no valid lower-cased
 * address (wire__auth_email_norm's rule: the server never stores another form). */
int client__auth_emails_from_wire(char *const *emails, size_t n, char out[][PARLEY_AUTH_EMAIL_MAX + 1],
				  size_t *n_out);
/* recv.c: the AuthPrompt and AuthResult pushes, to c->aev (malformed ones are dropped). */
void client__auth_push(parley_client *c, const Parley__Wire__Push *p);

#endif
