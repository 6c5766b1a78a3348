/* SPDX-License-Identifier: MIT */
/* qb-gguf.c — the GGUF reader: parses the header of a mapped file and
 * checks every count, length and offset before it is used.
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 tensor count,
 * u64 key count, the key/value pairs, the tensor infos, zero padding to
 * the alignment, then the data section.  Tensor offsets are relative to
 * the data section.
 *
 * Allocations are sized only by counts already checked against the bytes
 * left in the file, so a hostile header can make the reader allocate at
 * most a small multiple of its own size.
 */
#include "qb-gguf-private.h"
#include "qb-file.h"

#include <string.h>

#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "the GGUF reader copies little-endian numbers straight from the file"
#endif

G_DEFINE_QUARK (qb-gguf-error-quark, qb_gguf_error)

/* The fewest bytes a key/value pair or a tensor info can take: a length
 * prefix, a one-byte name, the type, and the smallest value or offset. */
#define MIN_KV_BYTES     (8 + 1 + 4 + 1)
#define MIN_TENSOR_BYTES (8 + 1 + 4 + 4 + 8)

struct _QbGguf
{
  gint              ref_count;
  char             *path;
  GBytes           *bytes;
  const guint8     *data;
  guint64           size;

  guint32           version;
  guint64           alignment;
  guint64           data_offset;

  guint64           n_kv;
  QbGgufKv         *kvs;
  guint64           n_tensors;
  QbGgufTensorInfo *tensors;

  GHashTable       *kv_index;      /* key -> index + 1 */
  GHashTable       *tensor_index;  /* name -> index + 1 */
  GStringChunk     *strings;       /* every decoded string, NUL-terminated */
  GPtrArray        *arrays;        /* decoded array storage */
};

/* Where the parser is, so that a message can name the field. */
typedef struct
{
  QbGguf       *gguf;
  const guint8 *data;
  guint64       size;
  guint64       pos;
  GError      **error;

  const char   *section;       /* "header", "key", "tensor" */
  guint64       index;
  const char   *item_name;     /* the key or tensor name once read */
  guint         depth;         /* array nesting */
  guint64       element[QB_GGUF_MAX_ARRAY_DEPTH + 1];
} Reader;

/* Arrays of length 0 point here rather than at NULL, which means "absent". */
static const guint64 empty_array[1];

const char *
qb_gguf_type_name (QbGgufType type)
{
  static const char *const names[] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
  };
  if ((guint) type < G_N_ELEMENTS (names))
    return names[type];
  return "invalid";
}

char *
qb_gguf_quote_name (const char *name)
{
  gboolean valid = g_utf8_validate (name, -1, NULL);
  GString *s = g_string_new ("'");
  const char *p = name;

  /* Names that failed validation are quoted too: escape what a terminal
   * would interpret (and any byte of invalid UTF-8); keep messages short. */
  for (guint n = 0; *p; n++)
    {
      guchar c = (guchar) *p;
      const char *next = valid ? g_utf8_next_char (p) : p + 1;

      if (n == 80)
        {
          g_string_append (s, "…");
          break;
        }
      if (c < 0x20 || c == 0x7f || (!valid && c >= 0x80))
        g_string_append_printf (s, "\\x%02x", c);
      else
        g_string_append_len (s, p, next - p);
      p = next;
    }
  g_string_append_c (s, '\'');
  return g_string_free (s, FALSE);
}

/* ---- messages ---------------------------------------------------------- */

static char *
describe_location (Reader *r)
{
  GString *s = g_string_new (r->section);

  if (g_strcmp0 (r->section, "header") != 0)
    {
      g_string_append_printf (s, " %" G_GUINT64_FORMAT, r->index);
      if (r->item_name != NULL)
        {
          g_autofree char *quoted = qb_gguf_quote_name (r->item_name);
          g_string_append_printf (s, " %s", quoted);
        }
    }
  for (guint d = 0; d < r->depth; d++)
    g_string_append_printf (s, ": element %" G_GUINT64_FORMAT, r->element[d]);
  return g_string_free (s, FALSE);
}

