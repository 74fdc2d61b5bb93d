/*
 * stall_stat.c - a fault for the integration tests, preloaded into
 * Unbound: stat() of a path, or rename() to a path, ending in
 * $DNSFILTER_STALL_SUFFIX blocks while the file $DNSFILTER_STALL_TRIGGER
 * exists (at most 120 s), as such a call on a dead network mount does.
 * test_faults.py uses it to show that a module thread stuck in the kernel
 * (the watcher reading the feed's version, the reporter renaming the
 * metrics into place) cannot hang Unbound's stop.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int stalled(const char *path)
{
	const char *suffix = getenv("DNSFILTER_STALL_SUFFIX");
	const char *trigger = getenv("DNSFILTER_STALL_TRIGGER");
	size_t length, suffix_length;

	if (!suffix || !trigger || !path)
		return 0;
	length = strlen(path);
	suffix_length = strlen(suffix);
	return length >= suffix_length && strcmp(path + length - suffix_length, suffix) == 0 &&
	       access(trigger, F_OK) == 0;
}

static void stall(const char *path)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };

	for (int i = 0; i < 1200 && stalled(path); i++)
		nanosleep(&pause, NULL);
}

__attribute__((visibility("default"))) int rename(const char *from, const char *to)
{
	static int (*real_rename)(const char *, const char *);

	if (!real_rename)
		real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	stall(to);
	return real_rename(from, to);
}

__attribute__((visibility("default"))) int stat(const char *path, struct stat *info)
{
	static int (*real_stat)(const char *, struct stat *);

	if (!real_stat)
		real_stat = (int (*)(const char *, struct stat *))dlsym(RTLD_NEXT, "stat");
	stall(path);
	return real_stat(path, info);
}
