/*
 * report.c - counters and block events from the resolver threads, written
 * by one writer thread (see report.h for what is written where).
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
 * Writer side: a round drains every ring up to the head it sees, counts
 * each event per id and formats it into a buffer, then writes the buffer
 * to the event log in whole lines; a round waits at most
 * DNSF_REPORT_WRITE_MS for a slow file, and what it could not write is
 * dropped and counted. Every stats interval it sums the counters and writes
 * the deltas since the last line that was written whole (so a failed write
 * loses nothing: the next line carries its counts) and the metrics file.
 */
#include "dnsfilter/report.h"
#include "dnsfilter/name.h"
#include "dnsfilter/utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert((DNSF_REPORT_RING & (DNSF_REPORT_RING - 1)) == 0,
	       "DNSF_REPORT_RING must be a power of two");

/** The buffer of event lines is written out when it grows past this. */
#define LOG_FLUSH_BYTES (256 * 1024)
/** Longest event line: every field at its longest, all escaped. */
#define EVENT_LINE_MAX 4096
_Static_assert(EVENT_LINE_MAX <= PIPE_BUF, "an event line fits one pipe write");

struct dnsf_counters {
	/* Written by the owning thread only (the overflow slot: atomic adds). */
	/** client queries answered, not opted out */
	_Alignas(64) _Atomic uint64_t queries;
	/** queries of opted-out clients */
	_Atomic uint64_t optout;
	/** blocked queries */
	_Atomic uint64_t blocked;
	/** monitored queries */
	_Atomic uint64_t monitored;
	/** events dropped because the ring was full (or missing) */
	_Atomic uint64_t dropped;
	/** events put into the ring so far (wraps) */
	_Atomic uint32_t head;
	/** the producer's last view of tail */
	uint32_t tail_seen;
	/** DNSF_REPORT_RING events, set once by the owner; NULL: none yet */
	struct dnsf_event *_Atomic ring;
	/** the reporter, for waking its writer */
	struct dnsf_reporter *reporter;
	/** the shared overflow slot: several threads write it */
	int shared;

	/* Written by the writer only. */
	/** events taken out of the ring so far (wraps) */
	_Alignas(64) _Atomic uint32_t tail;
};

/** Counter values at one moment, summed over the threads. */
struct totals {
	/** client queries, not opted out */
	uint64_t queries;
	/** opted-out queries */
	uint64_t optout;
	/** blocked */
	uint64_t blocked;
	/** monitored */
	uint64_t monitored;
	/** events missing from the event log */
	uint64_t dropped;
	/** failed feed loads */
	uint64_t feed_failures;
};

/** Growing text; on allocation failure, failed is set and appends stop. */
struct text {
	/** the bytes (not NUL-terminated) */
	char *bytes;
	/** bytes used */
	size_t length;
	/** bytes allocated */
	size_t capacity;
	/** an append did not fit in memory */
	int failed;
};

/** Matches counted for one entry id. */
struct id_count {
	/** the id, NUL-terminated; "" marks a free cell */
	char id[DNSF_EVENT_ID_SIZE + 1];
	/** since the last counter line written */
	uint64_t interval;
	/** since the reporter was made */
	uint64_t total;
};

/** Open-addressed hash table of id_count. */
struct id_table {
	/** cells, capacity of them (a power of two) or NULL */
	struct id_count *cells;
	/** number of cells */
	size_t capacity;
	/** cells in use */
	size_t count;
	/** the count of events with an empty id (not stored in a cell) */
	struct id_count empty;
};

/** An appended-to output file (event log, counter log). */
struct output_file {
	/** the settings key, for messages */
	const char *key;
	/** the path (malloc'd), or NULL: not configured */
	char *path;
	/** creation mode */
	mode_t mode;
	/** open descriptor, or -1 */
	int fd;
	/** device of the open file */
	dev_t device;
	/** inode of the open file, compared with the path's for rotation */
	ino_t inode;
	/** not a regular file: written in whole lines of at most PIPE_BUF */
	int is_pipe;
	/** a failure was reported and it has not worked since */
	int failing;
};

struct dnsf_reporter {
	/* Read by the resolver threads, written only before start. */
	/** unique among reporters, for the threads' cached slots */
	uint64_t generation;
	/** wakes the writer: [0] read by it, [1] written non-blocking */
	int wake[2];
	/** told of file failures, or NULL */
	void (*log_error)(void *arg, const char *message);
	/** for log_error */
	void *log_error_arg;
	/** what the event log shows of the client */
	enum dnsf_client_ip client_ip;
	/** seconds between counter lines */
	uint32_t interval;
	/** the metrics file (malloc'd), or NULL */
	char *metrics_path;
	/** the writer thread */
	pthread_t thread;
	/** the writer was started and not yet joined */
	int running;
	/** the last round has run */
	int stopped;

	/* Written now and then by any thread. */
	/** the feed serial in force */
	_Alignas(64) _Atomic uint64_t feed_serial;
	/** failed feed loads */
	_Atomic uint64_t feed_failures;
	/** slots handed out (may pass DNSF_REPORT_SLOTS) */
	_Atomic uint32_t used;
	/** set by dnsf_reporter_stop */
	_Atomic int stopping;
	/** serialises the threads that share the overflow slot */
	_Alignas(64) pthread_mutex_t overflow_lock;

