/*
 * glue.h - what the files of the Unbound glue (module/unbound/) share. The
 * glue is the only code that includes Unbound's headers; everything here is
 * hidden in the .so. docs/architecture.md has the map:
 *
 *   module.c    the six dynlib entry points; one query's way through them
 *   decision.c  what to do with a query and with its answer
 *   answer.c    the sinkhole answer
 *   cache.c     what the module takes out of Unbound's caches, the purge
 *   upstream.c  Unbound's callbacks on upstream questions and responses
 *   view.c      reading the published feed and opt-out set
 *   reporting.c the reporter and Unbound's reply callbacks that count
 *   loader.c    loading the feed and the opt-out networks
 *   watcher.c   the watcher thread (reloads, entry starts)
 *   wake.c      waking a resolver thread for a purge
 *   host.c      the Unbound that loaded the module: version, options
 *
 * Threads: init and deinit run in Unbound's main thread with no worker
 * running; operate and Unbound's callbacks run in worker threads; the
 * watcher thread (watcher.c) is the only writer of the published index and
 * opt-out set. Workers read them inside a grace section (struct feed_view)
 * and never keep a pointer past it.
 */
#ifndef DNSFILTER_GLUE_H
#define DNSFILTER_GLUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "dnsfilter/cidr.h"
#include "dnsfilter/feed.h"
#include "dnsfilter/grace.h"
#include "dnsfilter/report.h"
#include "dnsfilter/settings.h"
#include "util/module.h" /* after config.h, which every glue file includes first */

struct module_env;
struct module_qstate;
struct comm_reply;
struct query_info;
struct reply_info;
struct edns_data;
struct edns_option;
struct regional;
struct timeval;

/** What identifies a version of a file: a rename or a rewrite changes it. */
struct file_version {
	/** 0 when the file could not be stat'ed */
	int exists;
	/** device, inode, size and times */
	dev_t device;
	ino_t inode;
	off_t size;
	struct timespec modified, changed;
};

/** The module's state, shared by all threads (a "filter"). */
struct dnsfilter {
	/** settings in force (fixed until the next init) */
	struct dnsf_settings settings;
	/** readers of index and optout */
	struct dnsf_grace *grace;
	/** the feed's index, swapped by the watcher */
	_Atomic(struct dnsf_index *) index;
	/** the opted-out networks (NULL: none), swapped by the watcher */
	_Atomic(struct dnsf_cidr_set *) optout;
	/** 1 when EDE is attached (the module's and Unbound's ede both on) */
	int ede;
	/** event log, counters, metrics; NULL when none is configured */
	struct dnsf_reporter *reporter;

	/** the watcher: lock guards stopping; wake interrupts its sleep */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	int watcher_running;
	pthread_t watcher;
	/** the last-good copies of the feed and of the opt-out file (NULL: none) */
	char *feed_copy, *optout_copy;
	/** the feed's index image (index.h, "Images") */
	char *feed_image;
	/** per enum dnsf_stale_file: since when the configured file cannot be
	 * used while older data stays in force (Unix s), 0: fresh; written
	 * by init and then the watcher only */
	int64_t stale_since[2];
	/** the versions of the files in force (watcher only) */
	struct file_version feed_version, optout_version;
	/** next start of an entry, or enforce-from, after the last check
	 * (watcher only) */
	int64_t next_start;
	/** the mode in force at the last check (watcher only) */
	enum dnsf_mode mode_in_force;

	/** cache purges asked for and done; a worker does them (cache.c) */
	_Atomic uint64_t purge_requested, purge_done;
	/** the names the last request asked about (NULL: all), for the
	 * request numbered purge_delta_request; under lock, until a worker
	 * takes it for its job */
	struct dnsf_delta *purge_delta;
	uint64_t purge_delta_request;
	/** 1 while a worker purges */
	_Atomic int purging;
	/** the purge under way, a slice at a time (only the worker holding
	 * purging touches it) */
	struct purge_job {
		/** 1 while a walk is under way */
		int active;
		/** the purge_requested it serves; a newer one starts it over */
		uint64_t epoch;
		/** where the walk goes on: 0 message cache, 1 rrset cache, 2 done;
		 * the slab and the bin in it */
		int phase;
		size_t slab, bin;
		/** what it found and did so far */
		size_t examined, removed, rrsets_examined, rrsets_removed, slices;
		/** entries whose names are in the delta (examined against the feed) */
		size_t candidates;
		double busy_ms, longest_ms, longest_cpu_ms;
		/** only names covered by it can be newly listed; NULL: any */
		struct dnsf_delta *delta;
		struct timespec started;
	} job;
	/** where a query reaches this Unbound, to wake a worker for a purge */
	struct sockaddr_storage self_address;
	socklen_t self_address_length;
};

