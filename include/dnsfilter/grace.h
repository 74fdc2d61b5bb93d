/*
 * dnsfilter/grace.h - grace periods for lock-free readers of a swapped
 * pointer (read-copy-update without per-thread registration).
 *
 * Resolver threads read the current feed index through an atomic pointer;
 * a watcher thread publishes a new one with an atomic exchange and must not
 * free the old one while a reader may still use it. Readers mark the span
 * in which they use the pointer (a "section") in a slot of their own; the
 * writer, after the exchange, waits until every slot that was inside a
 * section has left it (dnsf_grace_wait). Then no reader holds the old
 * pointer, and it can be freed.
 *
 * Why this and not liburcu: liburcu readers must register and, before they
 * exit, unregister each thread; Unbound creates and ends its worker threads
 * itself and unloads this module (dlclose) on reload, so the module cannot
 * hook thread exit safely. Here a thread takes a slot on first use and a
 * slot needs no cleanup: an exited thread's slot is simply outside.
 *
 * Correctness: a reader stores its slot (odd: inside) and then loads the
 * pointer; the writer exchanges the pointer and then loads every slot; all
 * four are sequentially consistent, so they fall in one total order. If the
 * writer's load of a slot comes before the reader's store, the reader's
 * pointer load comes after the exchange: it sees the new pointer. Otherwise
 * the writer sees the slot inside and waits until its value changes, which
 * happens only when that section ends. A slot taken after the writer read
 * the slot count is likewise ordered after the exchange.
 *
 * This needs every slot a reader enters to be one the writer looks at: one
 * of the first "used" slots of the same grace object. A thread keeps its
 * slot in a thread-local pointer tagged with the generation of the grace
 * object it was taken from, a number no other grace object in the process
 * has; a grace object made later (after a reload), even at the address of
 * a freed one, has another generation, so the thread takes (and counts) a
 * slot there instead of entering a slot nobody waits for.
 *
 * Cost for a reader: one sequentially consistent store to a cache line no
 * other thread writes, and one release store.
 */
#ifndef DNSFILTER_GRACE_H
#define DNSFILTER_GRACE_H

#include <stdint.h>

/** Readers that get a slot of their own; more share an overflow counter. */
#define DNSF_GRACE_SLOTS 1024

/** The readers of one published pointer (or of several, swapped together). */
struct dnsf_grace;

/** A reader's section; on the reader's stack. */
struct dnsf_grace_section {
	/** the slot entered, or NULL for the overflow counter */
	void *slot;
	/** the slot's value while inside */
	uint64_t value;
	/** the grace object */
	struct dnsf_grace *grace;
};

/** A new grace object, or NULL when out of memory. */
struct dnsf_grace *dnsf_grace_new(void);

/** Free it; no reader may be inside. NULL is allowed. */
void dnsf_grace_free(struct dnsf_grace *grace);

/**
 * Enter a section: after this, pointers loaded (sequentially consistent)
 * stay valid until dnsf_grace_leave.
 */
void dnsf_grace_enter(struct dnsf_grace *grace, struct dnsf_grace_section *section);

/** Leave the section entered with dnsf_grace_enter. */
void dnsf_grace_leave(struct dnsf_grace_section *section);

/**
 * Wait until every section that may have loaded a pointer before the
 * caller's last exchange has ended. Sleeps briefly between checks; never
 * call it inside a section.
 */
void dnsf_grace_wait(struct dnsf_grace *grace);

#endif
