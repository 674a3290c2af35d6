/* Fuzz parley-gateway's webhook parsers (gateway/): the first byte picks the provider, the rest is the
 * request body (or the query string of the WABA handshake). Every parser must refuse or accept without
 * reading out of bounds, leaking, or accepting a channel_user outside spec11's shape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_user(const gw_inbound *in)
{
	if (!inbound__user_valid(in->user) || strlen(in->text) != in->text_len || !in->id[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned which = data[0] % 4;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	gw_form f;
	gw_inbound in;
	gw_inbound_list l;
	char sig[TWILIO_SIGNATURE_LEN + 1], ch[300];

	switch (which) {
	case 0:
		if (form__parse(body, len, &f) == PARLEY_OK) {
			(void)twilio__signature("token", "https://gw.example/sms/twilio", &f, sig);
			(void)twilio__check("token", "https://gw.example/sms/twilio", &f, sig);
			if (twilio__parse(&f, NULL, &in) == PARLEY_OK) {
				check_user(&in);
				if (!inbound__is_e164(in.user))
					abort();
				free(in.text);
			}
			form__free(&f);
		}
		break;
	case 1:
		if (waba__parse(body, len, 100, &l) == PARLEY_OK) {
			for (size_t i = 0; i < l.n; i++)
				check_user(&l.v[i]);
			inbound__list_free(&l);
		}
		break;
	case 2:
		if (byoc__parse(body, len, &in) == PARLEY_OK) {
			check_user(&in);
			free(in.text);
		}
		break;
	default: {
		char *q = malloc(len + 1);
		if (!q)
			return 0;
		memcpy(q, body, len);
		q[len] = '\0';
		(void)waba__verify(q, "vt", ch, sizeof(ch));
		free(q);
	}
	}
	return 0;
}
