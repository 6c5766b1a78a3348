/* qb-json.h — JSON text from json-glib trees, with numbers written right.
 *
 * json-glib 1.6 (Debian 12) writes a double whose shortest form has an
 * exponent but no point as "1e-08.0" — not JSON, and its own parser
 * refuses it.  These functions write any JsonNode tree as compact JSON
 * with each double in the fewest digits (15 to 17) that read back to the
 * same value; NAN and infinities, which JSON cannot hold, become null.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

void   qb_json_append_node   (GString *out, JsonNode *node);
void   qb_json_append_double (GString *out, double value);
void   qb_json_append_string (GString *out, const char *text);
/* The node as compact JSON text; free with g_free. */
char  *qb_json_to_string     (JsonNode *node);

G_END_DECLS