	/* The writer's: its thread's, or the caller's when never started. */
	/** the event log */
	_Alignas(64) struct output_file log;
	/** the counter log */
	struct output_file stats;
	/** a metrics failure was reported and it has not worked since */
	int metrics_failing;
	/** event lines not yet written */
	struct text log_buffer;
	/** events drained but not written to the event log */
	uint64_t unwritten_events;
	/** totals as of the last counter line written */
	struct totals reported;
	/** monotonic ms of the last counter line written (or of the start) */
	int64_t reported_at;
	/** matches per id */
	struct id_table ids;

	/** per-thread slots, each on cache lines of its own */
	struct dnsf_counters slots[DNSF_REPORT_SLOTS];
	/** the slot of threads past DNSF_REPORT_SLOTS */
	struct dnsf_counters overflow;
};

/** Generations of reporters; 0 is no reporter. */
static _Atomic uint64_t next_generation = 1;
/* This thread's slot and the generation of the reporter it belongs to. */
static __thread uint64_t thread_generation;
static __thread struct dnsf_counters *thread_slot;

/* ---- clocks ---- */

static int64_t monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- growing text ---- */

static int text_reserve(struct text *text, size_t more)
{
	if (text->failed)
		return 0;
	if (text->capacity - text->length >= more)
		return 1;
	size_t capacity = text->capacity ? text->capacity : 4096;
	while (capacity - text->length < more)
		capacity *= 2;
	char *bytes = realloc(text->bytes, capacity);
	if (!bytes) {
		text->failed = 1;
		return 0;
	}
	text->bytes = bytes;
	text->capacity = capacity;
	return 1;
}

static void text_append(struct text *text, const char *bytes, size_t length)
{
	if (!text_reserve(text, length))
		return;
	memcpy(text->bytes + text->length, bytes, length);
	text->length += length;
}

static void text_string(struct text *text, const char *string)
{
	text_append(text, string, strlen(string));
}

static void text_printf(struct text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *text, const char *format, ...)
{
	char small[256];
	va_list args;
	va_start(args, format);
	int length = vsnprintf(small, sizeof(small), format, args);
	va_end(args);
	if (length < 0 || (size_t)length >= sizeof(small)) {
		text->failed = 1; /* only short numbers and words are printed */
		return;
	}
	text_append(text, small, (size_t)length);
}

enum escape_style {
	/** a JSON string's contents */
	ESCAPE_JSON,
	/** a Prometheus label value */
	ESCAPE_PROMETHEUS,
};

/* Append bytes as the inside of a quoted string; invalid UTF-8 -> U+FFFD. */
static void text_escaped(struct text *text, const char *bytes, size_t length,
			 enum escape_style style)
{
	const unsigned char *s = (const unsigned char *)bytes;
	for (size_t i = 0; i < length;) {
		unsigned char c = s[i];
		if (c >= 0x80) {
			size_t sequence = dnsf_utf8_char_length(bytes + i, length - i);
			if (sequence)
				text_append(text, bytes + i, sequence);
			else
				text_string(text, "\xef\xbf\xbd");
			i += sequence ? sequence : 1;
			continue;
		}
		if (c == '"' || c == '\\') {
			char pair[2] = { '\\', (char)c };
			text_append(text, pair, 2);
		} else if (c == '\n') {
			text_string(text, "\\n");
		} else if (style == ESCAPE_JSON && (c < 0x20 || c == 0x7f)) {
			text_printf(text, "\\u%04x", c);
		} else {
			text_append(text, bytes + i, 1);
		}
		i++;
	}
}

/* ---- event lines ---- */

/* The mnemonic of a query type, or NULL. */
static const char *qtype_mnemonic(uint16_t qtype)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
		{ 1, "A" },           { 2, "NS" },     { 5, "CNAME" },       { 6, "SOA" },
		{ 10, "NULL" },       { 11, "WKS" },   { 12, "PTR" },        { 13, "HINFO" },
		{ 15, "MX" },         { 16, "TXT" },   { 17, "RP" },         { 18, "AFSDB" },
		{ 24, "SIG" },        { 25, "KEY" },   { 28, "AAAA" },       { 29, "LOC" },
		{ 33, "SRV" },        { 35, "NAPTR" }, { 36, "KX" },         { 37, "CERT" },
		{ 39, "DNAME" },      { 42, "APL" },   { 43, "DS" },         { 44, "SSHFP" },
		{ 45, "IPSECKEY" },   { 46, "RRSIG" }, { 47, "NSEC" },       { 48, "DNSKEY" },
		{ 49, "DHCID" },      { 50, "NSEC3" }, { 51, "NSEC3PARAM" }, { 52, "TLSA" },
		{ 53, "SMIMEA" },     { 55, "HIP" },   { 59, "CDS" },        { 60, "CDNSKEY" },
		{ 61, "OPENPGPKEY" }, { 62, "CSYNC" }, { 63, "ZONEMD" },     { 64, "SVCB" },
		{ 65, "HTTPS" },      { 99, "SPF" },   { 108, "EUI48" },     { 109, "EUI64" },
		{ 249, "TKEY" },      { 250, "TSIG" }, { 251, "IXFR" },      { 252, "AXFR" },
		{ 255, "ANY" },       { 256, "URI" },  { 257, "CAA" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].type == qtype)
			return names[i].name;
	return NULL;
}

