/* SPDX-License-Identifier: MIT */
/* qb-safetensors.c — safetensors headers, shard indexes and config.json.
 *
 * The JSON is parsed by json-glib after a byte scan that bounds what
 * json-glib would otherwise trust (nesting depth, repeated keys); every
 * tensor entry is then checked against the data section: known dtype,
 * non-negative shape whose size matches data_offsets, inside the data,
 * no two tensors sharing a byte.
 */
#include "qb-safetensors-private.h"
#include "qb-file.h"

#include <string.h>

#include "qb-gguf-private.h"    /* qb_gguf_quote_name */

struct _QbSafetensors
{
  char                *path;
  GBytes              *bytes;
  const guint8        *data;
  guint64              size;
  guint64              header_len;     /* JSON bytes after the 8-byte prefix */
  GArray              *tensors;        /* QbSafetensorsTensor, by offset */
  GHashTable          *index;          /* name -> position + 1 */
  GHashTable          *metadata;       /* string -> string */
};

/* The dtype strings of the format and their storage types. */
static const struct { const char *name; QbDType dtype; } st_dtypes[] = {
  { "F64", QB_DTYPE_F64 }, { "F32", QB_DTYPE_F32 }, { "F16", QB_DTYPE_F16 },
  { "BF16", QB_DTYPE_BF16 }, { "I64", QB_DTYPE_I64 }, { "I32", QB_DTYPE_I32 },
  { "I16", QB_DTYPE_I16 }, { "I8", QB_DTYPE_I8 }, { "U64", QB_DTYPE_U64 },
  { "U32", QB_DTYPE_U32 }, { "U16", QB_DTYPE_U16 }, { "U8", QB_DTYPE_U8 },
  { "BOOL", QB_DTYPE_BOOL }, { "F8_E4M3", QB_DTYPE_F8_E4M3 }, { "F8_E5M2", QB_DTYPE_F8_E5M2 },
};

static QbDType
dtype_from_st_name (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (st_dtypes); i++)
    if (strcmp (st_dtypes[i].name, name) == 0)
      return st_dtypes[i].dtype;
  return QB_DTYPE_INVALID;
}

/* ---- JSON with checks ------------------------------------------------- */

static gboolean G_GNUC_PRINTF (5, 6)
json_fail (GError **error, const char *name, guint64 at, QbModelError code, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_set_error (error, QB_MODEL_ERROR, code, "%s: byte %" G_GUINT64_FORMAT ": %s", name, at, msg);
  return FALSE;
}

/* Walks the text once, outside json-glib, for what it does not check. */
static gboolean
json_prescan (const char *text, gsize len, const char *name, guint64 base, guint max_depth,
              GHashTable *top_keys, GError **error)
{
  gboolean in_string = FALSE, is_key = FALSE, expect_key = FALSE, root_is_object = FALSE;
  gboolean seen_root = FALSE;
  gsize string_start = 0;
  guint depth = 0;

  if (!g_utf8_validate_len (text, len, NULL))
    {
      const char *end;
      g_utf8_validate_len (text, len, &end);
      return json_fail (error, name, base + (guint64) (end - text), QB_MODEL_ERROR_INVALID,
                        "JSON: not valid UTF-8 text");
    }

  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) text[i];

      if (in_string)
        {
          /* json-glib ends a string at an escaped NUL: two names that differ
           * after one would become the same tensor. */
          if (c == '\\' && i + 5 < len && text[i + 1] == 'u'
              && strncmp (text + i + 2, "0000", 4) == 0)
            return json_fail (error, name, base + i, QB_MODEL_ERROR_INVALID,
                              "JSON: a string holds a NUL character (\\u0000)");
          if (c == '\\')
            i++;
          else if (c == '"')
            {
              in_string = FALSE;
              if (is_key && top_keys != NULL)
                {
                  char *key = g_strndup (text + string_start, i - string_start);
                  if (g_hash_table_contains (top_keys, key))
                    {
                      g_autofree char *quoted = qb_gguf_quote_name (key);
                      g_free (key);
                      return json_fail (error, name, base + string_start - 1, QB_MODEL_ERROR_INVALID,
                                        "JSON: the key %s appears twice", quoted);
                    }
                  g_hash_table_insert (top_keys, key, GSIZE_TO_POINTER (string_start));
                }
            }
          else if (c < 0x20)
            return json_fail (error, name, base + i, QB_MODEL_ERROR_INVALID,
                              "JSON: control character 0x%02x inside a string", c);
          continue;
        }

      switch (c)
        {
        case '"':
          in_string = TRUE;
          string_start = i + 1;
          is_key = depth == 1 && root_is_object && expect_key;
          expect_key = FALSE;
          break;
        case '{':
        case '[':
          if (!seen_root)
            root_is_object = c == '{';
          seen_root = TRUE;
          if (++depth > max_depth)
            return json_fail (error, name, base + i, QB_MODEL_ERROR_INVALID,
                              "JSON: nested deeper than %u levels", max_depth);
          expect_key = depth == 1 && c == '{';
          break;
        case '}':
        case ']':
          if (depth > 0)
            depth--;
          break;
        case ',':
          expect_key = depth == 1;
          break;
        case ' ': case '\t': case '\n': case '\r':
          break;
        default:
          seen_root = TRUE;
          break;
        }
    }
  return TRUE;
}