/* Sets "FILE: byte AT: LOCATION: FIELD: message" and returns FALSE. */
static gboolean G_GNUC_PRINTF (5, 6)
fail (Reader *r, guint64 at, QbGgufError code, const char *field, const char *fmt, ...)
{
  g_autofree char *where = describe_location (r);
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_set_error (r->error, QB_GGUF_ERROR, code, "%s: byte %" G_GUINT64_FORMAT ": %s: %s: %s",
               r->gguf->path, at, where, field, msg);
  return FALSE;
}

/* ---- primitives ------------------------------------------------------- */

static gboolean
take (Reader *r, guint64 n, const char *field, const guint8 **out)
{
  if (n > r->size - r->pos)
    return fail (r, r->pos, QB_GGUF_ERROR_TRUNCATED, field,
                 "needs %" G_GUINT64_FORMAT " bytes but the file ends %" G_GUINT64_FORMAT
                 " bytes later", n, r->size - r->pos);
  *out = r->data + r->pos;
  r->pos += n;
  return TRUE;
}

static gboolean
read_u32 (Reader *r, const char *field, guint32 *out)
{
  const guint8 *p = NULL;

  if (!take (r, 4, field, &p))
    return FALSE;
  memcpy (out, p, 4);
  return TRUE;
}

static gboolean
read_u64 (Reader *r, const char *field, guint64 *out)
{
  const guint8 *p = NULL;

  if (!take (r, 8, field, &p))
    return FALSE;
  memcpy (out, p, 8);
  return TRUE;
}

/* Keys and tensor names must be non-empty UTF-8 without control
 * characters: they end up in messages, tables and hash tables. */
static gboolean
check_name (Reader *r, guint64 at, const char *field, const guint8 *s, guint64 len)
{
  if (len == 0)
    return fail (r, at, QB_GGUF_ERROR_INVALID, field, "is empty");
  if (!g_utf8_validate_len ((const char *) s, len, NULL))
    return fail (r, at, QB_GGUF_ERROR_INVALID, field, "is not valid UTF-8");
  for (guint64 i = 0; i < len; i++)
    if (s[i] < 0x20 || s[i] == 0x7f)
      return fail (r, at, QB_GGUF_ERROR_INVALID, field,
                   "holds the control character 0x%02x at position %" G_GUINT64_FORMAT, s[i], i);
  return TRUE;
}

/* A length-prefixed string; names are checked, values may hold any bytes. */
static gboolean
read_string (Reader *r, const char *field, gboolean is_name, QbGgufString *out)
{
  g_autofree char *length_field = g_strconcat (field, " length", NULL);
  guint64 at = r->pos, len;
  const guint8 *s = NULL;

  if (!read_u64 (r, length_field, &len))
    return FALSE;
  if (len > r->size - r->pos)
    return fail (r, at, QB_GGUF_ERROR_TRUNCATED, length_field,
                 "%" G_GUINT64_FORMAT " bytes run past the end of the file (%" G_GUINT64_FORMAT
                 " bytes left)", len, r->size - r->pos);
  if (!take (r, len, field, &s))
    return FALSE;
  if (is_name && !check_name (r, at, field, s, len))
    return FALSE;
  out->len = len;
  out->str = g_string_chunk_insert_len (r->gguf->strings, (const char *) s, (gssize) len);
  return TRUE;
}

static gboolean
read_type (Reader *r, const char *field, QbGgufType *out)
{
  guint64 at = r->pos;
  guint32 t;

  if (!read_u32 (r, field, &t))
    return FALSE;
  if (!qb_gguf_type_is_valid (t))
    return fail (r, at, QB_GGUF_ERROR_INVALID, field, "%u is not a GGUF value type", t);
  *out = t;
  return TRUE;
}

/* ---- values ----------------------------------------------------------- */

static gboolean read_array (Reader *r, QbGgufKv *kv);

