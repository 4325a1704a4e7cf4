/*
 * The driver: one request frame in, its reply out.
 *
 * Every handler checks its request and returns 0 once it has replied (or
 * parked the peer until a message comes), or -errno having changed
 * nothing; driver_frame() turns an error into the reply.
 */
#ifndef IMPD_DRIVER_H
#define IMPD_DRIVER_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct peer;
struct port;

/* A frame from the peer's own process with the n_fds files it passed
 * (at most IMPP_MAX_FDS; the driver owns them). */
void driver_frame(struct broker *b, struct peer *c, const uint8_t *buf, size_t n, int *fds, size_t n_fds);

/* A frame that is not served: answered with status, counted as an error. */
void driver_refuse(struct broker *b, struct peer *c, const uint8_t *buf, size_t n, int status);

/* A frame that cannot even be answered in kind (bad header). */
void driver_protocol_error(struct broker *b, struct peer *c, uint32_t serial, int status);

/* A message was queued on p: a receive waiting on it completes. */
void driver_wake(struct broker *b, struct port *p);

/* A parked receive ends without a message. */
void driver_fail_parked(struct peer *c, int status);

/* The ASYNC receive waiting on p ends without a message: answered with
 * status, or not at all when status is 0 (its peer is going). */
void driver_fail_waiter(struct broker *b, struct port *p, int status);

#endif
