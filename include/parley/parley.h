/* parley — umbrella header of libparley, the client library. */
#ifndef PARLEY_H
#define PARLEY_H
#include <parley/export.h>
#include <parley/error.h>
#include <parley/version.h>
#include <parley/client.h>
#include <parley/entity.h>
#include <parley/thread.h>
#include <parley/auth.h>
#include <parley/signal.h>
#include <parley/signal_group.h>
#include <parley/signal_sqlite.h>
#include <parley/fingerprint.h>
#endif