static gboolean
read_scalar (Reader *r, QbGgufKv *kv)
{
  const guint8 *p = NULL;
  guint size = qb_gguf_type_fixed_size (kv->type);

  if (kv->type == QB_GGUF_TYPE_STRING)
    return read_string (r, "value", FALSE, &kv->v.str);
  if (kv->type == QB_GGUF_TYPE_ARRAY)
    return read_array (r, kv);
  if (!take (r, size, "value", &p))
    return FALSE;

  switch (kv->type)
    {
    case QB_GGUF_TYPE_UINT8:   kv->v.u64 = p[0]; break;
    case QB_GGUF_TYPE_INT8:    kv->v.i64 = (gint8) p[0]; break;
    case QB_GGUF_TYPE_BOOL:    kv->v.b = p[0]; break;     /* the byte as stored */
    case QB_GGUF_TYPE_UINT16:  { guint16 v; memcpy (&v, p, 2); kv->v.u64 = v; break; }
    case QB_GGUF_TYPE_INT16:   { gint16 v;  memcpy (&v, p, 2); kv->v.i64 = v; break; }
    case QB_GGUF_TYPE_UINT32:  { guint32 v; memcpy (&v, p, 4); kv->v.u64 = v; break; }
    case QB_GGUF_TYPE_INT32:   { gint32 v;  memcpy (&v, p, 4); kv->v.i64 = v; break; }
    case QB_GGUF_TYPE_FLOAT32: { float v;   memcpy (&v, p, 4); kv->v.f64 = v; break; }
    case QB_GGUF_TYPE_UINT64:  memcpy (&kv->v.u64, p, 8); break;
    case QB_GGUF_TYPE_INT64:   memcpy (&kv->v.i64, p, 8); break;
    case QB_GGUF_TYPE_FLOAT64: memcpy (&kv->v.f64, p, 8); break;
    default:                   g_assert_not_reached ();
    }
  return TRUE;
}

/* Smallest encoding of one element: fixed types their size, a string its
 * length prefix, an array its type and count. */
static guint64
min_element_bytes (QbGgufType type)
{
  if (type == QB_GGUF_TYPE_STRING)
    return 8;
  if (type == QB_GGUF_TYPE_ARRAY)
    return 4 + 8;
  return qb_gguf_type_fixed_size (type);
}

static gsize
element_memory_size (QbGgufType type)
{
  if (type == QB_GGUF_TYPE_STRING)
    return sizeof (QbGgufString);
  if (type == QB_GGUF_TYPE_ARRAY)
    return sizeof (QbGgufKv);
  return qb_gguf_type_fixed_size (type);
}

static gboolean
read_array_elements (Reader *r, QbGgufKv *kv)
{
  if (kv->array_type == QB_GGUF_TYPE_STRING)
    {
      QbGgufString *elems = (QbGgufString *) kv->array;
      for (guint64 i = 0; i < kv->n; i++)
        {
          r->element[r->depth - 1] = i;
          if (!read_string (r, "string", FALSE, &elems[i]))
            return FALSE;
        }
      return TRUE;
    }

  /* Arrays of arrays: each element is a key-less pair. */
  QbGgufKv *elems = (QbGgufKv *) kv->array;
  for (guint64 i = 0; i < kv->n; i++)
    {
      r->element[r->depth - 1] = i;
      elems[i].key.str = "";
      elems[i].type = QB_GGUF_TYPE_ARRAY;
      elems[i].file_offset = r->pos;
      if (!read_array (r, &elems[i]))
        return FALSE;
    }
  return TRUE;
}

