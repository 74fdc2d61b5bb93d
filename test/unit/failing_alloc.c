/*
 * failing_alloc.c - the wrappers behind failing_alloc.h. Each __wrap_X is
 * what the core's calls of X reach (-Wl,--wrap=X); __real_X is the C
 * library's (or the sanitizer's) X.
 */
#include "failing_alloc.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *memory, size_t size);
void *__real_reallocarray(void *memory, size_t count, size_t size);
char *__real_strdup(const char *text);
char *__real_strndup(const char *text, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
int __real_posix_memalign(void **memory, size_t alignment, size_t size);
int __real_vasprintf(char **out, const char *format, va_list args);
void *__real_mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset);
int __real_munmap(void *address, size_t length);
void __real_free(void *memory);
struct psl_ctx_st *__real_psl_latest(const char *file);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *memory, size_t size);
void *__wrap_reallocarray(void *memory, size_t count, size_t size);
char *__wrap_strdup(const char *text);
char *__wrap_strndup(const char *text, size_t size);
void *__wrap_aligned_alloc(size_t alignment, size_t size);
int __wrap_posix_memalign(void **memory, size_t alignment, size_t size);
int __wrap_vasprintf(char **out, const char *format, va_list args);
int __wrap_asprintf(char **out, const char *format, ...);
void *__wrap_mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset);
int __wrap_munmap(void *address, size_t length);
void __wrap_free(void *memory);
struct psl_ctx_st *__wrap_psl_latest(const char *file);

/** Most allocations tracked at once; more fail the test (fault_live). */
#define TRACKED_MAX 16384

struct tracked {
	void *memory;
	size_t size;
	const char *function;
};

/* All state belongs to the thread that armed; others see counting == 0
 * and an empty table. */
static __thread int counting, tracking;
static __thread unsigned long count, fail_at;
static __thread enum fault_mode mode;
static __thread int injected, injected_other;
static __thread const char *fail_function;

static __thread struct tracked *table;
static __thread size_t table_count;
static __thread int table_overflow;

void fault_arm(unsigned long nth, enum fault_mode how)
{
	if (!table)
		table = __real_calloc(TRACKED_MAX, sizeof(*table));
	table_count = 0;
	table_overflow = 0;
	count = 0;
	fail_at = nth;
	mode = how;
	injected = injected_other = 0;
	fail_function = NULL;
	counting = tracking = 1;
}

void fault_arm_function(const char *function)
{
	fault_arm(0, FAULT_ONCE);
	fail_function = function;
}

void fault_pause(void)
{
	counting = tracking = 0;
}

void fault_resume(void)
{
	tracking = 1;
}

unsigned long fault_disarm(void)
{
	counting = tracking = 0;
	return count;
}

int fault_injected(void)
{
	return injected;
}

int fault_injected_shrinks_only(void)
{
	return injected && !injected_other;
}

