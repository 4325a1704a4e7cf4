/*
 * Diagnostics: STATUS, TASKS, GRAPH and MONITOR, and the boost events
 * monitors receive.
 *
 * Who sees what: root (and the daemon's own uid) sees every task; any
 * other uid sees only the tasks of its own connections, in listings, in the
 * graph and in monitor events.  Replies are bounded: a listing or graph
 * larger than IMPP_MAX_TEXT is cut and says so, and is built in time
 * linear in what it shows; a uid other than root gets one listing per
 * listing-interval-ms.
 */
#ifndef IMPD_DIAG_H
#define IMPD_DIAG_H

#include <stdbool.h>
#include <stdint.h>

#include "importance/protocol.h"

struct actor;
struct broker;
struct peer;

int diag_status(struct broker *b, struct peer *c, uint16_t type, uint32_t serial);
int diag_tasks(struct broker *b, struct peer *c, uint16_t type, uint32_t serial);
int diag_graph(struct broker *b, struct peer *c, uint16_t type, uint32_t serial);

/* A boost or unboost of subject's task: to the monitors that may see it. */
void diag_boost_event(struct broker *b, const struct actor *subject, const struct impp_evt_policy *ev);

/* Whether viewer may see subject's state. */
bool diag_may_see(const struct broker *b, const struct peer *viewer, const struct actor *subject);

#endif