/** The name under which wake-up queries are asked (wire format). */
#define DNSFILTER_WAKE_ZONE "\005purge\011dnsfilter\004arpa"

/**
 * Ask for a purge of the message cache against the feed in force, and
 * wake a worker to do it with a query to this Unbound (watcher thread).
 * @param delta: the names the feed may newly act on, or NULL for any; the
 *   purge owns it. While an earlier purge is still under way a delta is
 *   dropped and the new walk checks every name.
 * @return the request's number: the purge is done when purge_done reaches it.
 */
uint64_t dnsfilter_request_purge(struct dnsfilter *filter, struct dnsf_delta *delta);

/** Wake a worker with a query to this Unbound (any thread). */
void dnsfilter_wake_worker(struct dnsfilter *filter);

/** Longest a worker walks the caches in one go before it answers queries
 * again (the purge goes on in the next slice). */
#define DNSFILTER_PURGE_SLICE_MS 0.5

/**
 * In a worker: do a requested purge if there is one and no other worker is
 * at it. Cheap when none is pending.
 */
void dnsfilter_purge_if_requested(struct module_env *env, struct dnsfilter *filter);

/** Is this query a wake-up query (a name below DNSFILTER_WAKE_ZONE)? */
int dnsfilter_is_wake_query(const uint8_t *qname, size_t length);

/** Find where this Unbound answers queries (init: reads env->cfg). */
void dnsfilter_find_self_address(struct dnsfilter *filter, struct module_env *env);

/** A question or an rrset owner remembered for later (upstream.c). */
struct remembered_name {
	struct remembered_name *next;
	/** host order */
	uint16_t type, rrclass;
	size_t length;
	uint8_t *name;
};

/** Most questions remembered per query state; past them it stores nothing. */
#define DNSFILTER_MAX_REMEMBERED 32

/**
 * Per query, in the query's region: what was decided and done. The states
 * of the iterator's own sub-queries, which never pass the module, get one
 * from the upstream callbacks (upstream.c), with started 0.
 */
struct dnsfilter_query {
	/** 1 once operate has seen the state */
	int started;
	/** 1 when epoch holds the feed epoch of the first check */
	int epoch_set;
	/** the feed epoch (dnsfilter_feed_epoch) when the state was first
	 * checked: a different one at its end means the feed or an entry's
	 * window changed while it was in flight */
	uint64_t epoch;
	/** questions the state sent upstream while it could still store them:
	 * the message cache keys it may have filled */
	struct remembered_name *asked;
	size_t asked_count;
	/** rrsets of listed names that upstream responses carried */
	struct remembered_name *listed;
	size_t listed_count;
	/** the verdict for the query name (after the global mode) */
	enum dnsf_verdict verdict;
	/** 1 when the first client was opted out, so the query passed */
	int opted_out;
	/** what the answer is: BLOCK (sinkhole), MONITOR (real, matched) or NONE */
	enum dnsf_verdict acted;
	/** 1 when the match came through the answer's alias chain */
	int via_cname;
	/** the deciding entry's id (copied: the feed may change meanwhile) */
	char entry_id[DNSF_EVENT_ID_SIZE];
	/** the last name decided for this state (index.h, "Memos") */
	struct dnsf_memo memo;
};

/** What decision.c decided for a query or an answer (module.c carries
 * it out). */
struct outcome {
	/** answer with the sinkhole of decision.entry */
	int sinkhole;
	/** the real answer passes on but must not be stored */
	int no_store;
	/** take the answer and its alias chain out of the message cache */
	int remove_cached;
	/** the match to record for the events: BLOCK, MONITOR or NONE */
	enum dnsf_verdict note;
	/** 1 when the match is a name of the answer's alias chain (the SOA of
	 * a negative sinkhole answer is then owned by the query name) */
	int via_cname;
	/** the feed's decision, and the query name's key (length 0 when the
	 * decision was remembered: answer.c makes it when it needs it) */
	struct dnsf_decision decision;
	struct dnsf_key key;
};

/** A reader's view of the published data, for one grace section. */
struct feed_view {
	const struct dnsfilter *filter;
	const struct dnsf_index *index;
	const struct dnsf_cidr_set *optout;
	struct dnsf_grace_section section;
};

/** The Unbound version the module was built for (its PACKAGE_STRING). */
#define BUILT_FOR PACKAGE_STRING
extern const char *const dnsfilter_built_for;

