/*
 * grace.c - grace periods for lock-free readers (see grace.h for the
 * argument why this is correct).
 */
#include "dnsfilter/grace.h"
#include "dnsfilter/tls.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/** One reader's slot, alone on its cache line. Odd value: inside. */
struct grace_slot {
	_Alignas(64) _Atomic uint64_t value;
};

struct dnsf_grace {
	/** unique among grace objects, for the threads' cached slots */
	uint64_t generation;
	/** slots handed out so far */
	_Alignas(64) _Atomic uint32_t used;
	/** readers without a slot of their own, inside a section */
	_Alignas(64) _Atomic uint64_t overflow;
	/** the slots */
	struct grace_slot slots[DNSF_GRACE_SLOTS];
};

/** Generations of grace objects; 0 is none. */
static _Atomic uint64_t next_generation = 1;
/* This thread's slot, and the generation of the grace object it belongs to
 * (grace.h: a new grace object, even at a freed one's address, has a new
 * generation, and the thread takes a slot there). */
static DNSF_THREAD_LOCAL uint64_t slot_generation;
static DNSF_THREAD_LOCAL struct grace_slot *slot_of_thread;

struct dnsf_grace *dnsf_grace_new(void)
{
	struct dnsf_grace *grace = aligned_alloc(64, sizeof(struct dnsf_grace));
	if (!grace)
		return NULL;
	grace->generation = atomic_fetch_add(&next_generation, 1);
	atomic_init(&grace->used, 0);
	atomic_init(&grace->overflow, 0);
	for (size_t i = 0; i < DNSF_GRACE_SLOTS; i++)
		atomic_init(&grace->slots[i].value, 0);
	return grace;
}

void dnsf_grace_free(struct dnsf_grace *grace)
{
	free(grace);
}

static struct grace_slot *take_slot(struct dnsf_grace *grace)
{
	uint32_t index = atomic_fetch_add(&grace->used, 1);
	if (index >= DNSF_GRACE_SLOTS) {
		atomic_fetch_sub(&grace->used, 1);
		return NULL;
	}
	return &grace->slots[index];
}

void dnsf_grace_enter(struct dnsf_grace *grace, struct dnsf_grace_section *section)
{
	section->grace = grace;
	if (slot_generation != grace->generation) {
		slot_generation = grace->generation;
		slot_of_thread = take_slot(grace);
	}
	struct grace_slot *slot = slot_of_thread;
	section->slot = slot;
	if (!slot) {
		atomic_fetch_add(&grace->overflow, 1);
		return;
	}
	/* Only this thread writes the slot: a relaxed load is enough. */
	section->value = atomic_load_explicit(&slot->value, memory_order_relaxed) + 1;
	atomic_store_explicit(&slot->value, section->value, memory_order_seq_cst);
}

void dnsf_grace_leave(struct dnsf_grace_section *section)
{
	struct grace_slot *slot = section->slot;
	if (!slot) {
		atomic_fetch_sub_explicit(&section->grace->overflow, 1, memory_order_release);
		return;
	}
	atomic_store_explicit(&slot->value, section->value + 1, memory_order_release);
}

static void pause_briefly(void)
{
	struct timespec delay = { 0, 50 * 1000 }; /* 50 µs: sections are short */
	nanosleep(&delay, NULL);
}

void dnsf_grace_wait(struct dnsf_grace *grace)
{
	uint32_t used = atomic_load_explicit(&grace->used, memory_order_seq_cst);
	if (used > DNSF_GRACE_SLOTS)
		used = DNSF_GRACE_SLOTS;
	for (uint32_t i = 0; i < used; i++) {
		_Atomic uint64_t *value = &grace->slots[i].value;
		uint64_t seen = atomic_load_explicit(value, memory_order_seq_cst);
		if (!(seen & 1))
			continue;
		while (atomic_load_explicit(value, memory_order_seq_cst) == seen)
			pause_briefly();
	}
	/* Overflow readers: wait for a moment with none inside. */
	while (atomic_load_explicit(&grace->overflow, memory_order_seq_cst) != 0)
		pause_briefly();
}
