/*
 * Users: what each uid holds, and everyone together, against the limits.
 *
 * Every connection is charged to the uid the kernel gave for it.  A charge
 * succeeds only within both the uid's limit and the global one, so one
 * user cannot take what the daemon has for all (connections, ports, names,
 * messages in flight, their bytes and the files they carry, and the
 * bytes of replies and events queued for connections that do not read).
 */
#ifndef IMPD_USER_H
#define IMPD_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker;

enum usage_kind { USAGE_CONNECTIONS, USAGE_PORTS, USAGE_NAMES, USAGE_INFLIGHT, USAGE_BYTES, USAGE_FDS,
		  USAGE_OUT_BYTES, USAGE_BUS_CONNECTIONS, USAGE_KINDS_ };

struct usage {
	size_t n[USAGE_KINDS_];
};

struct user {
	uid_t uid; /* first: the key of broker.users */
	unsigned refs;
	struct usage usage;
	uint64_t listing_after; /* CLOCK_MONOTONIC usec: its next TASKS or GRAPH */
	/* fairness between uids (peer.c): time its requests took in a window */
	uint64_t window_start, spent;
	bool demoted;
};

/* The uid's record, made on first use; one reference for the caller. */
int user_get(struct broker *b, uid_t uid, struct user **out);
void user_put(struct broker *b, struct user *u);

/* Takes amount of kind for u: 0, or -EUSERS for connections and -EDQUOT
 * for the rest when u's limit or the global one would be passed.  u NULL:
 * for no uid yet, within the global limit only (a bus connection before
 * its root-owned bus says whose it is; bus.h). */
int user_charge(struct broker *b, struct user *u, enum usage_kind kind, size_t amount);
void user_uncharge(struct broker *b, struct user *u, enum usage_kind kind, size_t amount);

#endif