static gboolean
read_array (Reader *r, QbGgufKv *kv)
{
  guint64 at, min_bytes;
  gsize mem_size;
  gpointer storage;
  gboolean ok;

  if (r->depth >= QB_GGUF_MAX_ARRAY_DEPTH)
    return fail (r, r->pos, QB_GGUF_ERROR_INVALID, "array",
                 "arrays nested deeper than %d levels", QB_GGUF_MAX_ARRAY_DEPTH);
  if (!read_type (r, "array element type", &kv->array_type))
    return FALSE;
  at = r->pos;
  if (!read_u64 (r, "array length", &kv->n))
    return FALSE;

  /* Check the count against the bytes left before allocating anything. */
  min_bytes = min_element_bytes (kv->array_type);
  if (kv->n > (r->size - r->pos) / min_bytes)
    return fail (r, at, QB_GGUF_ERROR_TRUNCATED, "array length",
                 "%" G_GUINT64_FORMAT " elements of type %s need at least %" G_GUINT64_FORMAT
                 " bytes each, but only %" G_GUINT64_FORMAT " bytes are left", kv->n,
                 qb_gguf_type_name (kv->array_type), min_bytes, r->size - r->pos);
  if (kv->n == 0)
    {
      kv->array = empty_array;
      return TRUE;
    }

  mem_size = element_memory_size (kv->array_type);
  if (qb_gguf_type_fixed_size (kv->array_type) != 0)
    {
      const guint8 *p = NULL;
      take (r, kv->n * mem_size, "array", &p);   /* checked above */
      storage = g_memdup2 (p, kv->n * mem_size);
      g_ptr_array_add (r->gguf->arrays, storage);
      kv->array = storage;
      return TRUE;
    }

  storage = g_malloc0_n (kv->n, mem_size);
  g_ptr_array_add (r->gguf->arrays, storage);
  kv->array = storage;
  r->depth++;
  ok = read_array_elements (r, kv);
  r->depth--;
  return ok;
}

/* ---- sections --------------------------------------------------------- */

static gboolean
read_header (Reader *r, QbGguf *g)
{
  const guint8 *magic = NULL;
  guint64 at, left;

  r->section = "header";
  if (!take (r, 4, "magic", &magic))
    return FALSE;
  if (memcmp (magic, QB_GGUF_MAGIC, 4) != 0)
    return fail (r, 0, QB_GGUF_ERROR_BAD_MAGIC, "magic",
                 "not a GGUF file (starts with %02x %02x %02x %02x, not \"GGUF\")",
                 magic[0], magic[1], magic[2], magic[3]);

  at = r->pos;
  if (!read_u32 (r, "version", &g->version))
    return FALSE;
  if (g->version == 1)
    return fail (r, at, QB_GGUF_ERROR_BAD_VERSION, "version",
                 "GGUF version 1 is no longer supported; convert the file with a current llama.cpp");
  if (GUINT32_SWAP_LE_BE (g->version) == 2 || GUINT32_SWAP_LE_BE (g->version) == 3)
    return fail (r, at, QB_GGUF_ERROR_BAD_VERSION, "version",
                 "this is a big-endian GGUF file, which Quantbench does not read");
  if (g->version != 2 && g->version != 3)
    return fail (r, at, QB_GGUF_ERROR_BAD_VERSION, "version",
                 "%u is not a GGUF version Quantbench reads (2 or 3)", g->version);

  if (!read_u64 (r, "tensor count", &g->n_tensors) || !read_u64 (r, "key count", &g->n_kv))
    return FALSE;

  /* Both counts must fit in what is left, at their smallest encoding. */
  left = r->size - r->pos;
  if (g->n_kv > left / MIN_KV_BYTES)
    return fail (r, at + 12, QB_GGUF_ERROR_TRUNCATED, "key count",
                 "%" G_GUINT64_FORMAT " pairs cannot fit in the %" G_GUINT64_FORMAT
                 " bytes left", g->n_kv, left);
  left -= g->n_kv * MIN_KV_BYTES;
  if (g->n_tensors > left / MIN_TENSOR_BYTES)
    return fail (r, at + 4, QB_GGUF_ERROR_TRUNCATED, "tensor count",
                 "%" G_GUINT64_FORMAT " tensor infos cannot fit in the bytes left after %"
                 G_GUINT64_FORMAT " pairs", g->n_tensors, g->n_kv);
  return TRUE;
}

