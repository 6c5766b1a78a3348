/* SPDX-License-Identifier: MIT */
/* qb-json.h — writing JSON text, with numbers written right.
 *
 * json-glib 1.6 (Debian 12) writes a double whose shortest form has an
 * exponent but no point as "1e-08.0" — not JSON, and its own parser
 * refuses it.  These functions write JSON directly into a GString (fast:
 * no tree for large exports) or from a json-glib tree, each double in the
 * fewest digits (15 to 17) that read back to the same value, each float
 * in the fewest (6 to 9) that read back to the same float.  NAN and
 * infinities, which JSON cannot hold, are written as null by the plain
 * double functions.
 *
 * A measured number (a metric, a total, a result) follows the one
 * convention of every JSON Quantbench writes — exports and command-line
 * output alike: a value not measured (NAN) is null, and an infinite one
 * (the SQNR of a lossless tensor) is the string "inf" or "-inf".  The
 * *_number functions write that.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

void   qb_json_append_double (GString *out, double value);
void   qb_json_append_float  (GString *out, float value);
void   qb_json_append_string (GString *out, const char *text);
void   qb_json_append_node   (GString *out, JsonNode *node);
/* The node as compact JSON text; free with g_free. (transfer full) */
char  *qb_json_to_string     (JsonNode *node);

/* A streaming writer: it puts the commas and colons.  `key` names the
 * member inside an object and must be NULL inside an array. */
#define QB_JSON_MAX_DEPTH 32

typedef struct {
  GString  *out;
  guint     depth;
  gboolean  has_items[QB_JSON_MAX_DEPTH];
} QbJsonWriter;

void   qb_json_writer_init   (QbJsonWriter *w, GString *out);
void   qb_json_begin_object  (QbJsonWriter *w, const char *key);
void   qb_json_end_object    (QbJsonWriter *w);
void   qb_json_begin_array   (QbJsonWriter *w, const char *key);
void   qb_json_end_array     (QbJsonWriter *w);
void   qb_json_write_string  (QbJsonWriter *w, const char *key, const char *value);   /* NULL: null */
void   qb_json_write_int     (QbJsonWriter *w, const char *key, gint64 value);
void   qb_json_write_uint    (QbJsonWriter *w, const char *key, guint64 value);
void   qb_json_write_double  (QbJsonWriter *w, const char *key, double value);
void   qb_json_write_bool    (QbJsonWriter *w, const char *key, gboolean value);
void   qb_json_write_null    (QbJsonWriter *w, const char *key);
/* A json-glib tree as the value (NULL: null). */
void   qb_json_write_node    (QbJsonWriter *w, const char *key, JsonNode *node);
/* A measured number: NAN null, infinities "inf" and "-inf" (see above). */
void   qb_json_write_number  (QbJsonWriter *w, const char *key, double value);

/* The same conventions for a json-glib builder; `key` names the member
 * inside an object and must be NULL inside an array. */
void   qb_json_builder_add_number (JsonBuilder *b, const char *key, double value);
/* NULL: null; text that is not UTF-8 (from a model file) is made valid. */
void   qb_json_builder_add_string (JsonBuilder *b, const char *key, const char *value);

/* Reading.  json-glib's parser recurses once per level of nesting, so text
 * nested tens of thousands deep overflows the stack: every JSON input is
 * checked first.  No input Quantbench reads needs more than a few levels. */
#define QB_JSON_MAX_NESTING 64

/* FALSE, with an error (G_IO_ERROR_INVALID_DATA) naming `name` and the
 * byte, when arrays and objects nest deeper than max_depth (strings are
 * skipped; len -1: NUL-terminated). */
gboolean qb_json_check_depth (const char *text, gssize len, guint max_depth,
                              const char *name, GError **error);
/* json_parser_load_from_data after qb_json_check_depth. */
gboolean qb_json_parser_load (JsonParser *parser, const char *text, gssize len, guint max_depth,
                              const char *name, GError **error);

G_END_DECLS
