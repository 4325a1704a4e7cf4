/*
 * Donor rules: whether a process is a donor, decided by the daemon from
 * what the kernel says about it, never from what a client says.
 */
#ifndef IMPD_DONOR_H
#define IMPD_DONOR_H

#include <stdbool.h>

#include "config.h"
#include "process.h"

/* Whether the process of pidfd (described by who, read from that pidfd)
 * matches a rule, now: its effective uid, the file it executes (compared
 * by device and inode with what each rule's path names now), its cgroup on
 * the unified hierarchy (the rule's path or below it, by component).  A
 * process that is gone, or in another user or pid namespace than the
 * daemon's, matches nothing. */
bool donor_match(const struct donor_rules *rules, int pidfd, const struct ident *who);

/* Whether cgroup path `path` is `rule` or below it. */
bool donor_cgroup_covers(const char *rule, const char *path);

#endif
