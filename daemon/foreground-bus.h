/*
 * The foreground on a D-Bus bus (foreground.h): importanced owns
 * org.importance.Foreground1 and serves, at /org/importance/Foreground,
 * interface org.importance.Foreground1:
 *   SetForegroundProcess(u pid)   pid is in front for its uid (0: nothing
 *                                 of the caller's uid is)
 *   SetForegroundCgroup(s path)   every process of the caller's uid in the
 *                                 cgroup path (unified hierarchy) or below
 *   Forget()                      stop speaking for the caller's uid
 * The caller is who the bus says sent the call (its UnixUserID and
 * ProcessID, asked of the bus asynchronously), checked against a pidfd on
 * that pid; it may speak about its own uid's processes only, unless root
 * or the daemon's uid.  Nothing waits: a call is answered when the bus has
 * answered about its sender.
 */
#ifndef IMPD_FOREGROUND_BUS_H
#define IMPD_FOREGROUND_BUS_H

struct broker;

#define FOREGROUND_BUS_NAME "org.importance.Foreground1"
#define FOREGROUND_BUS_PATH "/org/importance/Foreground"

/* Connects to b->cfg.foreground_bus ("system" or an address; "" none). */
int foreground_bus_start(struct broker *b);
void foreground_bus_stop(struct broker *b);

#endif
