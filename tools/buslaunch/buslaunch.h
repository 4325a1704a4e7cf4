/*
 * Private D-Bus buses for tests and benchmarks: a dbus-daemon or a
 * dbus-broker of our own, listening on a socket of our choosing, with a
 * policy that lets anyone connect, own any name, call anything and monitor.
 * The processes started die with the process that started them.
 */
#ifndef IMP_BUSLAUNCH_H
#define IMP_BUSLAUNCH_H

#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

/* Writes the bus configuration for address ("unix:path=...") to path;
 * returns path, or NULL. */
const char *buslaunch_config(const char *path, const char *address);

/* dbus-daemon with that configuration; its pid once sock_path exists, or -1. */
pid_t buslaunch_dbus_daemon(const char *config, const char *sock_path);

/* dbus-broker under its launcher with the policy of config, listening on
 * sock_path (address names it); the launcher's pid, or -1 with the reason
 * in why.  Needs root where the machine has no journal (see buslaunch.c). */
pid_t buslaunch_dbus_broker(const char *config, const char *sock_path, const char *address, char *why,
			    size_t why_len);

/* The same, the bus run by uid/gid (a session bus of that user's; the
 * namespace is made as root first). */
pid_t buslaunch_dbus_broker_as(const char *config, const char *sock_path, const char *address, uid_t uid, gid_t gid,
			       char *why, size_t why_len);

/* An ordinary sd-bus connection to the bus at address (Hello done), or NULL. */
sd_bus *buslaunch_connect(const char *address);

/* "--pin CPU" at the front of the arguments: this process and its children
 * are put on that CPU and the two arguments taken off.  The CPU, -1 without
 * the option, or -2 when it cannot be done (said on stderr). */
int buslaunch_pin_args(int *argc, char ***argv);

#endif
