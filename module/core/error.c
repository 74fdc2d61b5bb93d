/*
 * error.c - collected error messages and their kinds, and the one way a
 * message is formatted: every string argument escaped (see error.h).
 */
#include "dnsfilter/error.h"
#include "dnsfilter/utf8.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- escaping ---- */

/* The escaped form of the character at text (available > 0) into out (at
 * least 7 bytes, not NUL-terminated); *consumed is set to its input bytes.
 * A double quote is escaped only when quotes is set.
 * @return the length written. */
static size_t escape_one(const char *text, size_t available, char *out, size_t *consumed,
			 int quotes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = (unsigned char)text[0];
	size_t n;

	*consumed = 1;
	if (c == '"' && !quotes) {
		out[0] = '"';
		return 1;
	}
	switch (c) {
	case '\\':
	case '"':
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		memcpy(out, "\\t", 2);
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	n = c < 0x80 ? 0 : dnsf_utf8_char_length(text, available);
	if (n == 0) { /* C0, DEL, or a byte that starts no character */
		out[0] = '\\';
		out[1] = 'x';
		out[2] = hex[c >> 4];
		out[3] = hex[c & 15];
		return 4;
	}
	*consumed = n;
	/* U+0080-U+009F are C2 80-C2 9F; U+2028 and U+2029 are E2 80 A8/A9 */
	unsigned code = 0;
	if (c == 0xc2 && (unsigned char)text[1] < 0xa0)
		code = (unsigned char)text[1];
	else if (c == 0xe2 && (unsigned char)text[1] == 0x80 &&
		 ((unsigned char)text[2] == 0xa8 || (unsigned char)text[2] == 0xa9))
		code = 0x2000 | ((unsigned char)text[2] & 0x2f);
	if (code) {
		out[0] = '\\';
		out[1] = 'u';
		for (int i = 0; i < 4; i++)
			out[2 + i] = hex[(code >> (12 - 4 * i)) & 15];
		return 6;
	}
	memcpy(out, text, n);
	return n;
}

size_t dnsf_escape(char *out, size_t size, const char *text, size_t length)
{
	size_t total = 0, used = 0, consumed;
	int full = 0;
	char piece[8];

	for (size_t i = 0; i < length; i += consumed) {
		size_t n = escape_one(text + i, length - i, piece, &consumed, 1);
		if (!full && size > 0 && used + n < size) {
			memcpy(out + used, piece, n);
			used += n;
		} else {
			full = 1;
		}
		total += n;
	}
	if (size > 0)
		out[used] = 0;
	return total;
}

/* ---- formatting ---- */

/** A growing message; on allocation failure, failed is set. */
struct message {
	char *bytes;
	size_t length, capacity;
	int failed;
};

static void put(struct message *m, const char *bytes, size_t length)
{
	if (m->failed)
		return;
	if (m->capacity - m->length <= length) {
		size_t capacity = m->capacity ? m->capacity : 128;
		while (capacity - m->length <= length)
			capacity *= 2;
		char *grown = realloc(m->bytes, capacity);
		if (!grown) {
			m->failed = 1;
			return;
		}
		m->bytes = grown;
		m->capacity = capacity;
	}
	memcpy(m->bytes + m->length, bytes, length);
	m->length += length;
	m->bytes[m->length] = 0;
}

static void put_padding(struct message *m, size_t count)
{
	for (size_t i = 0; i < count; i++)
		put(m, " ", 1);
}

/* A string argument: at most max bytes of it (printf's precision), cut to
 * DNSF_MESSAGE_ARGUMENT_MAX at a character, escaped (double quotes too when
 * quoted), padded to width. */
static void put_string(struct message *m, const char *text, size_t max, size_t width, int left,
		       int quoted)
{
	size_t length, cut, consumed;
	char piece[8];
	struct message escaped = { 0 };

	if (!text)
		text = "(null)";
	length = strnlen(text, max);
	cut = length;
	if (length > DNSF_MESSAGE_ARGUMENT_MAX) {
		cut = 0;
		while (cut < DNSF_MESSAGE_ARGUMENT_MAX) {
			size_t n = dnsf_utf8_char_length(text + cut, length - cut);
			if (cut + (n ? n : 1) > DNSF_MESSAGE_ARGUMENT_MAX)
				break;
			cut += n ? n : 1;
		}
	}
	for (size_t i = 0; i < cut; i += consumed)
		put(&escaped, piece, escape_one(text + i, cut - i, piece, &consumed, quoted));
	if (cut < length)
		put(&escaped, "...", 3);
	if (escaped.failed)
		m->failed = 1;
	if (!left && width > escaped.length)
		put_padding(m, width - escaped.length);
	if (escaped.length)
		put(m, escaped.bytes, escaped.length);
	if (left && width > escaped.length)
		put_padding(m, width - escaped.length);
	free(escaped.bytes);
}

/** printf's length modifiers. */
enum length_modifier {
	LENGTH_NONE,
	LENGTH_HH,
	LENGTH_H,
	LENGTH_L,
	LENGTH_LL,
	LENGTH_Z,
	LENGTH_J,
	LENGTH_T,
	LENGTH_LONG_DOUBLE
};

/* Format one numeric conversion (spec is its text, the '*'s replaced by
 * numbers) with the argument of its type. */
static void put_number(struct message *m, const char *spec, char conversion,
		       enum length_modifier modifier, va_list *args)
{
	char small[512];
	int n = -1;

	switch (conversion) {
	case 'd':
	case 'i':
		switch (modifier) {
		case LENGTH_L:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, long));
			break;
		case LENGTH_LL:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, long long));
			break;
		case LENGTH_Z:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, ptrdiff_t));
			break;
		case LENGTH_J:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, intmax_t));
			break;
		case LENGTH_T:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, ptrdiff_t));
			break;
		default: /* hh, h and int are passed as int */
			n = snprintf(small, sizeof(small), spec, va_arg(*args, int));
		}
		break;
	case 'u':
	case 'o':
	case 'x':
	case 'X':
		switch (modifier) {
		case LENGTH_L:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, unsigned long));
			break;
		case LENGTH_LL:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, unsigned long long));
			break;
		case LENGTH_Z:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, size_t));
			break;
		case LENGTH_J:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, uintmax_t));
			break;
		case LENGTH_T:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, ptrdiff_t));
			break;
		default:
			n = snprintf(small, sizeof(small), spec, va_arg(*args, unsigned));
		}
		break;
	case 'p':
		n = snprintf(small, sizeof(small), spec, va_arg(*args, void *));
		break;
	default: /* e E f F g G a A */
		if (modifier == LENGTH_LONG_DOUBLE)
			n = snprintf(small, sizeof(small), spec, va_arg(*args, long double));
		else
			n = snprintf(small, sizeof(small), spec, va_arg(*args, double));
	}
	if (n < 0)
		return;
	put(m, small, (size_t)n < sizeof(small) ? (size_t)n : sizeof(small) - 1);
}