size_t fault_live(char *out, size_t out_size)
{
	size_t used = 0;

	if (out_size)
		out[0] = 0;
	if (table_overflow) {
		snprintf(out, out_size, "more than %d allocations live: not tracked", TRACKED_MAX);
		return table_count + 1;
	}
	for (size_t i = 0; i < table_count && i < 8 && used + 1 < out_size; i++) {
		int n = snprintf(out + used, out_size - used, "%s%s %zu bytes", i ? ", " : "",
				 table[i].function, table[i].size);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return table_count;
}

/* Is this allocation (by function) to fail? Counts it when counting;
 * shrink: it is a realloc to a smaller size. */
static int should_fail_allocation(const char *function, int shrink)
{
	if (!counting)
		return 0;
	count++;
	if (fail_function
		? strcmp(function, fail_function) != 0
		: (fail_at == 0 || count < fail_at || (mode == FAULT_ONCE && count > fail_at)))
		return 0;
	injected = 1;
	injected_other |= !shrink;
	errno = ENOMEM;
	return 1;
}

static int should_fail_in(const char *function)
{
	return should_fail_allocation(function, 0);
}

static void track(void *memory, size_t size, const char *function)
{
	if (!tracking || !memory || !table)
		return;
	if (table_count == TRACKED_MAX) {
		table_overflow = 1;
		return;
	}
	table[table_count++] = (struct tracked){ memory, size, function };
}

static void untrack(void *memory)
{
	if (!memory || !table)
		return;
	for (size_t i = table_count; i-- > 0;)
		if (table[i].memory == memory) {
			table[i] = table[--table_count];
			return;
		}
}

void *__wrap_malloc(size_t size)
{
	if (should_fail_in("malloc"))
		return NULL;
	void *memory = __real_malloc(size);
	track(memory, size, "malloc");
	return memory;
}

void *__wrap_calloc(size_t items, size_t size)
{
	if (should_fail_in("calloc"))
		return NULL;
	void *memory = __real_calloc(items, size);
	track(memory, items * size, "calloc");
	return memory;
}

/* The size of a tracked block, else what the allocator says it holds. */
static size_t block_size(void *memory)
{
	for (size_t i = 0; memory && table && i < table_count; i++)
		if (table[i].memory == memory)
			return table[i].size;
	return memory ? malloc_usable_size(memory) : 0;
}

void *__wrap_realloc(void *memory, size_t size)
{
	if (should_fail_allocation("realloc", memory && size <= block_size(memory)))
		return NULL; /* the old block stays, as realloc leaves it */
	void *moved = __real_realloc(memory, size);
	if (moved || size == 0)
		untrack(memory);
	track(moved, size, "realloc");
	return moved;
}

void *__wrap_reallocarray(void *memory, size_t items, size_t size)
{
	if (should_fail_in("reallocarray"))
		return NULL;
	void *moved = __real_reallocarray(memory, items, size);
	if (moved)
		untrack(memory);
	track(moved, items * size, "reallocarray");
	return moved;
}

char *__wrap_strdup(const char *text)
{
	if (should_fail_in("strdup"))
		return NULL;
	char *copy = __real_strdup(text);
	track(copy, strlen(text) + 1, "strdup");
	return copy;
}

char *__wrap_strndup(const char *text, size_t size)
{
	if (should_fail_in("strndup"))
		return NULL;
	char *copy = __real_strndup(text, size);
	track(copy, copy ? strlen(copy) + 1 : 0, "strndup");
	return copy;
}

void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
	if (should_fail_in("aligned_alloc"))
		return NULL;
	void *memory = __real_aligned_alloc(alignment, size);
	track(memory, size, "aligned_alloc");
	return memory;
}

int __wrap_posix_memalign(void **memory, size_t alignment, size_t size)
{
	if (should_fail_in("posix_memalign"))
		return ENOMEM;
	int error = __real_posix_memalign(memory, alignment, size);
	if (!error)
		track(*memory, size, "posix_memalign");
	return error;
}

int __wrap_vasprintf(char **out, const char *format, va_list args)
{
	if (should_fail_in("vasprintf"))
		return -1; /* *out is undefined after a failure, as glibc says */
	int length = __real_vasprintf(out, format, args);
	if (length >= 0)
		track(*out, (size_t)length + 1, "vasprintf");
	return length;
}

int __wrap_asprintf(char **out, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int length = __wrap_vasprintf(out, format, args);
	va_end(args);
	return length;
}

/* Anonymous mappings are allocations (the JSON arena's chunks); a mapped
 * file is not. */
void *__wrap_mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset)
{
	int anonymous = (flags & MAP_ANONYMOUS) != 0;
	if (anonymous && should_fail_in("mmap"))
		return MAP_FAILED;
	void *memory = __real_mmap(address, length, protection, flags, fd, offset);
	if (anonymous && memory != MAP_FAILED)
		track(memory, length, "mmap");
	return memory;
}

int __wrap_munmap(void *address, size_t length)
{
	untrack(address);
	return __real_munmap(address, length);
}

void __wrap_free(void *memory)
{
	untrack(memory);
	__real_free(memory);
}

/* libpsl loads the Public Suffix List with allocations of its own, which
 * the wrap cannot see: its loader is counted as one allocation, and fails
 * as libpsl does when memory runs out (NULL). */
struct psl_ctx_st *__wrap_psl_latest(const char *file)
{
	if (should_fail_in("psl_latest"))
		return NULL;
	return __real_psl_latest(file);
}
