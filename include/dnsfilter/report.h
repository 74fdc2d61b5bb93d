/*
 * dnsfilter/report.h - the reporter: per-thread counters and block events
 * from the resolver threads, written by one writer thread to the event log
 * (log.path), the counter log (stats.path) and the Prometheus file
 * (metrics.path).
 *
 * Threads. Resolver threads call dnsf_reporter_thread once (or per query:
 * it is a thread-local compare) and then the dnsf_count_* and
 * dnsf_report_match functions with the slot it returned. These never lock,
 * never make a blocking system call and never allocate, except that a
 * thread's first call of dnsf_reporter_thread allocates its event ring.
 * Each slot is written only by its thread (counters with relaxed atomic
 * stores, events into a single-producer/single-consumer ring) and sits on
 * cache lines of its own. The writer thread reads the counters, drains the
 * rings every DNSF_REPORT_WAKE_MS (sooner when a ring is half full) and does
 * all the file work. The first DNSF_REPORT_SLOTS threads get a slot each;
 * later ones share one overflow slot (atomic adds, and a try-lock around
 * its ring: a busy lock drops the event, counted).
 *
 * Lifetime: new (opens the files) -> start (starts the writer) -> resolver
 * threads use it -> stop (after the resolver threads stopped using it: in
 * Unbound, module deinit runs after the workers are joined) -> free.
 *
 * Event log: one JSON line per event, fields in this order:
 *   {"ts":"2024-04-16T01:02:03.456Z","client":"203.0.113.7",
 *    "qname":"c2.example.net","qtype":"A","id":"IIJ-20240416-0001",
 *    "action":"block","via":"qname"}
 *  - ts: the event's time_ms, UTC, milliseconds.
 *  - client: per log.client-ip. full: the address as inet_ntop writes it;
 *    truncate: the address of its /24 (IPv4) or /48 (IPv6) network with
 *    the host bits zeroed and no prefix length ("203.0.113.0",
 *    "2001:db8:1::"); none, or family 0 (unknown): null. The key is always
 *    there, so every line has the same seven keys. An IPv4-mapped IPv6
 *    address (::ffff:a.b.c.d, a dual-stack socket's IPv4 client) is written
 *    and truncated as the IPv4 address a.b.c.d.
 *  - qname: the query name as asked, in presentation format, lowercase,
 *    WITHOUT the trailing dot ("c2.example.net"; the root is "."), as the
 *    feed writes names. The writer lowercases ASCII letters and removes an
 *    unescaped trailing dot itself, so either form may be passed.
 *  - qtype: the mnemonic (A, AAAA, MX, TXT, ANY, HTTPS, SVCB, ...) or
 *    TYPEnnn (RFC 3597) for a type without one.
 *  - action: "block" or "monitor"; via: "qname" or "cname".
 *  Strings are JSON-escaped: '"', '\\' and control characters, and bytes
 *  that are not valid UTF-8 become U+FFFD, so every line is valid JSON.
 *  Rotation: before each batch of lines the writer compares the inode of the
 *  path with that of its open file; when they differ (the file was renamed
 *  away) or the path is gone, it reopens (creates) the path, and writes
 *  nothing more to the old file. The counter log is reopened the same way.
 *  The file is opened O_APPEND|O_NONBLOCK; a FIFO is fine (lines are
 *  written in whole pieces of at most PIPE_BUF bytes, so a reader never sees
 *  half a line; a FIFO without a reader is opened again each round).
 *  The writer waits at most DNSF_REPORT_WRITE_MS a round for a slow file;
 *  lines it could not write are dropped.
 *
 * Counter log: every interval seconds (and at stop) one JSON line of the
 * deltas since the previous line, written with one write() on an O_APPEND
 * file:
 *   {"ts":"...Z","interval":60,"queries":N,"optout":N,"blocked":N,
 *    "monitored":N,"by_id":{"ID":N,...},"dropped_events":N,
 *    "feed_serial":N,"feed_failures":N,"feed_stale_since":null,
 *    "optout_stale_since":null,"mode":"enforce"}
 *  - ts: when the line was written (the end of the interval it covers);
 *    interval: the whole seconds actually covered (rounded; the line written
 *    at stop covers less than a full interval, possibly 0).
 *  - queries, optout, blocked, monitored: from the resolver threads'
 *    counters, exact.
 *  - by_id: blocked + monitored per entry id, counted by the writer from the
 *    events it drained, ids in byte order, only ids with a nonzero delta.
 *    An event dropped because its thread's ring was full is not in by_id
 *    (nor in the event log); an event drained but not written to the event
 *    log (slow or missing file) is in by_id.
 *  - dropped_events: events missing from the event log, for either reason.
 *  - feed_serial: the serial last given to dnsf_reporter_set_feed (0 before);
 *    feed_failures: delta of dnsf_reporter_count_feed_failure calls.
 *  - feed_stale_since, optout_stale_since: null while the data in force is
 *    that of the configured file; else when that file became unusable
 *    ("...Z"), the data in force being older (the last-good copy at start,
 *    or what stayed in force after a failed refresh): dnsf_reporter_set_stale.
 *  - mode: "monitor" or "enforce", the mode in force during the interval
 *    (dnsf_reporter_set_mode). A change of mode (enforce-from) ends the
 *    interval at once with a line of the old mode, so no line mixes the two.
 *
 * Metrics: the same counters, cumulative since dnsf_reporter_new, in
 * Prometheus text format (node_exporter textfile collector), written to a
 * temporary file beside metrics.path and renamed over it at start, every
 * interval and at stop:
 *   dnsfilter_queries_total, dnsfilter_optout_queries_total,
 *   dnsfilter_blocked_total, dnsfilter_monitored_total,
 *   dnsfilter_matches_total{id="..."} (per id, as by_id),
 *   dnsfilter_dropped_events_total, dnsfilter_feed_failures_total (counters),
 *   dnsfilter_feed_serial, dnsfilter_feed_stale, dnsfilter_optout_stale
 *   (1 when stale, else 0), dnsfilter_feed_stale_since_seconds,
 *   dnsfilter_optout_stale_since_seconds (Unix time, 0 when fresh),
 *   dnsfilter_enforcing (1 in enforce mode, 0 in monitor mode) (gauges).
 */
