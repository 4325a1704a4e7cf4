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

#include <sys/types.h>

#include "importance/importance.h"
#include "importance/protocol.h"

struct actor;
struct broker;
struct peer;

int diag_status(struct broker *b, struct peer *c, uint16_t type, uint32_t serial);
int diag_tasks(struct broker *b, struct peer *c, uint16_t type, uint32_t serial);
int diag_graph(struct broker *b, struct peer *c, uint16_t type, uint32_t serial);
/* WHY pid (> 0, checked by the caller): its tasks the viewer may see,
 * each with what boosts it. */
int diag_why(struct broker *b, struct peer *c, uint16_t type, uint32_t serial, pid_t pid);
/* The same explanation of one task, one line, for the boost log: the
 * donors behind it (at most a few, then "and N more"). */
void diag_why_line(struct broker *b, const imp_task *task, char *out, size_t size);

/* A boost or unboost of subject's task: to the monitors that may see it. */
void diag_boost_event(struct broker *b, const struct actor *subject, const struct impp_evt_policy *ev);

/* The log line of a boost or unboost the backend acted on: to the journal
 * with fields of their own (IMPORTANCE_EVENT, _PID, _UID, _SOURCE,
 * _DONORS, _BACKEND, _VALUE, _RESULT) when stderr is the journal's
 * (JOURNAL_STREAM names it), else as a line on stderr; a boost says who
 * is behind it (diag_why_line: a snapshot of the graph, so only at
 * --verbose or on failure). */
void diag_boost_log(struct broker *b, const struct actor *subject, const imp_task *task, bool boosted, int applied,
		    const char *backend, int value);

/* Whether viewer may see subject's state. */
bool diag_may_see(const struct broker *b, const struct peer *viewer, const struct actor *subject);

#endif