/* Read a width or precision: digits, or '*' from the arguments. */
static int read_count(const char **format, va_list *args)
{
	int count = 0;
	if (**format == '*') {
		(*format)++;
		return va_arg(*args, int);
	}
	while (**format >= '0' && **format <= '9')
		count = count * 10 + (*(*format)++ - '0');
	return count;
}

static enum length_modifier read_modifier(const char **format)
{
	const char *f = *format;
	enum length_modifier modifier = LENGTH_NONE;
	if (f[0] == 'h' && f[1] == 'h')
		modifier = LENGTH_HH, f += 2;
	else if (f[0] == 'l' && f[1] == 'l')
		modifier = LENGTH_LL, f += 2;
	else if (f[0] == 'h')
		modifier = LENGTH_H, f++;
	else if (f[0] == 'l')
		modifier = LENGTH_L, f++;
	else if (f[0] == 'z')
		modifier = LENGTH_Z, f++;
	else if (f[0] == 'j')
		modifier = LENGTH_J, f++;
	else if (f[0] == 't')
		modifier = LENGTH_T, f++;
	else if (f[0] == 'L')
		modifier = LENGTH_LONG_DOUBLE, f++;
	*format = f;
	return modifier;
}

/* One conversion, format just past its '%'; *format is moved past it.
 * quoted: the format has a double quote right before the '%'. */
