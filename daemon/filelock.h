/*
 * File-lock boosts, as the reference means them: a donor that waits for
 * a file lock boosts the process holding it, while it waits.
 *
 * The waiter passes the file (an open descriptor) and the lock it wants;
 * the daemon asks the kernel who holds a conflicting lock (F_GETLK) and,
 * if that process is a connected receiver, gives its task one file-lock
 * assertion.  The assertion goes when the waiter says it is done, when it
 * disconnects, or when the kernel no longer shows that holder (checked
 * periodically).  Nobody boosts itself, and a non-donor boosts nobody.
 */
#ifndef IMPD_FILELOCK_H
#define IMPD_FILELOCK_H

#include <stdint.h>

#include "importance/protocol.h"

struct broker;
struct peer;

/* 0 with *id and *holder set, or -errno: -EPERM (c is not a donor),
 * -EBADF/-EINVAL (fd or lock), -EOPNOTSUPP (a file whose locks the kernel
 * does not answer by itself: FUSE, network filesystems), -ESRCH (no
 * conflicting lock held by a receiver), -EDQUOT. */
int filelock_wait(struct broker *b, struct peer *c, int fd, const struct impp_req_filelock *q,
		  uint64_t *id, int32_t *holder);

int filelock_done(struct broker *b, struct peer *c, uint64_t id);

/* The peer goes: as waiter, its waits end; as holder, they stop boosting it. */
void filelock_peer_gone(struct broker *b, struct peer *c);

#endif
