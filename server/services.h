/* The list of services parleyd runs (services.c). */
#ifndef PARLEYD_SERVICES_H
#define PARLEYD_SERVICES_H
#include <stddef.h>

struct service;
const struct service *const *parleyd__services(size_t *n);

#endif