JsonNode *
qb_json_parse_checked (const char *text, gsize len, const char *name, guint64 base,
                       guint max_depth, GHashTable *top_keys, GError **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GHashTable) own_keys = NULL;
  JsonNode *root;

  if (top_keys == NULL)
    top_keys = own_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!json_prescan (text, len, name, base, max_depth, top_keys, error))
    return NULL;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, text, (gssize) len, &local_error))
    {
      json_fail (error, name, base, QB_MODEL_ERROR_INVALID, "JSON: %s", local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      json_fail (error, name, base, QB_MODEL_ERROR_INVALID, "JSON: empty");
      return NULL;
    }
  return json_node_ref (root);
}

/* Reads a small JSON file whole, with the checks above. */
static JsonNode *
json_load_file (const char *path, guint max_depth, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GMappedFile) file = qb_file_map (path, &local_error);
  gsize len;

  if (file == NULL)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "%s", local_error->message);
      return NULL;
    }
  len = g_mapped_file_get_length (file);
  if (len > QB_JSON_MAX_FILE)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
                   "%s: %" G_GSIZE_FORMAT " bytes is too large for a JSON description (limit %d)",
                   path, len, QB_JSON_MAX_FILE);
      return NULL;
    }
  return qb_json_parse_checked (len ? g_mapped_file_get_contents (file) : "", len, path, 0,
                                max_depth, NULL, error);
}

/* A string member, or NULL when absent or of another type. */
static const char *
get_string (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

/* ---- one file --------------------------------------------------------- */

typedef struct
{
  QbSafetensors *st;
  GHashTable    *key_pos;     /* raw key -> byte position in the JSON */
  GError       **error;
} Parse;

/* "FILE: byte AT: tensor 'NAME': FIELD: message" */
static gboolean G_GNUC_PRINTF (4, 5)
tensor_fail (Parse *p, const char *tensor, const char *field, const char *fmt, ...)
{
  g_autofree char *quoted = qb_gguf_quote_name (tensor);
  g_autofree char *msg = NULL;
  gpointer pos = g_hash_table_lookup (p->key_pos, tensor);
  guint64 at = 8 + (pos ? GPOINTER_TO_SIZE (pos) - 1 : 0);
  va_list args;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_set_error (p->error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
               "%s: byte %" G_GUINT64_FORMAT ": tensor %s: %s: %s", p->st->path, at, quoted,
               field, msg);
  return FALSE;
}

/* An integer member (or array element) that must be >= 0. */
static gboolean
node_get_count (JsonNode *node, gint64 *out)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return *out >= 0;
}

static gboolean
check_name (const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s; s++)
    if ((guchar) *s < 0x20 || *s == 0x7f)
      return FALSE;
  return TRUE;
}

