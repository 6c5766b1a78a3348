/* SPDX-License-Identifier: MIT */
/* qb-json.c — writing JSON text, with numbers written right. */
#include "qb-json.h"

#include <math.h>
#include <string.h>

void
qb_json_append_double (GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "null");
      return;
    }
  /* The shortest of 15, 16 or 17 significant digits that is exact. */
  for (int digits = 15; digits <= 17; digits++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (buf, sizeof buf, format, value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  g_string_append (out, buf);
}

void
qb_json_append_float (GString *out, float value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "null");
      return;
    }
  for (int digits = 6; digits <= 9; digits++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (buf, sizeof buf, format, value);
      if ((float) g_ascii_strtod (buf, NULL) == value)
        break;
    }
  g_string_append (out, buf);
}

void
qb_json_append_string (GString *out, const char *text)
{
  const guchar *p = (const guchar *) text;

  g_string_append_c (out, '"');
  while (*p)
    {
      const guchar *run = p;

      /* Plain characters go in runs (base64 data is megabytes of them). */
      while (*p >= 0x20 && *p != '"' && *p != '\\')
        p++;
      g_string_append_len (out, (const char *) run, p - run);
      if (*p == '\0')
        break;
      switch (*p)
        {
        case '"':  g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        default:    g_string_append_printf (out, "\\u%04x", *p);
        }
      p++;
    }
  g_string_append_c (out, '"');
}

static void
append_value (GString *out, JsonNode *node)
{
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
      break;
    case G_TYPE_DOUBLE:
      qb_json_append_double (out, json_node_get_double (node));
      break;
    case G_TYPE_BOOLEAN:
      g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
      break;
    case G_TYPE_STRING:
      qb_json_append_string (out, json_node_get_string (node));
      break;
    default:
      g_string_append (out, "null");
    }
}

void
qb_json_append_node (GString *out, JsonNode *node)
{
  if (node == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            qb_json_append_string (out, name);
            g_string_append_c (out, ':');
            qb_json_append_node (out, member);
          }
        g_string_append_c (out, '}');
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            qb_json_append_node (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_VALUE:
      append_value (out, node);
      break;
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    }
}

char *
qb_json_to_string (JsonNode *node)
{
  GString *out = g_string_new (NULL);

  qb_json_append_node (out, node);
  return g_string_free (out, FALSE);
}

/* -- the streaming writer ----------------------------------------------------- */

void
qb_json_writer_init (QbJsonWriter *w, GString *out)
{
  memset (w, 0, sizeof *w);
  w->out = out;
}

/* The comma before an item and its key. */
static void
item (QbJsonWriter *w, const char *key)
{
  if (w->has_items[w->depth])
    g_string_append_c (w->out, ',');
  w->has_items[w->depth] = TRUE;
  if (key != NULL)
    {
      qb_json_append_string (w->out, key);
      g_string_append_c (w->out, ':');
    }
}

static void
open_level (QbJsonWriter *w, const char *key, char bracket)
{
  item (w, key);
  g_string_append_c (w->out, bracket);
  g_return_if_fail (w->depth + 1 < QB_JSON_MAX_DEPTH);
  w->has_items[++w->depth] = FALSE;
}

static void
close_level (QbJsonWriter *w, char bracket)
{
  g_return_if_fail (w->depth > 0);
  w->depth--;
  g_string_append_c (w->out, bracket);
}

void qb_json_begin_object (QbJsonWriter *w, const char *key) { open_level (w, key, '{'); }
void qb_json_end_object   (QbJsonWriter *w)                  { close_level (w, '}'); }
void qb_json_begin_array  (QbJsonWriter *w, const char *key) { open_level (w, key, '['); }
void qb_json_end_array    (QbJsonWriter *w)                  { close_level (w, ']'); }

void
qb_json_write_string (QbJsonWriter *w, const char *key, const char *value)
{
  item (w, key);
  if (value != NULL)
    qb_json_append_string (w->out, value);
  else
    g_string_append (w->out, "null");
}

void
qb_json_write_int (QbJsonWriter *w, const char *key, gint64 value)
{
  item (w, key);
  g_string_append_printf (w->out, "%" G_GINT64_FORMAT, value);
}

void
qb_json_write_uint (QbJsonWriter *w, const char *key, guint64 value)
{
  char buf[24], *p = buf + sizeof buf;

  item (w, key);
  /* Counts are most of a large export: digits by hand, not printf. */
  *--p = '\0';
  do
    *--p = '0' + value % 10;
  while ((value /= 10) != 0);
  g_string_append (w->out, p);
}

void
qb_json_write_double (QbJsonWriter *w, const char *key, double value)
{
  item (w, key);
  qb_json_append_double (w->out, value);
}

void
qb_json_write_bool (QbJsonWriter *w, const char *key, gboolean value)
{
  item (w, key);
  g_string_append (w->out, value ? "true" : "false");
}

void
qb_json_write_null (QbJsonWriter *w, const char *key)
{
  item (w, key);
  g_string_append (w->out, "null");
}

void
qb_json_write_node (QbJsonWriter *w, const char *key, JsonNode *node)
{
  item (w, key);
  qb_json_append_node (w->out, node);
}

void
qb_json_write_number (QbJsonWriter *w, const char *key, double value)
{
  if (isinf (value))
    qb_json_write_string (w, key, value > 0 ? "inf" : "-inf");
  else
    qb_json_write_double (w, key, value);
}

void
qb_json_builder_add_number (JsonBuilder *b, const char *key, double value)
{
  if (key != NULL)
    json_builder_set_member_name (b, key);
  if (isinf (value))
    json_builder_add_string_value (b, value > 0 ? "inf" : "-inf");
  else if (isnan (value))
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, value);
}

void
qb_json_builder_add_string (JsonBuilder *b, const char *key, const char *value)
{
  if (key != NULL)
    json_builder_set_member_name (b, key);
  if (value != NULL)
    {
      g_autofree char *valid = g_utf8_make_valid (value, -1);
      json_builder_add_string_value (b, valid);
    }
  else
    json_builder_add_null_value (b);
}

/* -- reading ---------------------------------------------------------------- */

gboolean
qb_json_check_depth (const char *text, gssize len, guint max_depth, const char *name,
                     GError **error)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  gboolean in_string = FALSE;
  guint depth = 0;

  for (gsize i = 0; i < n; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if ((c == '[' || c == '{') && ++depth > max_depth)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s: JSON nested deeper than %u levels (at byte %" G_GSIZE_FORMAT ")",
                       name, max_depth, i);
          return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

gboolean
qb_json_parser_load (JsonParser *parser, const char *text, gssize len, guint max_depth,
                     const char *name, GError **error)
{
  return qb_json_check_depth (text, len, max_depth, name, error) &&
         json_parser_load_from_data (parser, text, len, error);
}
