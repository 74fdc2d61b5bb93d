/*
 * hostcheck.c - the running Unbound's version string and configure line,
 * found in its executable, for the module's check at init (hostcheck.h).
 */
#include "dnsfilter/hostcheck.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Map a whole file read-only; NULL when it cannot be read. */
static void *map_file(const char *path, size_t *size)
{
	struct stat info;
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &info) != 0 || info.st_size <= 0) {
		close(fd);
		return NULL;
	}
	*size = (size_t)info.st_size;
	map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	return map == MAP_FAILED ? NULL : map;
}

int dnsf_file_contains(const char *path, const void *needle, size_t length)
{
	size_t size;
	void *map = map_file(path, &size);
	int found;

	if (!map)
		return -1;
	found = memmem(map, size, needle, length) != NULL;
	munmap(map, size);
	return found;
}

int dnsf_file_configure_line(const char *path, char **line)
{
	static const char marker[] = "--with-dynlibmodule";
	const char *bytes, *hit, *start, *end;
	size_t size;
	void *map = map_file(path, &size);

	*line = NULL;
	if (!map)
		return -1;
	bytes = map;
	hit = memmem(bytes, size, marker, sizeof(marker) - 1);
	if (!hit) {
		munmap(map, size);
		return 0;
	}
	start = hit;
	while (start > bytes && start[-1] != 0)
		start--;
	end = memchr(hit, 0, size - (size_t)(hit - bytes));
	if (!end)
		end = bytes + size;
	*line = strndup(start, (size_t)(end - start));
	munmap(map, size);
	return *line ? 1 : -1;
}

static const struct {
	const char *name; /* after --enable- / --with- */
	int with; /* --with-X rather than --enable-X */
} features[DNSF_FEATURE_COUNT] = {
	{ "subnet", 0 }, { "cachedb", 0 }, { "dnscrypt", 0 }, { "dnstap", 0 }, { "libngtcp2", 1 },
};

const char *dnsf_configure_feature_option(unsigned feature)
{
	static const char *const options[DNSF_FEATURE_COUNT] = {
		"--enable-subnet", "--enable-cachedb", "--enable-dnscrypt",
		"--enable-dnstap", "--with-libngtcp2",
	};
	for (int i = 0; i < DNSF_FEATURE_COUNT; i++)
		if (feature == 1u << i)
			return options[i];
	return "?";
}

/* Does word (an argument, quotes stripped) say something of feature i?
 * Sets *on. */
static int says(const char *word, size_t length, int i, int *on)
{
	const char *yes = features[i].with ? "--with-" : "--enable-";
	const char *no = features[i].with ? "--without-" : "--disable-";
	size_t name = strlen(features[i].name), prefix;

	if (length > (prefix = strlen(no)) && strncmp(word, no, prefix) == 0 &&
	    length - prefix == name && strncmp(word + prefix, features[i].name, name) == 0) {
		*on = 0;
		return 1;
	}
	prefix = strlen(yes);
	if (length < prefix + name || strncmp(word, yes, prefix) != 0 ||
	    strncmp(word + prefix, features[i].name, name) != 0)
		return 0;
	if (length == prefix + name) {
		*on = 1;
		return 1;
	}
	if (word[prefix + name] != '=')
		return 0;
	/* --enable-X=no turns it off; any other value (yes, a path) on */
	*on = !(length == prefix + name + 3 && strncmp(word + prefix + name, "=no", 3) == 0);
	return 1;
}

unsigned dnsf_configure_features(const char *line)
{
	unsigned mask = 0;

	while (line && *line) {
		size_t length;
		line += strspn(line, " \t'\"");
		length = strcspn(line, " \t'\"");
		for (int i = 0; i < DNSF_FEATURE_COUNT; i++) {
			int on;
			if (says(line, length, i, &on))
				mask = on ? mask | (1u << i) : mask & ~(1u << i);
		}
		line += length;
	}
	return mask;
}