static gboolean
parse_shape (Parse *p, const char *name, JsonNode *node, QbSafetensorsTensor *t, gint64 *n_elements)
{
  JsonArray *shape;
  guint k;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return tensor_fail (p, name, "shape", "missing or not an array");
  shape = json_node_get_array (node);
  k = json_array_get_length (shape);
  *n_elements = 1;
  for (guint d = 0; d < 4; d++)
    t->ne[d] = 1;
  t->n_dims = MIN (k, 4);
  for (guint i = 0; i < k; i++)
    {
      guint d = k - 1 - i;      /* ggml order: innermost first */
      gint64 v;

      if (!node_get_count (json_array_get_element (shape, i), &v))
        return tensor_fail (p, name, "shape", "dimension %u is not a non-negative integer", i);
      if (__builtin_mul_overflow (*n_elements, v, n_elements))
        return tensor_fail (p, name, "shape", "the element count overflows");
      if (d < 3)
        t->ne[d] = v;
      else
        t->ne[3] *= v;          /* fold outer dimensions; the product is checked above */
    }
  return TRUE;
}

static gboolean
parse_tensor (Parse *p, const char *name, JsonNode *node, guint64 data_size, QbSafetensorsTensor *t)
{
  JsonObject *obj;
  JsonNode *offsets_node;
  JsonArray *offsets;
  const char *dtype;
  gint64 n_elements = 0, begin, end;
  guint64 expected;

  if (!check_name (name))
    return tensor_fail (p, name, "name", "empty or holds control characters");
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return tensor_fail (p, name, "entry", "not a JSON object");
  obj = json_node_get_object (node);

  dtype = get_string (obj, "dtype");
  if (dtype == NULL)
    return tensor_fail (p, name, "dtype", "missing or not a string");
  t->dtype = dtype_from_st_name (dtype);
  if (t->dtype == QB_DTYPE_INVALID)
    {
      g_autofree char *quoted = qb_gguf_quote_name (dtype);
      return tensor_fail (p, name, "dtype", "%s is not a dtype Quantbench reads", quoted);
    }

  if (!parse_shape (p, name, json_object_get_member (obj, "shape"), t, &n_elements))
    return FALSE;

  offsets_node = json_object_get_member (obj, "data_offsets");
  if (offsets_node == NULL || !JSON_NODE_HOLDS_ARRAY (offsets_node) ||
      json_array_get_length (offsets = json_node_get_array (offsets_node)) != 2 ||
      !node_get_count (json_array_get_element (offsets, 0), &begin) ||
      !node_get_count (json_array_get_element (offsets, 1), &end))
    return tensor_fail (p, name, "data_offsets", "must be two non-negative integers");
  if (begin > end)
    return tensor_fail (p, name, "data_offsets", "begin %" G_GINT64_FORMAT " is after end %"
                        G_GINT64_FORMAT, begin, end);
  if ((guint64) end > data_size)
    return tensor_fail (p, name, "data_offsets", "end %" G_GINT64_FORMAT " is past the end of "
                        "the data section (%" G_GUINT64_FORMAT " bytes)", end, data_size);
  if (!qb_dtype_bytes (t->dtype, n_elements, &expected))
    return tensor_fail (p, name, "shape", "the byte size overflows");
  if (expected != (guint64) (end - begin))
    return tensor_fail (p, name, "data_offsets", "%" G_GINT64_FORMAT " bytes, but the shape and "
                        "dtype %s need %" G_GUINT64_FORMAT, end - begin, dtype, expected);

  t->name = g_strdup (name);
  t->begin = (guint64) begin;
  t->n_bytes = expected;
  return TRUE;
}

static int
compare_by_offset (gconstpointer a, gconstpointer b)
{
  const QbSafetensorsTensor *x = a, *y = b;

  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->n_bytes != y->n_bytes)          /* empty tensors first */
    return x->n_bytes < y->n_bytes ? -1 : 1;
  return strcmp (x->name, y->name);
}

static gboolean
parse_metadata (Parse *p, JsonNode *node)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return tensor_fail (p, "__metadata__", "value", "not a JSON object");
  json_object_iter_init_ordered (&iter, json_node_get_object (node));
  while (json_object_iter_next_ordered (&iter, &key, &value))
    if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING)
      g_hash_table_insert (p->st->metadata, g_strdup (key), g_strdup (json_node_get_string (value)));
  return TRUE;
}

