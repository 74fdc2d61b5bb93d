/*
 * Grace periods: readers on several threads use a published object while a
 * writer replaces and frees objects as fast as it can; a reader must never
 * see an object the writer has already retired.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dnsfilter/grace.h"
#include "unit.h"

struct object {
	_Atomic int retired; /* set by the writer before it waits and frees */
	int payload;
};

static _Atomic(struct object *) published;
static struct dnsf_grace *grace;
static _Atomic int stop;
static _Atomic long violations, reads;

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct dnsf_grace_section section;
		dnsf_grace_enter(grace, &section);
		struct object *object = atomic_load(&published);
		for (int i = 0; i < 50; i++) {
			/* retired while still in use would be a broken grace period */
			if (atomic_load(&object->retired))
				atomic_fetch_add(&violations, 1);
			if (object->payload != 42)
				atomic_fetch_add(&violations, 1);
		}
		dnsf_grace_leave(&section);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

START_TEST(test_no_reader_sees_a_freed_object)
{
	enum { READERS = 4, SWAPS = 3000 };
	pthread_t threads[READERS];
	struct object *first = calloc(1, sizeof(*first));
	first->payload = 42;
	grace = dnsf_grace_new();
	atomic_store(&published, first);
	for (int i = 0; i < READERS; i++)
		pthread_create(&threads[i], NULL, reader, NULL);
	/* swap until both enough swaps and enough reads happened (readers may
	 * start late on a busy machine), for at most 20 s */
	time_t deadline = time(NULL) + 20;
	for (int swap = 0; (swap < SWAPS || atomic_load(&reads) < 2000) && time(NULL) < deadline;
	     swap++) {
		struct object *next = calloc(1, sizeof(*next));
		next->payload = 42;
		struct object *old = atomic_exchange(&published, next);
		dnsf_grace_wait(grace);
		/* after the grace period nobody may still read old */
		atomic_store(&old->retired, 1);
		old->payload = -1;
		free(old);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(threads[i], NULL);
	ck_assert_int_eq(atomic_load(&violations), 0);
	ck_assert_int_gt(atomic_load(&reads), 1000);
	free(atomic_load(&published));
	dnsf_grace_free(grace);
}
END_TEST

static int wait_returned;
static void *waiter(void *arg)
{
	dnsf_grace_wait(arg);
	__atomic_store_n(&wait_returned, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

START_TEST(test_wait_blocks_while_a_section_is_open)
{
	struct dnsf_grace *g = dnsf_grace_new();
	struct dnsf_grace_section section;
	pthread_t thread;
	dnsf_grace_enter(g, &section);
	pthread_create(&thread, NULL, waiter, g);
	sleep_ms(200);
	ck_assert_int_eq(__atomic_load_n(&wait_returned, __ATOMIC_SEQ_CST), 0);
	dnsf_grace_leave(&section);
	pthread_join(thread, NULL);
	ck_assert_int_eq(__atomic_load_n(&wait_returned, __ATOMIC_SEQ_CST), 1);
	/* with nobody inside, a wait returns at once */
	dnsf_grace_wait(g);
	dnsf_grace_free(g);
}
END_TEST

/*
 * A grace object made where a freed one was (as after a reload): a thread
 * that had a slot in the old one takes one in the new one, so a wait on the
 * new one sees the thread's section.
 */
START_TEST(test_a_new_grace_object_at_a_freed_ones_address_gets_its_own_slot)
{
	struct dnsf_grace_section section;
	struct dnsf_grace *old = dnsf_grace_new();
	ck_assert_ptr_nonnull(old);
	dnsf_grace_enter(old, &section);
	dnsf_grace_leave(&section);
	void *old_address = old;
	dnsf_grace_free(old);
	/* the allocator usually hands the same block back at once (not under
	 * AddressSanitizer, which holds freed memory back: then this checks a
	 * new object at a new address) */
	struct dnsf_grace *g = dnsf_grace_new();
	ck_assert_ptr_nonnull(g);
	if ((void *)g != old_address)
		fprintf(stderr, "grace: the new object is not at the freed one's address\n");
	pthread_t thread;
	__atomic_store_n(&wait_returned, 0, __ATOMIC_SEQ_CST);
	dnsf_grace_enter(g, &section);
	pthread_create(&thread, NULL, waiter, g);
	sleep_ms(200);
	ck_assert_int_eq(__atomic_load_n(&wait_returned, __ATOMIC_SEQ_CST), 0);
	dnsf_grace_leave(&section);
	pthread_join(thread, NULL);
	ck_assert_int_eq(__atomic_load_n(&wait_returned, __ATOMIC_SEQ_CST), 1);
	dnsf_grace_free(g);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("grace");
	TCase *tc = tcase_create("grace");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_wait_blocks_while_a_section_is_open);
	tcase_add_test(tc, test_no_reader_sees_a_freed_object);
	tcase_add_test(tc, test_a_new_grace_object_at_a_freed_ones_address_gets_its_own_slot);
	suite_add_tcase(suite, tc);
	return run_suite(suite);
}