#ifndef DNSFILTER_REPORT_H
#define DNSFILTER_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsfilter/error.h"
#include "dnsfilter/limits.h"
#include "dnsfilter/settings.h"

/** Resolver threads with a slot of their own; more share one. */
#define DNSF_REPORT_SLOTS 256
/** Events each thread's ring holds (a power of two). */
#define DNSF_REPORT_RING 4096
/** The writer's round: it drains the rings at least this often. */
#define DNSF_REPORT_WAKE_MS 100
/** Longest a round waits for a slow event log (FIFO) to take lines. */
#define DNSF_REPORT_WRITE_MS 100
/** Size of dnsf_event.qname, with its NUL. */
#define DNSF_EVENT_QNAME_SIZE 256
/** Size of dnsf_event.id, with its NUL: a feed id fits whole
 * (DNSF_FEED_ID_MAX, limits.h). */
#define DNSF_EVENT_ID_SIZE 64
_Static_assert(DNSF_EVENT_ID_SIZE > DNSF_FEED_ID_MAX, "an event carries every feed id whole");

/** What the reporter writes where. Strings are copied by dnsf_reporter_new. */
struct dnsf_report_settings {
	/** event log, or NULL: none */
	const char *log_path;
	/** client address in the event log */
	enum dnsf_client_ip client_ip;
	/** counter log, or NULL: none */
	const char *stats_path;
	/** seconds between counter lines and metrics rewrites, at least 1 */
	uint32_t stats_interval;
	/** Prometheus text file, or NULL: none */
	const char *metrics_path;
	/**
	 * Called from the writer thread when writing an output file fails
	 * (cannot reopen after rotation, disk full, FIFO reader gone), once
	 * until that file works again; NULL: not told. Must be thread-safe
	 * (Unbound's log_err is).
	 */
	void (*log_error)(void *arg, const char *message);
	/** passed to log_error */
	void *log_error_arg;
};

/** A filtered or monitored query, filled in by a resolver thread. */
struct dnsf_event {
	/** when, milliseconds since the epoch */
	int64_t time_ms;
	/** AF_INET, AF_INET6, or 0: unknown (logged as null) */
	int family;
	/** client address, 4 (AF_INET) or 16 bytes, network order */
	uint8_t address[16];
	/** query name, presentation format (see the file comment); longer
	 * text is cut */
	char qname[DNSF_EVENT_QNAME_SIZE];
	/** query type */
	uint16_t qtype;
	/** id of the feed entry that matched (feed ids fit whole) */
	char id[DNSF_EVENT_ID_SIZE];
	/** 0: blocked, 1: monitored */
	int monitor;
	/** 0: the qname matched, 1: a CNAME/DNAME target in the answer */
	int via_cname;
};

/** The reporter; opaque. */
struct dnsf_reporter;

/** One resolver thread's counters and event ring; opaque. */
struct dnsf_counters;