static gboolean
parse_entries (Parse *p, JsonObject *root, guint64 data_size)
{
  QbSafetensors *st = p->st;
  const QbSafetensorsTensor *last = NULL;     /* the last tensor with bytes */
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init_ordered (&iter, root);
  while (json_object_iter_next_ordered (&iter, &name, &node))
    {
      QbSafetensorsTensor t = { 0 };

      if (strcmp (name, "__metadata__") == 0)
        {
          if (!parse_metadata (p, node))
            return FALSE;
          continue;
        }
      if (!parse_tensor (p, name, node, data_size, &t))
        return FALSE;
      g_array_append_val (st->tensors, t);
    }

  g_array_sort (st->tensors, compare_by_offset);
  for (guint i = 0; i < st->tensors->len; i++)
    {
      QbSafetensorsTensor *t = &g_array_index (st->tensors, QbSafetensorsTensor, i);

      t->data = st->data + 8 + st->header_len + t->begin;
      if (!g_hash_table_insert (st->index, t->name, GUINT_TO_POINTER (i + 1)))
        return tensor_fail (p, t->name, "name", "appears twice");
      if (t->n_bytes == 0)
        continue;
      if (last != NULL && last->begin + last->n_bytes > t->begin)
        {
          g_autofree char *other = qb_gguf_quote_name (last->name);
          return tensor_fail (p, t->name, "data_offsets",
                              "bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " overlap "
                              "tensor %s (%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ")",
                              t->begin, t->begin + t->n_bytes, other, last->begin,
                              last->begin + last->n_bytes);
        }
      last = t;
    }
  return TRUE;
}

static gboolean
parse_file (QbSafetensors *st, GError **error)
{
  g_autoptr(GHashTable) key_pos = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(JsonNode) root = NULL;
  Parse p = { st, key_pos, error };
  guint64 n;

  if (st->size < 8)
    return json_fail (error, st->path, 0, QB_MODEL_ERROR_INVALID,
                      "header length: the file has only %" G_GUINT64_FORMAT " bytes", st->size);
  memcpy (&n, st->data, 8);
  n = GUINT64_FROM_LE (n);
  if (n > QB_SAFETENSORS_MAX_HEADER)
    return json_fail (error, st->path, 0, QB_MODEL_ERROR_INVALID,
                      "header length: %" G_GUINT64_FORMAT " bytes is more than the %d allowed",
                      n, QB_SAFETENSORS_MAX_HEADER);
  if (n > st->size - 8)
    return json_fail (error, st->path, 0, QB_MODEL_ERROR_INVALID,
                      "header length: %" G_GUINT64_FORMAT " bytes run past the end of the file "
                      "(%" G_GUINT64_FORMAT " bytes)", n, st->size);
  if (n < 2 || st->data[8] != '{')
    return json_fail (error, st->path, 8, QB_MODEL_ERROR_FORMAT,
                      "header: not a safetensors file (no JSON object after the length)");
  st->header_len = n;

  root = qb_json_parse_checked ((const char *) st->data + 8, n, st->path, 8, 8, key_pos, error);
  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return json_fail (error, st->path, 8, QB_MODEL_ERROR_INVALID, "header: not a JSON object");
  return parse_entries (&p, json_node_get_object (root), st->size - 8 - n);
}

static void
tensor_clear (QbSafetensorsTensor *t)
{
  g_free (t->name);
}

QbSafetensors *
qb_safetensors_new_from_bytes (GBytes *bytes, const char *name, GError **error)
{
  g_autoptr(QbSafetensors) st = g_new0 (QbSafetensors, 1);
  gsize size = 0;

  st->path = g_strdup (name ? name : "(memory)");
  st->bytes = g_bytes_ref (bytes);
  st->data = g_bytes_get_data (bytes, &size);
  st->size = size;
  st->tensors = g_array_new (FALSE, TRUE, sizeof (QbSafetensorsTensor));
  g_array_set_clear_func (st->tensors, (GDestroyNotify) tensor_clear);
  st->index = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!parse_file (st, error))
    return NULL;
  return g_steal_pointer (&st);
}