static gboolean
read_kvs (Reader *r, QbGguf *g)
{
  g->kvs = g_new0 (QbGgufKv, g->n_kv);
  r->section = "key";
  for (guint64 i = 0; i < g->n_kv; i++)
    {
      QbGgufKv *kv = &g->kvs[i];

      r->index = i;
      r->item_name = NULL;
      kv->file_offset = r->pos;
      if (!read_string (r, "key", TRUE, &kv->key))
        return FALSE;
      r->item_name = kv->key.str;
      if (g_hash_table_contains (g->kv_index, kv->key.str))
        return fail (r, kv->file_offset, QB_GGUF_ERROR_INVALID, "key",
                     "appears twice (first as key %" G_GSIZE_FORMAT ")",
                     GPOINTER_TO_SIZE (g_hash_table_lookup (g->kv_index, kv->key.str)) - 1);
      g_hash_table_insert (g->kv_index, (gpointer) kv->key.str, GSIZE_TO_POINTER (i + 1));
      if (!read_type (r, "value type", &kv->type) || !read_scalar (r, kv))
        return FALSE;
    }
  r->item_name = NULL;
  return TRUE;
}

static gboolean
read_alignment (Reader *r, QbGguf *g)
{
  guint64 index = GPOINTER_TO_SIZE (g_hash_table_lookup (g->kv_index, "general.alignment"));
  const QbGgufKv *kv;
  guint64 a;

  g->alignment = QB_GGUF_DEFAULT_ALIGNMENT;
  if (index == 0)
    return TRUE;
  kv = &g->kvs[index - 1];
  r->section = "key";
  r->index = index - 1;
  r->item_name = kv->key.str;
  if (!qb_gguf_get_uint (g, "general.alignment", &a))
    return fail (r, kv->file_offset, QB_GGUF_ERROR_INVALID, "value",
                 "must be an unsigned integer, not %s", qb_gguf_type_name (kv->type));
  if (a == 0 || (a & (a - 1)) != 0 || a > (G_GUINT64_CONSTANT (1) << 30))
    return fail (r, kv->file_offset, QB_GGUF_ERROR_INVALID, "value",
                 "alignment %" G_GUINT64_FORMAT " is not a power of two up to 2^30", a);
  g->alignment = a;
  return TRUE;
}

static gboolean
read_shape (Reader *r, QbGgufTensorInfo *t)
{
  guint64 at = r->pos;
  guint32 n_dims;
  gint64 n = 1;

  if (!read_u32 (r, "dimension count", &n_dims))
    return FALSE;
  if (n_dims > QB_GGUF_MAX_DIMS)
    return fail (r, at, QB_GGUF_ERROR_INVALID, "dimension count",
                 "%u is more than %d", n_dims, QB_GGUF_MAX_DIMS);
  t->n_dims = n_dims;
  for (guint d = 0; d < QB_GGUF_MAX_DIMS; d++)
    t->ne[d] = 1;
  for (guint d = 0; d < n_dims; d++)
    {
      guint64 ne;

      at = r->pos;
      if (!read_u64 (r, "dimension", &ne))
        return FALSE;
      if (ne > G_MAXINT64)
        return fail (r, at, QB_GGUF_ERROR_INVALID, "dimension",
                     "ne[%u] = %" G_GINT64_FORMAT " is negative", d, (gint64) ne);
      t->ne[d] = (gint64) ne;
      if (__builtin_mul_overflow (n, t->ne[d], &n))
        return fail (r, at, QB_GGUF_ERROR_INVALID, "dimension",
                     "the element count overflows at ne[%u] = %" G_GINT64_FORMAT, d, t->ne[d]);
    }
  return TRUE;
}

static gboolean
read_tensor_type (Reader *r, QbGgufTensorInfo *t)
{
  guint64 at = r->pos, n_elements = 1;
  const QbDTypeInfo *info;
  guint32 type;

  if (!read_u32 (r, "type", &type))
    return FALSE;
  info = type <= G_MAXINT ? qb_dtype_info ((QbDType) type) : NULL;
  if (info == NULL || !info->is_ggml)
    return fail (r, at, QB_GGUF_ERROR_UNSUPPORTED, "type",
                 "ggml type id %u is not one Quantbench knows the size of", type);
  t->dtype = (QbDType) type;
  if (t->ne[0] % info->block_size != 0)
    return fail (r, at, QB_GGUF_ERROR_INVALID, "type",
                 "rows of %" G_GINT64_FORMAT " values are not a whole number of %s blocks (%u)",
                 t->ne[0], info->name, info->block_size);
  for (guint d = 0; d < QB_GGUF_MAX_DIMS; d++)
    n_elements *= (guint64) t->ne[d];                 /* checked in read_shape */
  if (!qb_dtype_bytes (t->dtype, (gint64) n_elements, &t->n_bytes))
    return fail (r, at, QB_GGUF_ERROR_INVALID, "type",
                 "the size of %" G_GUINT64_FORMAT " %s values overflows", n_elements, info->name);
  return TRUE;
}

