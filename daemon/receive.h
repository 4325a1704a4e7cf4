/*
 * Blocking receives: a receive that finds its port empty waits for a
 * message, up to its timeout.
 *
 * A receive waits either with its connection parked (peer.park: nothing
 * more is read from the peer until it is answered) or, when it is ASYNC,
 * on its port alone (port.waiter) while the peer's other requests are
 * served; the two are answered the same way (struct park).  A message
 * queued on a port (receive_queued) completes the receive waiting on it;
 * while a BATCH sends (receive_defer .. receive_flush) the wakes wait
 * until its sends are all queued, so that a receiver parked on a port
 * gets the batch's messages together rather than the first alone.
 *
 * Every function here answers the receive it ends (peer_send); those that
 * return -errno have answered nothing and changed nothing, for the
 * driver's one dispatcher to reply.
 */
#ifndef IMPD_RECEIVE_H
#define IMPD_RECEIVE_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct peer;
struct port;

/* The receive of RECEIVE or SEND_RECEIVE (type, serial) on c's own port:
 * answered now with its first message, or waiting up to timeout_ms (< 0:
 * for ever; 0: not at all, -EAGAIN).  0 when answered or waiting; -EINVAL
 * (flags), -ENOENT (not c's port), -EAGAIN, -EBUSY (a receive waits on it
 * already), -EDQUOT (voucher handles), -ENOMEM. */
int receive_start(struct broker *b, struct peer *c, uint16_t type, uint32_t serial, uint64_t port,
		  int32_t timeout_ms, uint32_t flags);

/* BATCH's receive (after its releases and sends): the reply is the
 * statuses so far (statuses, len bytes, an impp_reply_batch first; ours
 * from here), then up to max messages of port, at once or when they come;
 * port 0 receives nothing.  Always answered, its receive status saying
 * what went wrong. */
void receive_batch(struct broker *b, struct peer *c, uint32_t serial, uint8_t *statuses, size_t len,
		   uint64_t port, uint32_t max, uint32_t flags, int32_t timeout_ms);

/* A message was queued on p: the receive waiting on it completes (now,
 * or at receive_flush while deferring). */
void receive_queued(struct broker *b, struct port *p);

/* Wakes wait from here until receive_flush. */
void receive_defer(struct broker *b);
void receive_flush(struct broker *b);

/* c's parked receive ends without a message, answered with status. */
void receive_fail_parked(struct peer *c, int status);

/* The ASYNC receive waiting on p ends without a message: answered with
 * status, or not at all when status is 0 (its peer is going). */
void receive_fail_waiter(struct broker *b, struct port *p, int status);

#endif