QbSafetensors *
qb_safetensors_open (const char *path, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GMappedFile) file = NULL;
  g_autoptr(GBytes) bytes = NULL;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "%s: is a folder", path);
      return NULL;
    }
  file = qb_file_map (path, &local_error);
  if (file == NULL)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "%s", local_error->message);
      return NULL;
    }
  bytes = g_mapped_file_get_bytes (file);
  return qb_safetensors_new_from_bytes (bytes, path, error);
}

void
qb_safetensors_free (QbSafetensors *st)
{
  if (st == NULL)
    return;
  g_free (st->path);
  g_bytes_unref (st->bytes);
  g_array_unref (st->tensors);
  g_hash_table_unref (st->index);
  g_hash_table_unref (st->metadata);
  g_free (st);
}

const char *qb_safetensors_get_path      (QbSafetensors *st) { return st->path; }
guint64     qb_safetensors_get_file_size (QbSafetensors *st) { return st->size; }
guint       qb_safetensors_get_n_tensors (QbSafetensors *st) { return st->tensors->len; }
GHashTable *qb_safetensors_get_metadata  (QbSafetensors *st) { return st->metadata; }

gconstpointer
qb_safetensors_get_header (QbSafetensors *st, gsize *len)
{
  *len = 8 + st->header_len;
  return st->data;
}

const QbSafetensorsTensor *
qb_safetensors_get_tensor (QbSafetensors *st, guint index)
{
  g_return_val_if_fail (index < st->tensors->len, NULL);
  return &g_array_index (st->tensors, QbSafetensorsTensor, index);
}

const QbSafetensorsTensor *
qb_safetensors_find_tensor (QbSafetensors *st, const char *name)
{
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (st->index, name));
  return i ? qb_safetensors_get_tensor (st, i - 1) : NULL;
}

/* ---- shard index ------------------------------------------------------ */

static gboolean
is_plain_file_name (const char *s)
{
  return *s != '\0' && strchr (s, '/') == NULL && strcmp (s, ".") != 0 && strcmp (s, "..") != 0;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

gboolean
qb_safetensors_parse_index (const char *text, gsize len, const char *name, GStrv *shards_out,
                            GHashTable **weight_map_out, GError **error)
{
  g_autoptr(JsonNode) root = qb_json_parse_checked (text, len, name, 0, 16, NULL, error);
  g_autoptr(GHashTable) weight_map = NULL;
  g_autoptr(GHashTable) shard_set = NULL;
  g_autoptr(GPtrArray) shards = NULL;
  JsonNode *map_node;
  JsonObjectIter iter;
  const char *tensor;
  JsonNode *value;

  if (root == NULL)
    return FALSE;
  map_node = JSON_NODE_HOLDS_OBJECT (root)
             ? json_object_get_member (json_node_get_object (root), "weight_map") : NULL;
  if (map_node == NULL || !JSON_NODE_HOLDS_OBJECT (map_node))
    return json_fail (error, name, 0, QB_MODEL_ERROR_INVALID,
                      "weight_map: missing or not a JSON object");

  weight_map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  shard_set = g_hash_table_new (g_str_hash, g_str_equal);
  shards = g_ptr_array_new ();
  json_object_iter_init_ordered (&iter, json_node_get_object (map_node));
  while (json_object_iter_next_ordered (&iter, &tensor, &value))
    {
      const char *file = JSON_NODE_HOLDS_VALUE (value) &&
                         json_node_get_value_type (value) == G_TYPE_STRING
                         ? json_node_get_string (value) : NULL;
      g_autofree char *quoted = qb_gguf_quote_name (tensor);

      if (file == NULL || !is_plain_file_name (file))
        return json_fail (error, name, 0, QB_MODEL_ERROR_INVALID,
                          "weight_map: %s: must name a file in the same folder", quoted);
      g_hash_table_insert (weight_map, g_strdup (tensor), g_strdup (file));
      if (g_hash_table_add (shard_set, (gpointer) g_hash_table_lookup (weight_map, tensor)))
        g_ptr_array_add (shards, g_hash_table_lookup (weight_map, tensor));
    }
  if (shards->len == 0)
    return json_fail (error, name, 0, QB_MODEL_ERROR_INVALID, "weight_map: empty");

  g_ptr_array_sort (shards, compare_strings);
  *shards_out = g_new0 (char *, shards->len + 1);
  for (guint i = 0; i < shards->len; i++)
    (*shards_out)[i] = g_strdup (g_ptr_array_index (shards, i));
  *weight_map_out = g_steal_pointer (&weight_map);
  return TRUE;
}

gboolean
qb_safetensors_read_index (const char *path, GStrv *shards, GHashTable **weight_map, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GMappedFile) file = qb_file_map (path, &local_error);
  gsize len;

  if (file == NULL)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "%s", local_error->message);
      return FALSE;
    }
  len = g_mapped_file_get_length (file);
  if (len > QB_JSON_MAX_FILE)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
                   "%s: %" G_GSIZE_FORMAT " bytes is too large for a shard index", path, len);
      return FALSE;
    }
  return qb_safetensors_parse_index (len ? g_mapped_file_get_contents (file) : "", len, path,
                                     shards, weight_map, error);
}