/**
 * Create a reporter and open its files: the event log and counter log are
 * opened (created) for appending, and the metrics file is written once
 * (all zero). A file that cannot be opened or written is not an error: it
 * never stops the resolver. It is told to log_error once, naming the key
 * and quoting the path ("log.path: /var/log/x.log: cannot open: No such
 * file or directory; trying again"), and tried again before each write
 * (the metrics every interval); meanwhile events are dropped (counted) and
 * counter lines wait (the next line written carries their counts). A FIFO
 * with no reader yet is opened again each round, without a message.
 * @param settings: paths and interval; copied.
 * @param errors: each problem (an empty path, a bad interval, no memory).
 * @return the reporter, or NULL on error.
 */
struct dnsf_reporter *dnsf_reporter_new(const struct dnsf_report_settings *settings,
					struct dnsf_errors *errors);

/**
 * Start the writer thread (with every signal blocked in it). In Unbound,
 * from module init: that runs after the daemon forked, in the process that
 * serves.
 * @return 1 on success, 0 when the thread could not be created (or it was
 *   started or stopped before).
 */
int dnsf_reporter_start(struct dnsf_reporter *reporter);

/**
 * Stop the writer: it drains every ring, writes the events, a last counter
 * line and the metrics, and ends; then it is joined. Takes at most about
 * 2 * DNSF_REPORT_WRITE_MS plus the time regular files need, also when the
 * event log is a FIFO nobody reads. Call it after the resolver threads have
 * stopped using the reporter. A reporter never started does that last
 * round in the calling thread. A second call does nothing.
 * A writer that has not ended after DNSF_REPORT_STOP_MS (stuck in a write
 * to a file on a dead network mount) is left behind, detached.
 * @return 1 when stopped; 0 when the writer was left behind: then the
 *   reporter must never be freed (the writer still uses it) and the code
 *   must stay loaded.
 */
int dnsf_reporter_stop(struct dnsf_reporter *reporter);

/** How long dnsf_reporter_stop waits for the writer. */
#define DNSF_REPORT_STOP_MS 10000

/**
 * Free the reporter, stopping a running writer first (a reporter that was
 * never started writes nothing); NULL is allowed. Slots handed out by
 * dnsf_reporter_thread are gone with it.
 */
void dnsf_reporter_free(struct dnsf_reporter *reporter);

/**
 * This thread's slot, taken on the thread's first call for this reporter
 * (a reporter made later, e.g. after a reload, hands out new slots even at
 * the same address).
 * @param reporter: the reporter, or NULL.
 * @return the slot; NULL when reporter is NULL (the count functions accept
 *   NULL and do nothing).
 */
struct dnsf_counters *dnsf_reporter_thread(struct dnsf_reporter *reporter);

/** Count a client query answered (cache hits included), not opted out. */
void dnsf_count_query(struct dnsf_counters *counters);

/** Count a query of an opted-out client (not in dnsf_count_query). */
void dnsf_count_optout(struct dnsf_counters *counters);

/**
 * Count a blocked (event->monitor 0) or monitored query and queue its event
 * for the writer; when this thread's ring is full the event is dropped and
 * counted in dropped_events. The event is copied.
 */
void dnsf_report_match(struct dnsf_counters *counters, const struct dnsf_event *event);

/** The serial of the feed in force; from any thread. */
void dnsf_reporter_set_feed(struct dnsf_reporter *reporter, uint64_t serial);

/**
 * The mode in force (enforce before the first call); from any thread. A
 * change wakes the writer, which ends the counter interval there.
 */
void dnsf_reporter_set_mode(struct dnsf_reporter *reporter, enum dnsf_mode mode);

/** The files whose data can be stale. */
enum dnsf_stale_file {
	DNSF_STALE_FEED = 0,
	DNSF_STALE_OPTOUT,
};

/** The data in force from a file is stale since a time (Unix seconds), or
 * fresh (0); from any thread. */
void dnsf_reporter_set_stale(struct dnsf_reporter *reporter, enum dnsf_stale_file file,
			     int64_t since);

/** Count a feed (or opt-out file) load that failed; from any thread. */
void dnsf_reporter_count_feed_failure(struct dnsf_reporter *reporter);

/**
 * Set event->family and event->address from a socket address (AF_INET or
 * AF_INET6; anything else gives family 0).
 */
void dnsf_event_set_client(struct dnsf_event *event, const struct sockaddr *address);

/**
 * Set event->qname from a wire-format name (a query's question name): the
 * text of dnsf_wire_to_text (name.h) without its trailing dot, "." for the
 * root: lowercase, bytes other than letters, digits, '-' and '_' as \DDD
 * (so '.' inside a label is "\046"). A name whose text does not fit
 * DNSF_EVENT_QNAME_SIZE (only possible with many escaped octets) is cut at
 * a character and ends in "...", which no whole name does.
 * @return 1 when the whole name fits, 0 when cut or the wire name is
 *   malformed (then qname is what could be read, possibly "").
 */
int dnsf_event_set_qname_wire(struct dnsf_event *event, const uint8_t *wire, size_t wire_length);

#endif
