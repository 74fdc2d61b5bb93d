/*
 * counters.c - the reporter's per-thread slots: counters and event rings
 * (see report.h for the threads' contract, report_internal.h for the other
 * files of the reporter).
 *
 * Resolver side: a thread's slot holds its counters and the producer end of
 * its event ring on one cache line, and the consumer end (the ring's tail,
 * written by the writer) on the next. A counter is bumped with a relaxed
 * load and store, as only its thread writes it; an event is copied into the
 * ring and published with a release store of the head. The producer keeps
 * its last view of the tail and reads the writer's line only when the ring
 * looks full. The one system call on this side is a non-blocking one-byte
 * write to wake the writer when a ring passes half full.
 *
 * Writer side: report_slots_drain takes each ring up to the head it sees
 * and gives the producer room as it goes; report_slots_sum reads the
 * counters.
 *
 * A thread finds its slot through a thread-local pointer tagged with the
 * generation of the reporter it belongs to: a reporter made later (after a
 * reload) has a new generation, even at the same address, so the thread
 * takes a new slot there.
 */
#include "report_internal.h"
#include "dnsfilter/tls.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((DNSF_REPORT_RING & (DNSF_REPORT_RING - 1)) == 0,
	       "DNSF_REPORT_RING must be a power of two");

/** Generations of reporters; 0 is no reporter. */
static _Atomic uint64_t next_generation = 1;
/* This thread's slot and the generation of the reporter it belongs to. */
static DNSF_THREAD_LOCAL uint64_t thread_generation;
static DNSF_THREAD_LOCAL struct dnsf_counters *thread_slot;

/* ---- setting up ---- */

static void init_slot(struct dnsf_reporter *reporter, struct dnsf_counters *slot, int shared)
{
	atomic_init(&slot->queries, 0);
	atomic_init(&slot->optout, 0);
	atomic_init(&slot->blocked, 0);
	atomic_init(&slot->monitored, 0);
	atomic_init(&slot->dropped, 0);
	atomic_init(&slot->head, 0);
	atomic_init(&slot->tail, 0);
	atomic_init(&slot->ring, NULL);
	slot->tail_seen = 0;
	slot->reporter = reporter;
	slot->shared = shared;
}

static struct dnsf_event *new_ring(void)
{
	return malloc(DNSF_REPORT_RING * sizeof(struct dnsf_event));
}

int report_slots_setup(struct dnsf_reporter *reporter)
{
	reporter->generation = atomic_fetch_add(&next_generation, 1);
	atomic_init(&reporter->feed_serial, 0);
	atomic_init(&reporter->feed_failures, 0);
	atomic_init(&reporter->stale_since[DNSF_STALE_FEED], 0);
	atomic_init(&reporter->stale_since[DNSF_STALE_OPTOUT], 0);
	atomic_init(&reporter->used, 0);
	pthread_mutex_init(&reporter->overflow_lock, NULL);
	for (size_t i = 0; i < DNSF_REPORT_SLOTS; i++)
		init_slot(reporter, &reporter->slots[i], 0);
	init_slot(reporter, &reporter->overflow, 1);
	struct dnsf_event *ring = new_ring();
	atomic_store(&reporter->overflow.ring, ring);
	return ring != NULL;
}

void report_slots_teardown(struct dnsf_reporter *reporter)
{
	for (size_t i = 0; i < DNSF_REPORT_SLOTS; i++)
		free(atomic_load(&reporter->slots[i].ring));
	free(atomic_load(&reporter->overflow.ring));
	pthread_mutex_destroy(&reporter->overflow_lock);
}

/* ---- resolver threads ---- */

struct dnsf_counters *dnsf_reporter_thread(struct dnsf_reporter *reporter)
{
	if (!reporter)
		return NULL;
	if (thread_generation == reporter->generation)
		return thread_slot;
	struct dnsf_counters *slot = &reporter->overflow;
	uint32_t index = atomic_fetch_add(&reporter->used, 1);
	if (index < DNSF_REPORT_SLOTS) {
		slot = &reporter->slots[index];
		/* no ring (out of memory): the thread's events are dropped, counted */
		atomic_store_explicit(&slot->ring, new_ring(), memory_order_release);
	}
	thread_generation = reporter->generation;
	thread_slot = slot;
	return slot;
}

/* Add one to a counter of the slot. */
static inline void bump(const struct dnsf_counters *slot, _Atomic uint64_t *counter)
{
	if (slot->shared)
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	else /* only this thread writes it */
		atomic_store_explicit(counter,
				      atomic_load_explicit(counter, memory_order_relaxed) + 1,
				      memory_order_relaxed);
}

void dnsf_count_query(struct dnsf_counters *counters)
{
	if (counters)
		bump(counters, &counters->queries);
}

void dnsf_count_optout(struct dnsf_counters *counters)
{
	if (counters)
		bump(counters, &counters->optout);
}

