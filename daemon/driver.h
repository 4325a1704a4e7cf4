/*
 * The driver: one request frame in, its reply out.
 *
 * Every handler checks its request and returns 0 once it has replied (or
 * left a receive waiting: receive.h), or -errno having changed
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

#endif
