/* The one completion type of parleyd.
 *
 * Every asynchronous call in the server — a service call (accounts, keys, relay, ...) and a store job —
 * reports through this shape: `status` (PARLEY_OK or a parley_err) and the call's domain result, whose
 * type each call names in its comment (a store job's result is the `const store_job *`). The result is
 * valid during the callback only and is NULL when the call failed before producing one. Because a
 * service can hand its caller's (cb, arg) straight to store__submit, no call needs an adapter
 * allocation between the layers.
 *
 * Threads: the callback always runs on the loop thread that made the call, either from within the call
 * (validation failures) or later (store completions).
 */
#ifndef PARLEYD_BASE_SVC_H
#define PARLEYD_BASE_SVC_H

typedef void (*svc_cb)(void *arg, int status, const void *result);

#endif