static gboolean
read_tensor_infos (Reader *r, QbGguf *g, guint64 *offset_pos)
{
  g->tensors = g_new0 (QbGgufTensorInfo, g->n_tensors);
  r->section = "tensor";
  for (guint64 i = 0; i < g->n_tensors; i++)
    {
      QbGgufTensorInfo *t = &g->tensors[i];
      guint64 at = r->pos;

      r->index = i;
      r->item_name = NULL;
      if (!read_string (r, "name", TRUE, &t->name))
        return FALSE;
      r->item_name = t->name.str;
      if (g_hash_table_contains (g->tensor_index, t->name.str))
        return fail (r, at, QB_GGUF_ERROR_INVALID, "name",
                     "appears twice (first as tensor %" G_GSIZE_FORMAT ")",
                     GPOINTER_TO_SIZE (g_hash_table_lookup (g->tensor_index, t->name.str)) - 1);
      g_hash_table_insert (g->tensor_index, (gpointer) t->name.str, GSIZE_TO_POINTER (i + 1));

      if (!read_shape (r, t) || !read_tensor_type (r, t))
        return FALSE;
      offset_pos[i] = r->pos;
      if (!read_u64 (r, "offset", &t->offset))
        return FALSE;
      if (t->offset % g->alignment != 0)
        return fail (r, offset_pos[i], QB_GGUF_ERROR_INVALID, "offset",
                     "%" G_GUINT64_FORMAT " is not a multiple of the alignment %" G_GUINT64_FORMAT,
                     t->offset, g->alignment);
    }
  return TRUE;
}

typedef struct
{
  guint64 offset;
  guint64 index;
} Extent;

static int
compare_extents (gconstpointer a, gconstpointer b)
{
  const Extent *x = a, *y = b;

  if (x->offset != y->offset)
    return x->offset < y->offset ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Every tensor's bytes lie inside the file, and no two share a byte. */
static gboolean
check_tensor_data (Reader *r, QbGguf *g, const guint64 *offset_pos)
{
  guint64 data_size = g->size - g->data_offset;
  g_autofree Extent *extents = g_new (Extent, g->n_tensors);
  guint64 n_extents = 0;

  r->section = "tensor";
  for (guint64 i = 0; i < g->n_tensors; i++)
    {
      QbGgufTensorInfo *t = &g->tensors[i];

      r->index = i;
      r->item_name = t->name.str;
      if (t->offset > data_size || t->n_bytes > data_size - t->offset)
        return fail (r, offset_pos[i], QB_GGUF_ERROR_TRUNCATED, "offset",
                     "%" G_GUINT64_FORMAT " bytes at data offset %" G_GUINT64_FORMAT
                     " run past the end of the file (the data section holds %" G_GUINT64_FORMAT
                     " bytes)", t->n_bytes, t->offset, data_size);
      t->data = g->data + g->data_offset + t->offset;
      if (t->n_bytes > 0)
        extents[n_extents++] = (Extent) { t->offset, i };
    }

  if (n_extents > 1)
    qsort (extents, n_extents, sizeof (Extent), compare_extents);
  for (guint64 k = 1; k < n_extents; k++)
    {
      const QbGgufTensorInfo *prev = &g->tensors[extents[k - 1].index];
      const QbGgufTensorInfo *t = &g->tensors[extents[k].index];

      if (prev->offset + prev->n_bytes > t->offset)
        {
          g_autofree char *other = qb_gguf_quote_name (prev->name.str);
          r->index = extents[k].index;
          r->item_name = t->name.str;
          return fail (r, offset_pos[extents[k].index], QB_GGUF_ERROR_INVALID, "offset",
                       "its data (%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ") overlaps tensor %"
                       G_GUINT64_FORMAT " %s (%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT ")",
                       t->offset, t->offset + t->n_bytes, extents[k - 1].index, other,
                       prev->offset, prev->offset + prev->n_bytes);
        }
    }
  return TRUE;
}

