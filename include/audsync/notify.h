/* notify.h - the systemd notify protocol (READY, STOPPING, WATCHDOG) */
#ifndef AUDSYNC_NOTIFY_H
#define AUDSYNC_NOTIFY_H

/*
 * Sends state (e.g. "READY=1") as one datagram to the socket named by
 * NOTIFY_SOCKET (a path, or "@name" in the abstract namespace), as
 * sd_notify(3) does. Returns 0 when sent, 1 when NOTIFY_SOCKET is unset
 * (not under systemd: nothing to do), -1 when it could not be sent.
 */
int notify_send(const char *state);

/*
 * The watchdog interval systemd asked for (WATCHDOG_USEC, when
 * WATCHDOG_PID is unset or this process), in milliseconds; 0 without one.
 */
long notify_watchdog_ms(void);

/*
 * Sends "WATCHDOG=1" when half the watchdog interval has passed since the
 * last one; costs a clock read otherwise. Call it wherever the process
 * makes progress: a process that stops calling it is restarted.
 */
void notify_watchdog(void);

#endif
