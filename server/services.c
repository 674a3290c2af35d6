/* The services parleyd runs, in the order their hooks run (a connection is opened by accounts first:
 * the challenge goes out before anything else). A new service adds its descriptor here and its folder
 * to server/meson.build; the dispatcher needs no change. */
#include "services.h"

#include "accounts/accounts.h"
#include "auth/auth.h"
#include "dispatch/service.h"
#include "entities/entities.h"
#include "keys/keys.h"
#include "relay/relay.h"
#include "threads/threads.h"

static const service *const services[] = {
	&accounts__service,
	&keys__service,
	&relay__service,
	&entities__service,
	&threads__service,
	&auth__service,
};

const service *const *parleyd__services(size_t *n)
{
	*n = sizeof(services) / sizeof(services[0]);
	return services;
}
