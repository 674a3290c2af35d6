/* Telling the service manager how start-up and shutdown go: systemd's notification protocol, without
 * libsystemd. The protocol is one datagram of "KEY=value" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or '@' for an abstract name), which systemd sets for a Type=notify unit.
 * parleyd sends READY=1 once its listeners are up (so `systemctl start` returns only when clients can
 * connect, and units ordered After= it start then), STOPPING=1 at SIGTERM, RELOADING=1 ... READY=1
 * around SIGHUP, and STATUS= lines that `systemctl status` shows. */
#ifndef PARLEYD_SDNOTIFY_H
#define PARLEYD_SDNOTIFY_H

/* Sends state (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET. Without $NOTIFY_SOCKET (not started
 * by systemd, or by a unit of another Type) it does nothing and returns PARLEY_OK. PARLEY_E_INVAL for a
 * socket name the protocol does not allow; PARLEY_E_IO when the datagram could not be sent (logged by
 * the caller: the manager's view is then stale, the service itself is fine). Any thread. */
int sdnotify__send(const char *state);

/* The same to an explicit socket name (a path starting with '/', or '@name' for an abstract socket). */
int sdnotify__send_to(const char *socket_name, const char *state);

#endif