/* Put the event into the slot's ring. @return 0 when full. */
static int ring_push(struct dnsf_counters *slot, const struct dnsf_event *event)
{
	struct dnsf_event *ring = atomic_load_explicit(&slot->ring, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&slot->head, memory_order_relaxed);
	if (!ring)
		return 0;
	if (head - slot->tail_seen >= DNSF_REPORT_RING) {
		slot->tail_seen = atomic_load_explicit(&slot->tail, memory_order_acquire);
		if (head - slot->tail_seen >= DNSF_REPORT_RING)
			return 0;
	}
	ring[head & (DNSF_REPORT_RING - 1)] = *event;
	atomic_store_explicit(&slot->head, head + 1, memory_order_release);
	if (head + 1 - slot->tail_seen == DNSF_REPORT_RING / 2)
		report_wake_writer(slot->reporter);
	return 1;
}

void dnsf_report_match(struct dnsf_counters *counters, const struct dnsf_event *event)
{
	int queued = 0;
	if (!counters)
		return;
	bump(counters, event->monitor ? &counters->monitored : &counters->blocked);
	if (!counters->shared) {
		queued = ring_push(counters, event);
	} else if (pthread_mutex_trylock(&counters->reporter->overflow_lock) == 0) {
		queued = ring_push(counters, event);
		pthread_mutex_unlock(&counters->reporter->overflow_lock);
	}
	if (!queued)
		bump(counters, &counters->dropped);
}

/* ---- any thread ---- */

void dnsf_reporter_set_feed(struct dnsf_reporter *reporter, uint64_t serial)
{
	if (reporter)
		atomic_store_explicit(&reporter->feed_serial, serial, memory_order_relaxed);
}

void dnsf_reporter_set_stale(struct dnsf_reporter *reporter, enum dnsf_stale_file file,
			     int64_t since)
{
	if (reporter && (file == DNSF_STALE_FEED || file == DNSF_STALE_OPTOUT))
		atomic_store_explicit(&reporter->stale_since[file], since, memory_order_relaxed);
}

void dnsf_reporter_set_mode(struct dnsf_reporter *reporter, enum dnsf_mode mode)
{
	/* the writer ends the interval at once: one counter line, one mode */
	if (reporter && atomic_exchange(&reporter->mode, (int)mode) != (int)mode)
		report_wake_writer(reporter);
}

void report_state_read(struct dnsf_reporter *reporter, struct report_state *state)
{
	state->serial = atomic_load_explicit(&reporter->feed_serial, memory_order_relaxed);
	for (int i = 0; i < 2; i++)
		state->stale_since[i] =
		    atomic_load_explicit(&reporter->stale_since[i], memory_order_relaxed);
	state->mode = (enum dnsf_mode)atomic_load(&reporter->mode);
}

void dnsf_reporter_count_feed_failure(struct dnsf_reporter *reporter)
{
	if (reporter)
		atomic_fetch_add_explicit(&reporter->feed_failures, 1, memory_order_relaxed);
}

/* ---- the writer ---- */

/* Slots handed out, at most DNSF_REPORT_SLOTS (the overflow slot aside). */
static uint32_t slots_used(struct dnsf_reporter *reporter)
{
	uint32_t used = atomic_load_explicit(&reporter->used, memory_order_acquire);
	return used > DNSF_REPORT_SLOTS ? DNSF_REPORT_SLOTS : used;
}

static void sum_counter(uint64_t *sum, _Atomic uint64_t *counter)
{
	*sum += atomic_load_explicit(counter, memory_order_relaxed);
}

void report_slots_sum(struct dnsf_reporter *reporter, struct totals *totals)
{
	uint32_t used = slots_used(reporter);
	memset(totals, 0, sizeof(*totals));
	for (uint32_t i = 0; i <= used; i++) {
		struct dnsf_counters *slot = i < used ? &reporter->slots[i] : &reporter->overflow;
		sum_counter(&totals->queries, &slot->queries);
		sum_counter(&totals->optout, &slot->optout);
		sum_counter(&totals->blocked, &slot->blocked);
		sum_counter(&totals->monitored, &slot->monitored);
		sum_counter(&totals->dropped, &slot->dropped);
	}
	totals->feed_failures =
	    atomic_load_explicit(&reporter->feed_failures, memory_order_relaxed);
}

/* Take every event the slot's producer has published so far. */
static void drain_slot(struct dnsf_counters *slot,
		       void (*take)(void *arg, const struct dnsf_event *event), void *arg)
{
	struct dnsf_event *ring = atomic_load_explicit(&slot->ring, memory_order_acquire);
	if (!ring)
		return;
	uint32_t tail = atomic_load_explicit(&slot->tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&slot->head, memory_order_acquire);
	while (tail != head) {
		take(arg, &ring[tail & (DNSF_REPORT_RING - 1)]);
		tail++;
		if (tail % 256 == 0) /* give the producer room while the round goes on */
			atomic_store_explicit(&slot->tail, tail, memory_order_release);
	}
	atomic_store_explicit(&slot->tail, tail, memory_order_release);
}

void report_slots_drain(struct dnsf_reporter *reporter,
			void (*take)(void *arg, const struct dnsf_event *event), void *arg)
{
	uint32_t used = slots_used(reporter);
	for (uint32_t i = 0; i < used; i++)
		drain_slot(&reporter->slots[i], take, arg);
	drain_slot(&reporter->overflow, take, arg);
}