static gboolean
parse (QbGguf *g, GError **error)
{
  Reader r = { .gguf = g, .data = g->data, .size = g->size, .error = error };
  g_autofree guint64 *offset_pos = NULL;

  if (!read_header (&r, g) || !read_kvs (&r, g) || !read_alignment (&r, g))
    return FALSE;

  offset_pos = g_new (guint64, g->n_tensors);
  if (!read_tensor_infos (&r, g, offset_pos))
    return FALSE;

  r.section = "header";
  r.item_name = NULL;
  if (!qb_gguf_pad (r.pos, g->alignment, &g->data_offset))
    return fail (&r, r.pos, QB_GGUF_ERROR_INVALID, "data section", "its offset overflows");
  if (g->data_offset > g->size)
    {
      if (g->n_tensors > 0)
        return fail (&r, r.pos, QB_GGUF_ERROR_TRUNCATED, "data section",
                     "starts at byte %" G_GUINT64_FORMAT ", past the end of the file (%"
                     G_GUINT64_FORMAT " bytes)", g->data_offset, g->size);
      g->data_offset = g->size;       /* no tensors and no padding: nothing to point at */
    }
  return check_tensor_data (&r, g, offset_pos);
}

/* ---- construction ----------------------------------------------------- */

QbGguf *
qb_gguf_new_from_bytes (GBytes *bytes, const char *name, GError **error)
{
  g_autoptr(QbGguf) g = g_new0 (QbGguf, 1);
  gsize size = 0;

  g_return_val_if_fail (bytes != NULL, NULL);

  g->ref_count = 1;
  g->path = g_strdup (name ? name : "(memory)");
  g->bytes = g_bytes_ref (bytes);
  g->data = g_bytes_get_data (bytes, &size);
  g->size = size;
  g->kv_index = g_hash_table_new (g_str_hash, g_str_equal);
  g->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  g->strings = g_string_chunk_new (16384);
  g->arrays = g_ptr_array_new_with_free_func (g_free);

  if (!parse (g, error))
    return NULL;
  return g_steal_pointer (&g);
}

QbGguf *
qb_gguf_open (const char *path, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GMappedFile) file = NULL;
  g_autoptr(GBytes) bytes = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO, "%s: is a folder, not a GGUF file", path);
      return NULL;
    }
  file = qb_file_map (path, &local_error);
  if (file == NULL)
    {
      g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO, "%s", local_error->message);
      return NULL;
    }
  bytes = g_mapped_file_get_bytes (file);
  return qb_gguf_new_from_bytes (bytes, path, error);
}

void
qb_gguf_unref (QbGguf *g)
{
  if (g == NULL || !g_atomic_int_dec_and_test (&g->ref_count))
    return;
  g_free (g->path);
  g_bytes_unref (g->bytes);
  g_free (g->kvs);
  g_free (g->tensors);
  g_hash_table_unref (g->kv_index);
  g_hash_table_unref (g->tensor_index);
  g_string_chunk_free (g->strings);
  g_ptr_array_unref (g->arrays);
  g_free (g);
}

/* ---- accessors -------------------------------------------------------- */

const char *qb_gguf_get_path        (QbGguf *g) { return g->path; }
const guint8 *qb_gguf_get_data      (QbGguf *g) { return g->data; }
guint32     qb_gguf_get_version     (QbGguf *g) { return g->version; }
guint64     qb_gguf_get_alignment   (QbGguf *g) { return g->alignment; }
guint64     qb_gguf_get_data_offset (QbGguf *g) { return g->data_offset; }
guint64     qb_gguf_get_file_size   (QbGguf *g) { return g->size; }
guint64     qb_gguf_get_n_kv        (QbGguf *g) { return g->n_kv; }
guint64     qb_gguf_get_n_tensors   (QbGguf *g) { return g->n_tensors; }

