/*
 * x11-window TITLE PID — a real X client window for the foreground tests:
 * a top-level window named TITLE that claims _NET_WM_PID = PID (any
 * number: a client may lie, which is what the tests need), accepts focus,
 * and stays until killed or its X connection ends.  Prints "mapped" once
 * the server has the window.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xcb/xcb.h>

static xcb_atom_t atom(xcb_connection_t *c, const char *name)
{
	xcb_intern_atom_reply_t *r = xcb_intern_atom_reply(c, xcb_intern_atom(c, 0, (uint16_t)strlen(name), name), NULL);
	xcb_atom_t a = r ? r->atom : XCB_ATOM_NONE;

	free(r);
	return a;
}

int main(int argc, char **argv)
{
	uint32_t values[] = { 0xffffff, XCB_EVENT_MASK_STRUCTURE_NOTIFY | XCB_EVENT_MASK_FOCUS_CHANGE };
	uint32_t hints[9] = { 1 /* InputHint */, 1 /* input: yes */ };
	xcb_connection_t *c;
	xcb_screen_t *scr;
	xcb_window_t w;
	xcb_generic_event_t *ev;
	uint32_t pid;
	int mapped = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: x11-window TITLE PID\n");
		return 2;
	}
	pid = (uint32_t)strtoul(argv[2], NULL, 10);
	c = xcb_connect(NULL, NULL);
	if (xcb_connection_has_error(c)) {
		fprintf(stderr, "x11-window: cannot connect to the X server\n");
		return 1;
	}
	scr = xcb_setup_roots_iterator(xcb_get_setup(c)).data;
	w = xcb_generate_id(c);
	xcb_create_window(c, XCB_COPY_FROM_PARENT, w, scr->root, 0, 0, 200, 100, 0, XCB_WINDOW_CLASS_INPUT_OUTPUT,
			  scr->root_visual, XCB_CW_BACK_PIXEL | XCB_CW_EVENT_MASK, values);
	xcb_change_property(c, XCB_PROP_MODE_REPLACE, w, XCB_ATOM_WM_NAME, XCB_ATOM_STRING, 8,
			    (uint32_t)strlen(argv[1]), argv[1]);
	xcb_change_property(c, XCB_PROP_MODE_REPLACE, w, atom(c, "_NET_WM_NAME"), atom(c, "UTF8_STRING"), 8,
			    (uint32_t)strlen(argv[1]), argv[1]);
	xcb_change_property(c, XCB_PROP_MODE_REPLACE, w, atom(c, "_NET_WM_PID"), XCB_ATOM_CARDINAL, 32, 1, &pid);
	xcb_change_property(c, XCB_PROP_MODE_REPLACE, w, XCB_ATOM_WM_HINTS, XCB_ATOM_WM_HINTS, 32, 9, hints);
	xcb_map_window(c, w);
	xcb_flush(c);
	/* A window manager still starting may miss the first MapRequest: ask
	 * again each second until the window is mapped. */
	for (;;) {
		struct pollfd p = { .fd = xcb_get_file_descriptor(c), .events = POLLIN };

		while ((ev = xcb_poll_for_event(c))) {
			if ((ev->response_type & 0x7f) == XCB_MAP_NOTIFY && !mapped) {
				mapped = 1;
				printf("mapped\n");
				fflush(stdout);
			}
			free(ev);
		}
		if (xcb_connection_has_error(c))
			break;
		if (poll(&p, 1, mapped ? -1 : 1000) == 0) {
			xcb_map_window(c, w);
			xcb_flush(c);
		}
	}
	xcb_disconnect(c);
	return 0;
}
