/*
 * systemd-logind as a foreground source (foreground.h): a donor whose
 * login session is inactive (another session is in front on its seat) or
 * locked (LockedHint) is not a live donor.
 *
 * On the system bus (`logind yes`), asynchronously throughout: the
 * sessions logind lists at start, and then its SessionNew/SessionRemoved
 * signals and the PropertiesChanged of every session object; each session
 * is read with GetAll (Id, Audit, Active, LockedHint) and told to the model
 * by its audit session id — logind's Audit property, or its Id, which
 * logind makes the audit session id when there is one.  When logind goes
 * away every session counts as active again (the static rules decide);
 * when it comes back its sessions are read anew.  At most
 * FOREGROUND_MAX_SESSIONS sessions are followed.
 */
#ifndef IMPD_LOGIND_H
#define IMPD_LOGIND_H

struct broker;

int logind_start(struct broker *b);
void logind_stop(struct broker *b);

#endif