static void put_conversion(struct message *m, const char **format, va_list *args, int quoted)
{
	const char *start = *format;
	int left = 0, width, precision = -1;
	char spec[64];

	while (**format && strchr("-+ #0'", **format)) {
		left |= **format == '-';
		(*format)++;
	}
	size_t flags = (size_t)(*format - start);
	width = read_count(format, args);
	if (width < 0) {
		left = 1;
		width = -width;
	}
	if (**format == '.') {
		(*format)++;
		precision = read_count(format, args);
	}
	enum length_modifier modifier = read_modifier(format);
	char conversion = **format;
	if (!conversion)
		return;
	(*format)++;
	if (conversion == '%') {
		put(m, "%", 1);
	} else if (conversion == 's') {
		put_string(m, va_arg(*args, const char *),
			   precision >= 0 ? (size_t)precision : SIZE_MAX, (size_t)width, left,
			   quoted);
	} else if (conversion == 'c') {
		char c = (char)va_arg(*args, int);
		put_string(m, &c, 1, (size_t)width, left, quoted);
	} else if (strchr("diouxXpeEfFgGaA", conversion) && flags < 16) {
		int n = snprintf(spec, sizeof(spec), "%%%.*s%d", (int)flags, start, width);
		if (precision >= 0)
			n += snprintf(spec + n, sizeof(spec) - (size_t)n, ".%d", precision);
		static const char *const modifiers[] = { "",  "hh", "h", "l", "ll",
							 "z", "j",  "t", "L" };
		snprintf(spec + n, sizeof(spec) - (size_t)n, "%s%c", modifiers[modifier],
			 conversion);
		put_number(m, spec, conversion, modifier, args);
	}
	/* anything else (%n included) is not a conversion this formats */
}

char *dnsf_message_vformat(const char *format, va_list args)
{
	struct message m = { 0 };
	va_list copy;

	va_copy(copy, args);
	put(&m, "", 0);
	while (*format) {
		const char *percent = strchr(format, '%');
		size_t literal = percent ? (size_t)(percent - format) : strlen(format);
		put(&m, format, literal);
		format += literal;
		if (*format == '%') {
			int quoted = literal > 0 && format[-1] == '"';
			format++;
			put_conversion(&m, &format, &copy, quoted);
		}
	}
	va_end(copy);
	if (m.failed) {
		free(m.bytes);
		return NULL;
	}
	return m.bytes;
}

char *dnsf_message_format(const char *format, ...)
{
	va_list args;
	char *message;

	va_start(args, format);
	message = dnsf_message_vformat(format, args);
	va_end(args);
	return message;
}

/* ---- the error list ---- */

static void add(struct dnsf_errors *errors, enum dnsf_error_kind kind, const char *format,
		va_list args)
{
	char *message = NULL;

	if ((unsigned)kind >= DNSF_ERROR_KINDS)
		kind = DNSF_ERROR_INVALID;
	errors->count++;
	errors->count_by_kind[kind]++;
	if (errors->count_kept >= DNSF_ERRORS_KEPT)
		return;
	message = dnsf_message_vformat(format, args);
	if (message) {
		errors->kinds[errors->count_kept] = kind;
		errors->messages[errors->count_kept++] = message;
	}
}

void dnsf_errors_add(struct dnsf_errors *errors, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	add(errors, DNSF_ERROR_INVALID, format, args);
	va_end(args);
}

void dnsf_errors_add_kind(struct dnsf_errors *errors, enum dnsf_error_kind kind, const char *format,
			  ...)
{
	va_list args;

	va_start(args, format);
	add(errors, kind, format, args);
	va_end(args);
}

size_t dnsf_errors_count_kind(const struct dnsf_errors *errors, enum dnsf_error_kind kind)
{
	return (unsigned)kind < DNSF_ERROR_KINDS ? errors->count_by_kind[kind] : 0;
}

const char *dnsf_error_kind_name(enum dnsf_error_kind kind)
{
	switch (kind) {
	case DNSF_ERROR_IO:
		return "io";
	case DNSF_ERROR_LIMIT:
		return "limit";
	case DNSF_ERROR_MEMORY:
		return "memory";
	default:
		return "invalid";
	}
}

void dnsf_errors_clear(struct dnsf_errors *errors)
{
	for (size_t i = 0; i < errors->count_kept; i++)
		free(errors->messages[i]);
	memset(errors, 0, sizeof(*errors));
}

char *dnsf_errors_join(const struct dnsf_errors *errors, const char *sep)
{
	size_t length = 1, sep_length = strlen(sep);
	char tail[64] = "";
	char *joined, *cursor;

	if (errors->count > errors->count_kept)
		snprintf(tail, sizeof(tail), "%s(and %zu more errors)", sep,
			 errors->count - errors->count_kept);
	for (size_t i = 0; i < errors->count_kept; i++)
		length += strlen(errors->messages[i]) + sep_length;
	length += strlen(tail);
	joined = malloc(length);
	if (!joined)
		return NULL;
	cursor = joined;
	*cursor = 0;
	for (size_t i = 0; i < errors->count_kept; i++) {
		size_t n = strlen(errors->messages[i]);
		if (i > 0) {
			memcpy(cursor, sep, sep_length);
			cursor += sep_length;
		}
		memcpy(cursor, errors->messages[i], n);
		cursor += n;
	}
	strcpy(cursor, errors->count_kept ? tail : tail + (tail[0] ? sep_length : 0));
	return joined;
}
