/*
 * The X11 foreground source: which X client window is active, as the
 * window manager says on the root window (EWMH _NET_ACTIVE_WINDOW), and
 * the pid that window claims (_NET_WM_PID).  Works the same on XWayland
 * for X11 clients (a native Wayland window is not seen: a compositor says
 * what is in front over org.importance.Foreground1 instead).
 *
 * A window's pid is what its client wrote: untrusted.  The source only
 * reports it; the daemon believes a FOREGROUND only about the caller's own
 * uid's processes (docs/foreground.md).
 *
 * Nothing here waits on the X server in the caller's loop: the connection
 * (xcb_connect, the server's setup, the two atoms) is made by a thread of
 * its own, which hands it to the loop when it is up; from then on the
 * source is driven by PropertyNotify on the root window, never by polling,
 * and every request is answered asynchronously in the sd-event loop.  A
 * server that accepts and never answers holds only that thread.
 *
 * Ownership: x11_source_new returns a source that holds its own reference
 * to the event loop; x11_source_free releases it (NULL allowed), also
 * while it is still connecting (the thread then ends on its own).  The
 * source must not be freed from within its callback.
 */
#ifndef IMP_AGENT_X11_H
#define IMP_AGENT_X11_H

#include <sys/types.h>
#include <systemd/sd-event.h>

struct x11_source;

/* The active window changed: pid is what it claims, 0 when no window is
 * active or it claims none; -1 when the connection could not be made or
 * is lost (then the source reports nothing more: free it and make a new
 * one to try again). */
typedef void x11_active_fn(pid_t pid, void *ud);

/* Connects to display (NULL: $DISPLAY), watches the root window, and
 * reports the active window's pid once connected and at every change (the
 * same pid twice in a row is reported once).  A window manager that
 * starts later, or none, is fine: nothing is reported until
 * _NET_ACTIVE_WINDOW is set.  Returns at once: 0, or -errno (-ENXIO: no
 * display named and no $DISPLAY). */
int x11_source_new(sd_event *e, const char *display, x11_active_fn *on_active, void *ud, struct x11_source **out);
void x11_source_free(struct x11_source *s);

#endif