/* "2024-04-16T01:02:03.456Z" */
static void text_timestamp(struct text *text, int64_t time_ms)
{
	int64_t seconds = time_ms / 1000, millis = time_ms % 1000;
	if (millis < 0) {
		seconds--;
		millis += 1000;
	}
	time_t clock = (time_t)seconds;
	struct tm tm;
	char date[64];
	if (!gmtime_r(&clock, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		strcpy(date, "1970-01-01T00:00:00");
	text_printf(text, "%s.%03dZ", date, (int)millis);
}

/* The client as a quoted address, truncated as configured, or null. */
static void text_client(struct text *text, const struct dnsf_event *event,
			enum dnsf_client_ip client_ip)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t address[16];
	int family = event->family;
	char printed[INET6_ADDRSTRLEN];

	if (client_ip == DNSF_CLIENT_IP_NONE || (family != AF_INET && family != AF_INET6)) {
		text_string(text, "null");
		return;
	}
	memcpy(address, event->address, sizeof(address));
	if (family == AF_INET6 && memcmp(address, v4_mapped, sizeof(v4_mapped)) == 0) {
		family = AF_INET;
		memmove(address, address + 12, 4);
	}
	if (client_ip == DNSF_CLIENT_IP_TRUNCATE) {
		if (family == AF_INET)
			address[3] = 0; /* /24 */
		else
			memset(address + 6, 0, 10); /* /48 */
	}
	if (!inet_ntop(family, address, printed, sizeof(printed))) {
		text_string(text, "null");
		return;
	}
	text_printf(text, "\"%s\"", printed);
}

/* The qname lowercased, without an unescaped trailing dot (root stays "."). */
static size_t normal_qname(const struct dnsf_event *event, char *out)
{
	size_t length = strnlen(event->qname, sizeof(event->qname));
	for (size_t i = 0; i < length; i++) {
		char c = event->qname[i];
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	if (length > 1 && out[length - 1] == '.') {
		size_t backslashes = 0;
		while (backslashes < length - 1 && out[length - 2 - backslashes] == '\\')
			backslashes++;
		if (backslashes % 2 == 0)
			length--;
	}
	return length;
}

/* Append one event's JSON line (see report.h). */
static void text_event(struct text *text, const struct dnsf_event *event,
		       enum dnsf_client_ip client_ip)
{
	char qname[DNSF_EVENT_QNAME_SIZE];
	size_t qname_length = normal_qname(event, qname);
	const char *mnemonic = qtype_mnemonic(event->qtype);

	text_string(text, "{\"ts\":\"");
	text_timestamp(text, event->time_ms);
	text_string(text, "\",\"client\":");
	text_client(text, event, client_ip);
	text_string(text, ",\"qname\":\"");
	text_escaped(text, qname, qname_length, ESCAPE_JSON);
	if (mnemonic)
		text_printf(text, "\",\"qtype\":\"%s\",\"id\":\"", mnemonic);
	else
		text_printf(text, "\",\"qtype\":\"TYPE%u\",\"id\":\"", (unsigned)event->qtype);
	text_escaped(text, event->id, strnlen(event->id, sizeof(event->id)), ESCAPE_JSON);
	text_printf(text, "\",\"action\":\"%s\",\"via\":\"%s\"}\n",
		    event->monitor ? "monitor" : "block", event->via_cname ? "cname" : "qname");
}

/* ---- matches per id ---- */

static uint64_t id_hash(const char *id)
{
	uint64_t hash = 14695981039346656037ULL; /* FNV-1a */
	for (; *id; id++)
		hash = (hash ^ (unsigned char)*id) * 1099511628211ULL;
	return hash;
}

static struct id_count *id_cell(struct id_count *cells, size_t capacity, const char *id)
{
	size_t i = (size_t)id_hash(id) & (capacity - 1);
	while (cells[i].id[0] && strcmp(cells[i].id, id) != 0)
		i = (i + 1) & (capacity - 1);
	return &cells[i];
}

/* Keep the table at most half full. */
static int id_table_grow(struct id_table *table)
{
	if (table->capacity && table->count < table->capacity / 2)
		return 1;
	size_t capacity = table->capacity ? table->capacity * 2 : 64;
	struct id_count *cells = calloc(capacity, sizeof(*cells));
	if (!cells)
		return 0;
	for (size_t i = 0; i < table->capacity; i++)
		if (table->cells[i].id[0])
			*id_cell(cells, capacity, table->cells[i].id) = table->cells[i];
	free(table->cells);
	table->cells = cells;
	table->capacity = capacity;
	return 1;
}

/* Count a match of id; a failed allocation loses only the per-id count. */
static void id_table_count(struct id_table *table, const char *event_id)
{
	char id[DNSF_EVENT_ID_SIZE + 1];
	size_t length = strnlen(event_id, DNSF_EVENT_ID_SIZE);
	memcpy(id, event_id, length);
	id[length] = 0;
	struct id_count *cell = &table->empty;
	if (length) {
		if (!id_table_grow(table))
			return;
		cell = id_cell(table->cells, table->capacity, id);
		if (!cell->id[0]) {
			memcpy(cell->id, id, length + 1);
			table->count++;
		}
	}
	cell->interval++;
	cell->total++;
}

static int compare_id_counts(const void *a, const void *b)
{
	const struct id_count *x = *(const struct id_count *const *)a;
	const struct id_count *y = *(const struct id_count *const *)b;
	return strcmp(x->id, y->id);
}

/*
 * The counted ids in byte order (only those with an interval count when
 * interval_only), as a malloc'd array; *count is set. NULL when none or out
 * of memory (then *count is 0 and failed is set).
 */
static struct id_count **id_table_sorted(struct id_table *table, int interval_only, size_t *count,
					 int *failed)
{
	struct id_count **sorted = malloc((table->count + 1) * sizeof(*sorted));
	*count = 0;
	if (!sorted) {
		*failed = 1;
		return NULL;
	}
	if (table->empty.total && (!interval_only || table->empty.interval))
		sorted[(*count)++] = &table->empty;
	for (size_t i = 0; i < table->capacity; i++) {
		struct id_count *cell = &table->cells[i];
		if (cell->id[0] && (!interval_only || cell->interval))
			sorted[(*count)++] = cell;
	}
	qsort(sorted, *count, sizeof(*sorted), compare_id_counts);
	return sorted;
}

static void id_table_reset_interval(struct id_table *table)
{
	table->empty.interval = 0;
	for (size_t i = 0; i < table->capacity; i++)
		table->cells[i].interval = 0;
}

/* ---- output files ---- */

/* Tell the operator once, until the file works again. */
static void complain(struct dnsf_reporter *reporter, int *failing, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void complain(struct dnsf_reporter *reporter, int *failing, const char *format, ...)
{
	char message[1024];
	va_list args;
	if (*failing)
		return;
	*failing = 1;
	if (!reporter->log_error)
		return;
	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	reporter->log_error(reporter->log_error_arg, message);
}

/* Open (create) the path for appending. @return 0 or an errno value. */
static int output_open(struct output_file *file)
{
	struct stat status;
	int fd = open(file->path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
		      file->mode);
	if (fd < 0)
		return errno;
	if (fstat(fd, &status) != 0) {
		int error = errno;
		close(fd);
		return error;
	}
	file->fd = fd;
	file->device = status.st_dev;
	file->inode = status.st_ino;
	file->is_pipe = !S_ISREG(status.st_mode);
	return 0;
}

static void output_close(struct output_file *file)
{
	if (file->fd >= 0)
		close(file->fd);
	file->fd = -1;
}

/*
 * Before a write: if the path no longer names the open file (renamed away
 * by a rotation, or removed), close it and open the path anew.
 * @return 1 when the file is open.
 */
static int output_ready(struct dnsf_reporter *reporter, struct output_file *file)
{
	struct stat at_path;
	if (file->fd >= 0 && (stat(file->path, &at_path) != 0 || at_path.st_ino != file->inode ||
			      at_path.st_dev != file->device))
		output_close(file);
	if (file->fd >= 0)
		return 1;
	int error = output_open(file);
	if (error) {
		complain(reporter, &file->failing, "%s: %s: cannot open: %s%s", file->key,
			 file->path, strerror(error),
			 error == ENXIO ? " (a FIFO nobody reads)" : "");
		return 0;
	}
	return 1;
}

/* A SIGPIPE from a write to a FIFO without reader is blocked in the writer
 * thread; take it back so it is not left pending. */
static void discard_sigpipe(void)
{
	sigset_t pipe_signal;
	struct timespec no_wait = { 0, 0 };
	sigemptyset(&pipe_signal);
	sigaddset(&pipe_signal, SIGPIPE);
	while (sigtimedwait(&pipe_signal, NULL, &no_wait) == SIGPIPE) {
	}
}

/* How much of bytes[0, length) to write at once: on a pipe, whole lines
 * within PIPE_BUF, so that every write is atomic (all or EAGAIN). */
static size_t write_piece(const struct output_file *file, const char *bytes, size_t length)
{
	if (!file->is_pipe || length <= PIPE_BUF)
		return length;
	for (size_t end = PIPE_BUF; end > 0; end--)
		if (bytes[end - 1] == '\n')
			return end;
	return PIPE_BUF; /* no line is this long (EVENT_LINE_MAX) */
}

/*
 * Write bytes (whole lines), waiting for a slow file until deadline
 * (monotonic ms). On an error the file is closed, to be reopened later.
 * @return the bytes written.
 */
static size_t output_write(struct dnsf_reporter *reporter, struct output_file *file,
			   const char *bytes, size_t length, int64_t deadline)
{
	size_t done = 0;
	while (done < length && file->fd >= 0) {
		size_t piece = write_piece(file, bytes + done, length - done);
		ssize_t written = write(file->fd, bytes + done, piece);
		if (written > 0) {
			done += (size_t)written;
			continue;
		}
		if (written < 0 && errno == EINTR)
			continue;
		if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int64_t wait = deadline - monotonic_ms();
			struct pollfd ready = { .fd = file->fd, .events = POLLOUT };
			if (wait <= 0)
				break;
			poll(&ready, 1, (int)wait);
			continue;
		}
		int error = written < 0 ? errno : EIO;
		if (error == EPIPE)
			discard_sigpipe();
		complain(reporter, &file->failing, "%s: %s: cannot write: %s", file->key,
			 file->path, strerror(error));
		output_close(file);
	}
	if (done == length)
		file->failing = 0;
	return done;
}

static uint64_t count_lines(const char *bytes, size_t length)
{
	uint64_t lines = 0;
	for (const char *end = bytes + length; (bytes = memchr(bytes, '\n', (size_t)(end - bytes)));
	     bytes++)
		lines++;
	return lines;
}

/* ---- metrics ---- */

static void metric(struct text *text, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	text_printf(text, "# HELP %s ", name);
	text_string(text, help);
	text_printf(text, "\n# TYPE %s %s\n%s %llu\n", name, type, name, (unsigned long long)value);
}

static void metrics_text(struct dnsf_reporter *reporter, const struct totals *totals,
			 uint64_t serial, struct text *text)
{
	size_t count;
	metric(text, "dnsfilter_queries_total", "counter",
	       "Client queries answered, cache hits included, opted-out clients excluded.",
	       totals->queries);
	metric(text, "dnsfilter_optout_queries_total", "counter", "Queries of opted-out clients.",
	       totals->optout);
	metric(text, "dnsfilter_blocked_total", "counter", "Queries answered with the sinkhole.",
	       totals->blocked);
	metric(text, "dnsfilter_monitored_total", "counter",
	       "Queries that matched a monitor entry or matched in monitor mode.",
	       totals->monitored);
	struct id_count **ids = id_table_sorted(&reporter->ids, 0, &count, &text->failed);
	if (count) {
		text_string(text, "# HELP dnsfilter_matches_total Blocked and monitored queries "
				  "per feed entry id (events dropped from a full queue excluded).\n"
				  "# TYPE dnsfilter_matches_total counter\n");
		for (size_t i = 0; i < count; i++) {
			text_string(text, "dnsfilter_matches_total{id=\"");
			text_escaped(text, ids[i]->id, strlen(ids[i]->id), ESCAPE_PROMETHEUS);
			text_printf(text, "\"} %llu\n", (unsigned long long)ids[i]->total);
		}
	}
	free(ids);
	metric(text, "dnsfilter_dropped_events_total", "counter",
	       "Block events missing from the event log (queue full or log not writable).",
	       totals->dropped);
	metric(text, "dnsfilter_feed_failures_total", "counter",
	       "Feed or opt-out file loads that failed.", totals->feed_failures);
	metric(text, "dnsfilter_feed_serial", "gauge", "Serial of the feed in force.", serial);
}

/*
 * Write the metrics to a temporary file beside the path and rename it over
 * the path, so a reader sees the old file or the new one, never a part.
 * @return 0 or an errno value.
 */
static int write_metrics_file(const char *path, const struct text *text)
{
	char *temporary = NULL;
	int fd, error = 0;
	if (text->failed)
		return ENOMEM;
	/* "x.prom.AbC123": the textfile collector reads only *.prom */
	if (asprintf(&temporary, "%s.XXXXXX", path) < 0)
		return ENOMEM;
	fd = mkostemp(temporary, O_CLOEXEC);
	if (fd < 0) {
		error = errno;
		free(temporary);
		return error;
	}
	for (size_t done = 0; done < text->length && !error;) {
		ssize_t written = write(fd, text->bytes + done, text->length - done);
		if (written > 0)
			done += (size_t)written;
		else if (written == 0 || errno != EINTR)
			error = written == 0 ? EIO : errno;
	}
	if (!error && fchmod(fd, 0644) != 0) /* the collector may run as another user */
		error = errno;
	if (close(fd) != 0 && !error)
		error = errno;
	if (!error && rename(temporary, path) != 0)
		error = errno;
	if (error)
		unlink(temporary);
	free(temporary);
	return error;
}

/* ---- the writer ---- */

static void sum_counter(uint64_t *sum, _Atomic uint64_t *counter)
{
	*sum += atomic_load_explicit(counter, memory_order_relaxed);
}

static void read_totals(struct dnsf_reporter *reporter, struct totals *totals)
{
	uint32_t used = atomic_load_explicit(&reporter->used, memory_order_acquire);
	if (used > DNSF_REPORT_SLOTS)
		used = DNSF_REPORT_SLOTS;
	memset(totals, 0, sizeof(*totals));
	for (uint32_t i = 0; i <= used; i++) {
		struct dnsf_counters *slot = i < used ? &reporter->slots[i] : &reporter->overflow;
		sum_counter(&totals->queries, &slot->queries);
		sum_counter(&totals->optout, &slot->optout);
		sum_counter(&totals->blocked, &slot->blocked);
		sum_counter(&totals->monitored, &slot->monitored);
		sum_counter(&totals->dropped, &slot->dropped);
	}
	totals->dropped += reporter->unwritten_events;
	totals->feed_failures =
	    atomic_load_explicit(&reporter->feed_failures, memory_order_relaxed);
}

/* Write the buffered event lines; count those not written as dropped. */
static void flush_log(struct dnsf_reporter *reporter, int64_t deadline)
{
	struct text *buffer = &reporter->log_buffer;
	size_t written = 0;
	if (!buffer->length)
		return;
	if (output_ready(reporter, &reporter->log))
		written =
		    output_write(reporter, &reporter->log, buffer->bytes, buffer->length, deadline);
	reporter->unwritten_events +=
	    count_lines(buffer->bytes + written, buffer->length - written);
	buffer->length = 0;
}

static void handle_event(struct dnsf_reporter *reporter, const struct dnsf_event *event,
			 int64_t deadline)
{
	struct text *buffer = &reporter->log_buffer;
	id_table_count(&reporter->ids, event->id);
	if (!reporter->log.path)
		return;
	size_t before = buffer->length;
	text_event(buffer, event, reporter->client_ip);
	if (buffer->failed) {
		buffer->length = before;
		buffer->failed = 0;
		reporter->unwritten_events++;
	}
	if (buffer->length >= LOG_FLUSH_BYTES)
		flush_log(reporter, deadline);
}

/* Take every event the slot's producer has published so far. */
static void drain_slot(struct dnsf_reporter *reporter, struct dnsf_counters *slot, int64_t deadline)
{
	struct dnsf_event *ring = atomic_load_explicit(&slot->ring, memory_order_acquire);
	if (!ring)
		return;
	uint32_t tail = atomic_load_explicit(&slot->tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&slot->head, memory_order_acquire);
	while (tail != head) {
		handle_event(reporter, &ring[tail & (DNSF_REPORT_RING - 1)], deadline);
		tail++;
		if (tail % 256 == 0) /* give the producer room while the round goes on */
			atomic_store_explicit(&slot->tail, tail, memory_order_release);
	}
	atomic_store_explicit(&slot->tail, tail, memory_order_release);
}

static void drain(struct dnsf_reporter *reporter)
{
	int64_t deadline = monotonic_ms() + DNSF_REPORT_WRITE_MS;
	uint32_t used = atomic_load_explicit(&reporter->used, memory_order_acquire);
	if (used > DNSF_REPORT_SLOTS)
		used = DNSF_REPORT_SLOTS;
	for (uint32_t i = 0; i < used; i++)
		drain_slot(reporter, &reporter->slots[i], deadline);
	drain_slot(reporter, &reporter->overflow, deadline);
	flush_log(reporter, deadline);
}

/* The counter line: deltas since the last line written. */
static void stats_text(struct dnsf_reporter *reporter, const struct totals *now, int64_t covered_ms,
		       uint64_t serial, struct text *text)
{
	const struct totals *last = &reporter->reported;
	size_t count;
	text_string(text, "{\"ts\":\"");
	text_timestamp(text, wall_ms());
	text_printf(text, "\",\"interval\":%lld,\"queries\":%llu,\"optout\":%llu,",
		    (long long)((covered_ms + 500) / 1000),
		    (unsigned long long)(now->queries - last->queries),
		    (unsigned long long)(now->optout - last->optout));
	text_printf(text, "\"blocked\":%llu,\"monitored\":%llu,\"by_id\":{",
		    (unsigned long long)(now->blocked - last->blocked),
		    (unsigned long long)(now->monitored - last->monitored));
	struct id_count **ids = id_table_sorted(&reporter->ids, 1, &count, &text->failed);
	for (size_t i = 0; i < count; i++) {
		text_string(text, i ? ",\"" : "\"");
		text_escaped(text, ids[i]->id, strlen(ids[i]->id), ESCAPE_JSON);
		text_printf(text, "\":%llu", (unsigned long long)ids[i]->interval);
	}
	free(ids);
	text_printf(text,
		    "},\"dropped_events\":%llu,\"feed_serial\":%llu,\"feed_failures\":%llu}\n",
		    (unsigned long long)(now->dropped - last->dropped), (unsigned long long)serial,
		    (unsigned long long)(now->feed_failures - last->feed_failures));
}

/* Append a counter line and rewrite the metrics. */
static void write_counters(struct dnsf_reporter *reporter)
{
	struct totals now;
	struct text text = { 0 };
	int64_t at = monotonic_ms();
	uint64_t serial = atomic_load_explicit(&reporter->feed_serial, memory_order_relaxed);

	read_totals(reporter, &now);
	if (reporter->stats.path) {
		stats_text(reporter, &now, at - reporter->reported_at, serial, &text);
		if (text.failed) {
			complain(reporter, &reporter->stats.failing, "%s: out of memory",
				 reporter->stats.key);
		} else if (output_ready(reporter, &reporter->stats) &&
			   output_write(reporter, &reporter->stats, text.bytes, text.length,
					at + DNSF_REPORT_WRITE_MS) == text.length) {
			/* written whole: the next line starts from here */
			reporter->reported = now;
			reporter->reported_at = at;
			id_table_reset_interval(&reporter->ids);
		}
	}
	if (reporter->metrics_path) {
		text.length = 0;
		text.failed = 0;
		metrics_text(reporter, &now, serial, &text);
		int error = write_metrics_file(reporter->metrics_path, &text);
		if (error)
			complain(reporter, &reporter->metrics_failing,
				 "metrics.path: %s: cannot write: %s", reporter->metrics_path,
				 strerror(error));
		else
			reporter->metrics_failing = 0;
	}
	free(text.bytes);
}

/* Sleep until woken (a ring half full, or stop) or timeout_ms passed. */
static void wait_for_wake(struct dnsf_reporter *reporter, int64_t timeout_ms)
{
	struct pollfd wake = { .fd = reporter->wake[0], .events = POLLIN };
	char bytes[64];
	if (timeout_ms <= 0)
		return;
	if (poll(&wake, 1, (int)timeout_ms) > 0)
		while (read(reporter->wake[0], bytes, sizeof(bytes)) > 0) {
		}
}

static void *writer_main(void *argument)
{
	struct dnsf_reporter *reporter = argument;
	int64_t period = (int64_t)reporter->interval * 1000;
	int64_t next_counters = monotonic_ms() + period;
	for (;;) {
		/* read before draining: what was queued before stop is drained */
		int stopping = atomic_load(&reporter->stopping);
		drain(reporter);
		int64_t now = monotonic_ms();
		if (stopping)
			break;
		if (now >= next_counters) {
			write_counters(reporter);
			next_counters += period;
			if (next_counters <= now) /* fell behind (a slow disk): skip ahead */
				next_counters = now + period;
		}
		int64_t timeout = next_counters - now;
		if (timeout > DNSF_REPORT_WAKE_MS)
			timeout = DNSF_REPORT_WAKE_MS;
		wait_for_wake(reporter, timeout);
	}
	write_counters(reporter);
	return NULL;
}

/* ---- the reporter ---- */

static int copy_path(const char *path, char **out, const char *key, struct dnsf_errors *errors)
{
	*out = NULL;
	if (!path)
		return 1;
	if (!path[0]) {
		dnsf_errors_add(errors, "%s: must be a non-empty path", key);
		return 0;
	}
	*out = strdup(path);
	if (!*out)
		dnsf_errors_add(errors, "%s: out of memory", key);
	return *out != NULL;
}

static void init_slot(struct dnsf_reporter *reporter, struct dnsf_counters *slot)
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
	slot->shared = 0;
}

/* Allocate and set up everything but the files. */
static struct dnsf_reporter *reporter_alloc(const struct dnsf_report_settings *settings)
{
	struct dnsf_reporter *reporter = aligned_alloc(64, sizeof(*reporter));
	if (!reporter)
		return NULL;
	memset(reporter, 0, sizeof(*reporter));
	reporter->log.fd = reporter->stats.fd = -1;
	reporter->wake[0] = reporter->wake[1] = -1;
	reporter->log.key = "log.path";
	reporter->log.mode = 0640; /* client addresses */
	reporter->stats.key = "stats.path";
	reporter->stats.mode = 0644;
	reporter->log_error = settings->log_error;
	reporter->log_error_arg = settings->log_error_arg;
	reporter->client_ip = settings->client_ip;
	reporter->interval = settings->stats_interval;
	reporter->generation = atomic_fetch_add(&next_generation, 1);
	atomic_init(&reporter->feed_serial, 0);
	atomic_init(&reporter->feed_failures, 0);
	atomic_init(&reporter->used, 0);
	atomic_init(&reporter->stopping, 0);
	pthread_mutex_init(&reporter->overflow_lock, NULL);
	for (size_t i = 0; i < DNSF_REPORT_SLOTS; i++)
		init_slot(reporter, &reporter->slots[i]);
	init_slot(reporter, &reporter->overflow);
	reporter->overflow.shared = 1;
	reporter->reported_at = monotonic_ms();
	return reporter;
}

/* Open the files; the metrics file is written once, all zero. */
static void open_files(struct dnsf_reporter *reporter, struct dnsf_errors *errors)
{
	struct output_file *files[] = { &reporter->log, &reporter->stats };
	for (size_t i = 0; i < 2; i++) {
		int error = files[i]->path ? output_open(files[i]) : 0;
		/* a FIFO whose reader is not there yet: opened again each round */
		if (error && error != ENXIO)
			dnsf_errors_add(errors, "%s: %s: cannot open: %s", files[i]->key,
					files[i]->path, strerror(error));
	}
	if (reporter->metrics_path) {
		struct totals zero = { 0 };
		struct text text = { 0 };
		metrics_text(reporter, &zero, 0, &text);
		int error = write_metrics_file(reporter->metrics_path, &text);
		if (error)
			dnsf_errors_add(errors, "metrics.path: %s: cannot write: %s",
					reporter->metrics_path, strerror(error));
		free(text.bytes);
	}
}

struct dnsf_reporter *dnsf_reporter_new(const struct dnsf_report_settings *settings,
					struct dnsf_errors *errors)
{
	size_t errors_before = errors->count;
	struct dnsf_reporter *reporter;

	if (settings->stats_interval < 1 || settings->stats_interval > 86400) {
		dnsf_errors_add(errors, "stats.interval: must be a whole number from 1 to 86400");
		return NULL;
	}
	reporter = reporter_alloc(settings);
	if (!reporter) {
		dnsf_errors_add(errors, "reporter: out of memory");
		return NULL;
	}
	reporter->overflow.ring = malloc(DNSF_REPORT_RING * sizeof(struct dnsf_event));
	if (!reporter->overflow.ring || pipe2(reporter->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		dnsf_errors_add(errors, "reporter: %s", strerror(errno));
	if (copy_path(settings->log_path, &reporter->log.path, "log.path", errors) &&
	    copy_path(settings->stats_path, &reporter->stats.path, "stats.path", errors) &&
	    copy_path(settings->metrics_path, &reporter->metrics_path, "metrics.path", errors) &&
	    errors->count == errors_before)
		open_files(reporter, errors);
	if (errors->count != errors_before) {
		dnsf_reporter_free(reporter);
		return NULL;
	}
	return reporter;
}

int dnsf_reporter_start(struct dnsf_reporter *reporter)
{
	sigset_t all, previous;
	if (reporter->running || reporter->stopped)
		return 0;
	/* signals are for Unbound's threads; SIGPIPE stays pending here */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &previous);
	int failed = pthread_create(&reporter->thread, NULL, writer_main, reporter);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	if (failed)
		return 0;
	reporter->running = 1;
	return 1;
}

static void wake_writer(struct dnsf_reporter *reporter)
{
	char byte = 1;
	/* non-blocking: a full pipe already means "wake up" */
	if (write(reporter->wake[1], &byte, 1) < 0) {
	}
}

void dnsf_reporter_stop(struct dnsf_reporter *reporter)
{
	if (reporter->stopped)
		return;
	atomic_store(&reporter->stopping, 1);
	if (reporter->running) {
		wake_writer(reporter);
		pthread_join(reporter->thread, NULL);
		reporter->running = 0;
	} else {
		/* never started: the last round here, with SIGPIPE held back */
		sigset_t all, previous;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &previous);
		drain(reporter);
		write_counters(reporter);
		pthread_sigmask(SIG_SETMASK, &previous, NULL);
	}
	reporter->stopped = 1;
}

void dnsf_reporter_free(struct dnsf_reporter *reporter)
{
	if (!reporter)
		return;
	if (reporter->running)
		dnsf_reporter_stop(reporter);
	output_close(&reporter->log);
	output_close(&reporter->stats);
	for (size_t i = 0; i < DNSF_REPORT_SLOTS; i++)
		free(atomic_load(&reporter->slots[i].ring));
	free(atomic_load(&reporter->overflow.ring));
	for (int i = 0; i < 2; i++)
		if (reporter->wake[i] >= 0)
			close(reporter->wake[i]);
	pthread_mutex_destroy(&reporter->overflow_lock);
	free(reporter->log.path);
	free(reporter->stats.path);
	free(reporter->metrics_path);
	free(reporter->log_buffer.bytes);
	free(reporter->ids.cells);
	free(reporter);
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
		struct dnsf_event *ring = malloc(DNSF_REPORT_RING * sizeof(struct dnsf_event));
		atomic_store_explicit(&slot->ring, ring, memory_order_release);
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
		wake_writer(slot->reporter);
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

void dnsf_reporter_set_feed(struct dnsf_reporter *reporter, uint64_t serial)
{
	if (reporter)
		atomic_store_explicit(&reporter->feed_serial, serial, memory_order_relaxed);
}

void dnsf_reporter_count_feed_failure(struct dnsf_reporter *reporter)
{
	if (reporter)
		atomic_fetch_add_explicit(&reporter->feed_failures, 1, memory_order_relaxed);
}

/* ---- filling in events ---- */

void dnsf_event_set_client(struct dnsf_event *event, const struct sockaddr *address)
{
	memset(event->address, 0, sizeof(event->address));
	event->family = 0;
	if (address && address->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
		memcpy(event->address, &v4->sin_addr, 4);
		event->family = AF_INET;
	} else if (address && address->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
		memcpy(event->address, &v6->sin6_addr, 16);
		event->family = AF_INET6;
	}
}

int dnsf_event_set_qname_wire(struct dnsf_event *event, const uint8_t *wire, size_t wire_length)
{
	char text[DNSF_WIRE_TEXT_SIZE];
	const size_t fits = sizeof(event->qname) - 1;
	int whole = dnsf_wire_to_text(wire, wire_length, text);
	size_t length = strlen(text);

	if (length > 1 && text[length - 1] == '.') /* the root stays "." */
		length--;
	if (length <= fits) {
		memcpy(event->qname, text, length);
		event->qname[length] = 0;
		return whole;
	}
	/* cut where "..." still fits, not inside a \DDD (the only use of '\\') */
	size_t cut = fits - 3;
	for (size_t back = 1; back <= 3; back++)
		if (text[cut - back] == '\\') {
			cut -= back;
			break;
		}
	memcpy(event->qname, text, cut);
	memcpy(event->qname + cut, "...", 4);
	return 0;
}