const QbGgufKv *
qb_gguf_get_kv (QbGguf *g, guint64 index)
{
  g_return_val_if_fail (index < g->n_kv, NULL);
  return &g->kvs[index];
}

const QbGgufKv *
qb_gguf_find_kv (QbGguf *g, const char *key)
{
  guint64 index = GPOINTER_TO_SIZE (g_hash_table_lookup (g->kv_index, key));
  return index ? &g->kvs[index - 1] : NULL;
}

static gboolean
type_is_unsigned (QbGgufType t)
{
  return t == QB_GGUF_TYPE_UINT8 || t == QB_GGUF_TYPE_UINT16 ||
         t == QB_GGUF_TYPE_UINT32 || t == QB_GGUF_TYPE_UINT64;
}

static gboolean
type_is_signed (QbGgufType t)
{
  return t == QB_GGUF_TYPE_INT8 || t == QB_GGUF_TYPE_INT16 ||
         t == QB_GGUF_TYPE_INT32 || t == QB_GGUF_TYPE_INT64;
}

gboolean
qb_gguf_get_uint (QbGguf *g, const char *key, guint64 *out)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL)
    return FALSE;
  if (type_is_unsigned (kv->type))
    *out = kv->v.u64;
  else if (type_is_signed (kv->type) && kv->v.i64 >= 0)
    *out = (guint64) kv->v.i64;
  else
    return FALSE;
  return TRUE;
}

gboolean
qb_gguf_get_int (QbGguf *g, const char *key, gint64 *out)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL)
    return FALSE;
  if (type_is_signed (kv->type))
    *out = kv->v.i64;
  else if (type_is_unsigned (kv->type) && kv->v.u64 <= G_MAXINT64)
    *out = (gint64) kv->v.u64;
  else
    return FALSE;
  return TRUE;
}

gboolean
qb_gguf_get_double (QbGguf *g, const char *key, double *out)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL)
    return FALSE;
  if (kv->type == QB_GGUF_TYPE_FLOAT32 || kv->type == QB_GGUF_TYPE_FLOAT64)
    *out = kv->v.f64;
  else if (type_is_unsigned (kv->type))
    *out = (double) kv->v.u64;
  else if (type_is_signed (kv->type))
    *out = (double) kv->v.i64;
  else
    return FALSE;
  return TRUE;
}

gboolean
qb_gguf_get_bool (QbGguf *g, const char *key, gboolean *out)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL || kv->type != QB_GGUF_TYPE_BOOL)
    return FALSE;
  *out = kv->v.b != 0;
  return TRUE;
}

const char *
qb_gguf_get_string (QbGguf *g, const char *key)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL || kv->type != QB_GGUF_TYPE_STRING)
    return NULL;
  return kv->v.str.str;
}

const QbGgufString *
qb_gguf_get_string_array (QbGguf *g, const char *key, guint64 *n)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL || kv->type != QB_GGUF_TYPE_ARRAY || kv->array_type != QB_GGUF_TYPE_STRING)
    return NULL;
  if (n)
    *n = kv->n;
  return kv->array;
}

gconstpointer
qb_gguf_get_array (QbGguf *g, const char *key, QbGgufType element_type, guint64 *n)
{
  const QbGgufKv *kv = qb_gguf_find_kv (g, key);

  if (kv == NULL || kv->type != QB_GGUF_TYPE_ARRAY || kv->array_type != element_type)
    return NULL;
  if (n)
    *n = kv->n;
  return kv->array;
}

const QbGgufTensorInfo *
qb_gguf_get_tensor (QbGguf *g, guint64 index)
{
  g_return_val_if_fail (index < g->n_tensors, NULL);
  return &g->tensors[index];
}

const QbGgufTensorInfo *
qb_gguf_find_tensor (QbGguf *g, const char *name)
{
  guint64 index = GPOINTER_TO_SIZE (g_hash_table_lookup (g->tensor_index, name));
  return index ? &g->tensors[index - 1] : NULL;
}