/** Is the running Unbound the one the module was built for: its version,
 * and the configure options that move struct fields? Logs why not. */
int host_check_version(void);
/** The settings file: $DNSFILTER_CONF, else dnsfilter.json in the working
 * directory, which is Unbound's directory: (inside the chroot). */
char *host_settings_path(void);
/** Room for an escaped path or value in a log line. */
#define DNSFILTER_LOGGED_SIZE 1024

/**
 * A path or value from the environment or the settings, escaped for a log
 * line (error.h), so that one with a newline cannot forge a line.
 * @param out: DNSFILTER_LOGGED_SIZE bytes.
 * @return out.
 */
const char *dnsfilter_logged(const char *text, char *out);

/** Keep the module's code loaded for good: a thread of it was left behind
 * in a system call and returns into it later. */
void host_pin_module(void);
/** Is Unbound's own ede option on? (init: reads env->cfg) */
int host_ede_enabled(struct module_env *env);

/** One of Unbound's inplace callbacks the module registers. */
struct host_callback {
	enum inplace_cb_list_type kind;
	void *function;
};

/** Register callbacks (init only) with arg; on a failure the ones
 * registered are removed and the log names what. @return 1 on success. */
int host_register_callbacks(struct module_env *env, int id, void *arg,
			    const struct host_callback *callbacks, size_t count, const char *what);
/** Remove them (deinit, and on a failed init). */
void host_unregister_callbacks(struct module_env *env, int id,
			       const struct host_callback *callbacks, size_t count);

/** Decide on a new query; records the verdict in query. */
void decide_query(const struct module_qstate *qstate, const struct feed_view *view,
		  struct dnsfilter_query *query, struct outcome *outcome);
/** Decide on the answer of the validator and the iterator (moddone). */
void decide_answer(const struct module_qstate *qstate, const struct feed_view *view,
		   struct dnsfilter_query *query, struct outcome *outcome);
/** Record the match in query (for the events) and log it at verbosity 2. */
void decision_record(struct dnsfilter_query *query, const struct outcome *outcome,
		     const struct query_info *qinfo);

/** Finish the query with the sinkhole answer for outcome (module_finished),
 * or with module_error when out of memory. @return 1 on success. */
int answer_sinkhole(struct module_qstate *qstate, int id, const struct feed_view *view,
		    const struct outcome *outcome);

/** Remove an answer from the message cache: under the question and
 * under every alias target of its chain. */
void cache_remove_answer(struct module_qstate *qstate, const struct reply_info *rep);

/** Open a view (enter a grace section and load the pointers). */
void view_open(const struct dnsfilter *filter, struct feed_view *view);
/** Close it; its pointers are invalid afterwards. */
void view_close(struct feed_view *view);

/** Is this client opted out: its address in the opt-out networks, or its
 * query arrived at one of optout.service-addresses? */
int view_client_opted_out(const struct feed_view *view, const struct comm_reply *client);

/** Did this client's query arrive at one of optout.service-addresses
 * (service.c)? */
int dnsfilter_arrived_at_service_address(const struct dnsf_settings *settings,
					 const struct comm_reply *reply);

/** Does Unbound listen on every service address in a way that tells a
 * query's local address (its interface: lines, interface-automatic)?
 * Logs each that it does not (init: reads env->cfg). @return 1 if so. */
int dnsfilter_check_service_addresses(const struct dnsf_settings *settings, struct module_env *env);

/** The feed's decision for a wire name at a time; key is filled in. */
void view_decide(const struct feed_view *view, const uint8_t *name, size_t length, int64_t now,
		 struct dnsf_decision *decision, struct dnsf_key *key);

/**
 * The first name of an answer's alias chain (owners and targets of its
 * CNAME/DNAME records, owners of what follows) that the feed blocks or
 * monitors; allowed names are skipped. @return its verdict, or NONE.
 */
enum dnsf_verdict view_chain_decision(const struct feed_view *view, struct dnsf_memo *memo,
				      const struct reply_info *rep, int64_t now,
				      struct dnsf_decision *decision);

/** The target of a CNAME or DNAME rrset, or NULL. */
const uint8_t *dnsfilter_alias_target(const void *rrset, size_t *length);

/**
 * The feed epoch: it moves whenever the names the module acts on may have
 * changed (a new feed, an entry's start) and a purge is asked for. Read it
 * before the index (view_open): an epoch seen implies its index is seen.
 */
uint64_t dnsfilter_feed_epoch(const struct dnsfilter *filter);

