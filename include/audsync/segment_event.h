/* segment_event.h - track, page and screen messages to Mixpanel events */
#ifndef AUDSYNC_SEGMENT_EVENT_H
#define AUDSYNC_SEGMENT_EVENT_H

#include "audsync/segment_msg.h"

/*
 * Maps a track message that segment_map.c has read into m: its /import
 * event, and with use_people its revenue charge ($append) and its
 * increments ($add, "Last <event>"). SEGMENT_MAPPED with the calls in
 * m->out, else the reason in m->out->reason.
 */
segment_result segment_event_track(segment_msg *m);

/* As segment_event_track() for a page or screen call (noun "Page" or
 * "Screen"), named by the page settings; SEGMENT_SKIPPED when none of
 * them sends it. */
segment_result segment_event_page(segment_msg *m, const char *noun);

#endif
