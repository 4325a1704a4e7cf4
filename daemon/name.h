/*
 * Names: the bootstrap registry that maps a service name to a port, and
 * the policy of which uid may own which name.
 */
#ifndef IMPD_NAME_H
#define IMPD_NAME_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct broker;
struct port;

/* Whether uid may own name under cfg's name-owner rules. */
bool name_allowed(const struct broker_config *cfg, const char *name, uid_t uid);

/* Registers name for port (owned by uid): 0, -EEXIST (taken, or the port
 * has a name), -EACCES (the policy gives it to another uid), -EDQUOT,
 * -ENOMEM. */
int name_register(struct broker *b, struct port *p, const char *name);

/* The port registered under name, or NULL. */
struct port *name_lookup(struct broker *b, const char *name);

/* The port goes: its name is free again. */
void name_release(struct broker *b, struct port *p);

#endif
