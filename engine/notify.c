/* notify.c - the systemd notify protocol (READY, STOPPING, WATCHDOG) */
#include "audsync/notify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len;
	ssize_t sent;
	int fd;

	if (!path || !*path)
		return 1;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@') /* the abstract namespace starts with a NUL */
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sent = sendto(
		fd, state, strlen(state), MSG_NOSIGNAL,
		(const struct sockaddr *)&sa,
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
	return sent == (ssize_t)strlen(state) ? 0 : -1;
}

long notify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	char *end;
	long long us;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	us = strtoll(usec, &end, 10);
	if (*end || us <= 0)
		return 0;
	return us < 1000 ? 1 : (long)(us / 1000);
}

void notify_watchdog(void)
{
	static long long last_ms = -1;
	long interval = notify_watchdog_ms();
	struct timespec ts;
	long long now;

	if (interval <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (last_ms >= 0 && now - last_ms < interval / 2)
		return;
	if (notify_send("WATCHDOG=1") == 0)
		last_ms = now;
}