/** Register the callbacks on upstream questions and responses (init). */
int dnsfilter_upstream_register(struct dnsfilter *filter, struct module_env *env, int id);
/** Remove them (deinit, and on a failed init). */
void dnsfilter_upstream_unregister(struct module_env *env, int id);

/**
 * A query state ends (moddone of the module, or clear for every state):
 * take out of the caches what it stored of names listed meanwhile, and the
 * rrsets of listed names that a store which ignores no_cache_store put in.
 */
void dnsfilter_upstream_close(struct module_qstate *qstate, int id);

/**
 * Remove one cached message (both AAAA hash variants) if the feed now
 * blocks or monitors its name or, with match-cname, a name of its alias
 * chain, and the rrset of that name and type. @return 1 if removed.
 */
int dnsfilter_purge_question(struct module_env *env, const struct feed_view *view, int64_t now,
			     const uint8_t *name, size_t length, uint16_t qtype, uint16_t qclass);

/** Does the feed block or monitor this wire name now? */
int view_acts_on(const struct feed_view *view, const uint8_t *name, size_t length, int64_t now);

/** view_decide through a query state's memo (NULL: none); key (may be
 * NULL) is filled in only when the decision was made, not remembered. */
void view_decide_memo(const struct feed_view *view, struct dnsf_memo *memo, const uint8_t *name,
		      size_t length, int64_t now, struct dnsf_decision *decision,
		      struct dnsf_key *key);

/** view_acts_on through a query state's memo (NULL: none). */
int view_acts_on_memo(const struct feed_view *view, struct dnsf_memo *memo, const uint8_t *name,
		      size_t length, int64_t now);

/** Remove a question's message cache entries (both AAAA hash variants). */
void dnsfilter_remove_cached(struct module_env *env, const uint8_t *name, size_t length,
			     uint16_t qtype, uint16_t qclass);

/** Read a file's version. */
void file_version_read(const char *path, struct file_version *version);
/** Same version? */
int file_version_same(const struct file_version *a, const struct file_version *b);

/**
 * Load the feed named in the settings and keep its bytes as the last-good
 * copy; every error is logged. At init (use_copy), a feed that cannot be
 * used is replaced by the last-good copy. Sets filter->stale_since and the
 * reporter's state.
 * @return the index, or NULL when neither the feed nor its copy could serve.
 */
struct dnsf_index *dnsfilter_load_feed(struct dnsfilter *filter, int use_copy);

/**
 * Build the opt-out set from the settings' networks and file, as
 * dnsfilter_load_feed for the file. *set is NULL when there are no
 * networks at all.
 * @return 1 on success, 0 when refused.
 */
int dnsfilter_load_optout(struct dnsfilter *filter, int use_copy, struct dnsf_cidr_set **set);

/** Start the watcher thread (when watch-interval > 0). @return 1 on success. */
int dnsfilter_watcher_start(struct dnsfilter *filter);
/** How long the watcher waits for the purge after a change before it logs
 * the change as in force with the purge still under way. */
#define DNSFILTER_PURGE_WAIT_SECONDS 30
/** How long stop waits for the watcher before it leaves it behind. */
#define DNSFILTER_WATCHER_STOP_SECONDS 10

/**
 * Stop and join it; safe when it never started. A watcher that does not
 * end within DNSFILTER_WATCHER_STOP_SECONDS (stuck in a system call) is
 * left behind with the module's code kept loaded.
 * @return 1 when it stopped, 0 when it was left behind: then the filter
 *   (and all the watcher may touch) must not be freed.
 */
int dnsfilter_watcher_stop(struct dnsfilter *filter);

/** Remove cached answers that the published feed now blocks or monitors
 * (init, with no worker running, or a worker thread; never the watcher). */
void dnsfilter_purge_cache(struct module_env *env, const struct dnsfilter *filter);

/** Start the reporter when the settings name a log, counter or metrics
 * file (init). @return 1 on success. */
int dnsfilter_counting_start(struct dnsfilter *filter);
/** Stop and free it: writes the last counter line (deinit). */
void dnsfilter_counting_stop(struct dnsfilter *filter);
/** Register Unbound's reply callbacks that count answers (init). */
int dnsfilter_counting_register(struct dnsfilter *filter, struct module_env *env, int id);
/** Remove them (deinit, and on a failed init). */
void dnsfilter_counting_unregister(struct module_env *env, int id);

/** Give memory freed after a load back to the system (glibc: malloc_trim). */
void dnsfilter_trim_memory(void);

/** Log every message of an error list, one line each. */
void dnsfilter_log_errors(const char *what, const struct dnsf_errors *errors);

#endif