/* ---- config.json ------------------------------------------------------ */

JsonObject *
qb_hf_config_load (const char *path, GError **error)
{
  g_autoptr(JsonNode) root = json_load_file (path, 64, error);

  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID, "%s: not a JSON object", path);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

/* A positive integer member that fits a guint, or 0. */
static guint
get_count (JsonObject *o, const char *const *keys)
{
  for (; *keys; keys++)
    {
      JsonNode *n = json_object_get_member (o, *keys);
      if (n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64)
        {
          gint64 v = json_node_get_int (n);
          if (v > 0 && v <= G_MAXUINT)
            return (guint) v;
        }
    }
  return 0;
}

static double
get_number (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return 0;
  if (json_node_get_value_type (n) == G_TYPE_INT64 || json_node_get_value_type (n) == G_TYPE_DOUBLE)
    return json_node_get_double (n);
  return 0;
}

#define KEYS(...) ((const char *const[]) { __VA_ARGS__, NULL })

void
qb_hf_config_get_arch (JsonObject *config, QbArchInfo *arch)
{
  JsonObject *o = config;
  JsonNode *text, *tie;
  const char *type;

  /* Multimodal configs keep the language model's facts in text_config. */
  text = json_object_get_member (config, "text_config");
  if (text && JSON_NODE_HOLDS_OBJECT (text) && !json_object_has_member (config, "num_hidden_layers"))
    o = json_node_get_object (text);

  type = get_string (o, "model_type");
  if (type == NULL)
    type = get_string (config, "model_type");
  if (type != NULL && arch->family == NULL)
    arch->family = g_strdup (type);

#define SET(field, ...) if (arch->field == 0) arch->field = get_count (o, KEYS (__VA_ARGS__))
  SET (n_layer, "num_hidden_layers", "n_layer", "num_layers");
  SET (n_embd, "hidden_size", "n_embd", "d_model");
  SET (n_head, "num_attention_heads", "n_head");
  SET (n_head_kv, "num_key_value_heads", "multi_query_group_num");
  SET (n_ff, "intermediate_size", "n_inner", "ffn_hidden_size");
  SET (n_vocab, "vocab_size");
  SET (n_ctx, "max_position_embeddings", "n_positions", "seq_length");
  SET (head_dim, "head_dim");
  SET (n_expert, "num_local_experts", "num_experts", "n_routed_experts");
  SET (n_expert_used, "num_experts_per_tok");
  SET (n_ff_exp, "moe_intermediate_size");
  SET (n_ff_shexp, "shared_expert_intermediate_size");
#undef SET
  if (arch->rms_eps == 0)
    arch->rms_eps = get_number (o, "rms_norm_eps");
  if (arch->rope_freq_base == 0)
    arch->rope_freq_base = get_number (o, "rope_theta");
  tie = json_object_get_member (o, "tie_word_embeddings");
  if (tie == NULL)
    tie = json_object_get_member (config, "tie_word_embeddings");
  if (tie && JSON_NODE_HOLDS_VALUE (tie) && json_node_get_value_type (tie) == G_TYPE_BOOLEAN)
    arch->tied_embeddings = json_node_get_boolean (tie);
}
