/*
 * failing_alloc.h - a failing allocator for the unit tests: counts the
 * allocations of the code under test, makes the nth fail (or the nth and
 * every later one), and tracks what was allocated and not freed.
 *
 * Mechanism: the test program is linked with -Wl,--wrap=malloc,... (see
 * CMakeLists.txt, FAILING_ALLOC_WRAPS), so every call of an allocation
 * function from the core's objects (and the test's) goes through
 * failing_alloc.c. cJSON itself is a shared library whose own malloc calls
 * the wrap cannot see, but it allocates only through its hooks: during a
 * feed parse those are the core's JSON arena (module/core/json.c: mmap and
 * malloc, both wrapped); otherwise a test sets hooks that call the wrapped
 * malloc and free (test_alloc_faults.c). libc's own allocations (fopen's
 * buffer) and libpsl's are not counted one by one, but libpsl's loader
 * (psl_latest) counts as one allocation and can fail. Works with ASan (the wrappers call
 * the real, intercepted functions) and without.
 *
 * Only the thread that armed the allocator is counted, so a test's own
 * helpers, check's and other threads are not disturbed.
 */
#ifndef DNSFILTER_TEST_FAILING_ALLOC_H
#define DNSFILTER_TEST_FAILING_ALLOC_H

#include <stddef.h>

/** Which allocations fail once armed. */
enum fault_mode {
	/** only the nth: one failure, then memory is back */
	FAULT_ONCE = 0,
	/** the nth and every one after it: memory is gone for good */
	FAULT_FROM,
};

/**
 * Count and track this thread's allocations from now on, failing the nth
 * (counted from 1; 0 fails none) as mode says.
 */
void fault_arm(unsigned long nth, enum fault_mode mode);

/**
 * Count and track as fault_arm does, but fail every call of one wrapped
 * function only (e.g. "psl_latest"), whatever its number.
 */
void fault_arm_function(const char *function);

/** Stop counting and tracking allocations (frees still untrack), e.g. while
 * checking a result with code that allocates. */
void fault_pause(void);

/** Track allocations again after fault_pause (none fails). */
void fault_resume(void);

/**
 * Stop counting and tracking.
 * @return the number of allocations counted since fault_arm.
 */
unsigned long fault_disarm(void);

/** 1 when a failure was injected since fault_arm. */
int fault_injected(void);

/**
 * 1 when every failure injected since fault_arm was a realloc that would
 * have made a block smaller: code may rightly go on with the bigger block
 * (giving back the unused tail of an array is an optimisation).
 */
int fault_injected_shrinks_only(void);

/**
 * Tracked allocations not freed since fault_arm, and a description of the
 * first few ("malloc 24 bytes, ...") in out (out_size bytes).
 */
size_t fault_live(char *out, size_t out_size);

#endif
