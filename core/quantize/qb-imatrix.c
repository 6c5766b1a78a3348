/* SPDX-License-Identifier: MIT */
/* qb-imatrix.c — importance matrices in llama.cpp's two file formats.
 *
 * Legacy .dat (llama.cpp's imatrix tool before GGUF), little-endian:
 *   i32 n_entries (>= 1)
 *   n_entries times: i32 name_len, name bytes, i32 ncall, i32 nval,
 *                    f32 values[nval]    (mean of squares * ncall)
 *   optional: i32 chunk_count, i32 dataset_len, dataset bytes
 * GGUF imatrix (general.type = "imatrix"):
 *   metadata imatrix.datasets (string array), imatrix.chunk_count (u32),
 *   imatrix.chunk_size (u32);
 *   per entry NAME: NAME.in_sum2, F32 [n_cols, n_mat], sums of squares, and
 *   NAME.counts, F32 [1, n_mat], activation rows summed per matrix (n_mat
 *   > 1 for stacked experts); NAME.in_sum (sums) is optional and ignored.
 * Importance is sum2 / count per matrix; a matrix with count 0 gets
 * importance 1, as llama-quantize does.
 */
#include "qb-imatrix.h"
#include "qb-file.h"
#include "qb-gguf.h"

#include <errno.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK (qb-imatrix-error-quark, qb_imatrix_error)

#define GGUF_MAGIC "GGUF"
/* Far above any real model, far below anything that overflows. */
#define MAX_VALUES (1u << 28)
#define MAX_NAME   4096

typedef struct {
  char    *name;
  guint    n_values;      /* n_cols * n_mat */
  guint    n_mat;
  float   *sum2;          /* n_values */
  guint64 *counts;        /* n_mat */
  float   *importance;    /* n_values */
} Entry;

struct _QbImatrix {
  gint        ref_count;
  GPtrArray  *entries;    /* Entry*, in the order they were set */
  GHashTable *by_name;    /* name -> Entry* */
  char       *dataset;
  guint       n_chunks;
  guint       chunk_size;
};

static void
entry_free (gpointer data)
{
  Entry *e = data;

  g_free (e->name);
  g_free (e->sum2);
  g_free (e->counts);
  g_free (e->importance);
  g_free (e);
}

static void
entry_compute_importance (Entry *e)
{
  guint per = e->n_values / e->n_mat;

  for (guint m = 0; m < e->n_mat; m++)
    for (guint j = 0; j < per; j++)
      {
        guint i = m * per + j;
        e->importance[i] = e->counts[m] > 0 ? (float) (e->sum2[i] / (double) e->counts[m]) : 1.0f;
      }
}

QbImatrix *
qb_imatrix_new (void)
{
  QbImatrix *im = g_new0 (QbImatrix, 1);

  im->ref_count = 1;
  im->entries = g_ptr_array_new_with_free_func (entry_free);
  im->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return im;
}

QbImatrix *
qb_imatrix_ref (QbImatrix *im)
{
  g_return_val_if_fail (im != NULL, NULL);
  g_atomic_int_inc (&im->ref_count);
  return im;
}

void
qb_imatrix_unref (QbImatrix *im)
{
  if (im == NULL || !g_atomic_int_dec_and_test (&im->ref_count))
    return;
  g_hash_table_unref (im->by_name);
  g_ptr_array_unref (im->entries);
  g_free (im->dataset);
  g_free (im);
}

/* Takes ownership of sum2 and counts. */
static void
set_entry (QbImatrix *im, const char *name, float *sum2, guint n_values,
           guint64 *counts, guint n_mat)
{
  Entry *e = g_hash_table_lookup (im->by_name, name);

  if (e == NULL)
    {
      e = g_new0 (Entry, 1);
      e->name = g_strdup (name);
      g_ptr_array_add (im->entries, e);
      g_hash_table_insert (im->by_name, e->name, e);
    }
  g_free (e->sum2);
  g_free (e->counts);
  g_free (e->importance);
  e->n_values = n_values;
  e->n_mat = n_mat;
  e->sum2 = sum2;
  e->counts = counts;
  e->importance = g_new (float, MAX (n_values, 1));
  entry_compute_importance (e);
}

void
qb_imatrix_set (QbImatrix *im, const char *tensor_name, const float *sum2,
                guint n_cols, guint64 n_samples)
{
  guint64 *counts;

  g_return_if_fail (im != NULL && tensor_name != NULL);
  g_return_if_fail (n_cols > 0 && n_cols <= MAX_VALUES && sum2 != NULL);
  counts = g_new (guint64, 1);
  counts[0] = n_samples;
  set_entry (im, tensor_name, g_memdup2 (sum2, sizeof (float) * n_cols), n_cols, counts, 1);
}

void
qb_imatrix_set_stacked (QbImatrix *im, const char *tensor_name, const float *sum2, guint n_cols,
                        guint n_mat, const guint64 *counts)
{
  g_return_if_fail (im != NULL && tensor_name != NULL && sum2 != NULL && counts != NULL);
  g_return_if_fail (n_cols > 0 && n_mat > 0 && n_mat <= MAX_VALUES / n_cols);
  set_entry (im, tensor_name, g_memdup2 (sum2, sizeof (float) * n_cols * n_mat), n_cols * n_mat,
             g_memdup2 (counts, sizeof (guint64) * n_mat), n_mat);
}

const guint64 *
qb_imatrix_get_counts (QbImatrix *im, const char *tensor_name, guint *n_mat)
{
  Entry *e;

  g_return_val_if_fail (im != NULL, NULL);
  e = g_hash_table_lookup (im->by_name, tensor_name);
  if (n_mat)
    *n_mat = e ? e->n_mat : 0;
  return e ? e->counts : NULL;
}

const float *
qb_imatrix_get (QbImatrix *im, const char *tensor_name, guint *n_cols)
{
  Entry *e;

  g_return_val_if_fail (im != NULL, NULL);
  e = g_hash_table_lookup (im->by_name, tensor_name);
  if (n_cols)
    *n_cols = e ? e->n_values : 0;
  return e ? e->importance : NULL;
}

guint64
qb_imatrix_get_samples (QbImatrix *im, const char *tensor_name)
{
  Entry *e;
  guint64 n = 0;

  g_return_val_if_fail (im != NULL, 0);
  e = g_hash_table_lookup (im->by_name, tensor_name);
  for (guint m = 0; e && m < e->n_mat; m++)
    n = MAX (n, e->counts[m]);
  return n;
}

guint
qb_imatrix_get_n_entries (QbImatrix *im)
{
  g_return_val_if_fail (im != NULL, 0);
  return im->entries->len;
}

const char *
qb_imatrix_get_name (QbImatrix *im, guint index)
{
  g_return_val_if_fail (im != NULL, NULL);
  g_return_val_if_fail (index < im->entries->len, NULL);
  return ((Entry *) g_ptr_array_index (im->entries, index))->name;
}

void
qb_imatrix_set_dataset (QbImatrix *im, const char *dataset, guint n_chunks, guint chunk_size)
{
  g_return_if_fail (im != NULL);
  g_free (im->dataset);
  im->dataset = g_strdup (dataset);
  im->n_chunks = n_chunks;
  im->chunk_size = chunk_size;
}

const char *
qb_imatrix_get_dataset (QbImatrix *im)
{
  g_return_val_if_fail (im != NULL, NULL);
  return im->dataset;
}

guint
qb_imatrix_get_n_chunks (QbImatrix *im)
{
  g_return_val_if_fail (im != NULL, 0);
  return im->n_chunks;
}

guint
qb_imatrix_get_chunk_size (QbImatrix *im)
{
  g_return_val_if_fail (im != NULL, 0);
  return im->chunk_size;
}

/* ---- validation shared by both readers ------------------------------------ */

static gboolean
check_values (const char *path, const char *entry, guint64 offset,
              const float *v, guint n, GError **error)
{
  for (guint i = 0; i < n; i++)
    if (!isfinite (v[i]) || v[i] < 0)
      {
        g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                     "%s: entry '%s': value %u is %g (sums of squares must be finite "
                     "and not negative) at offset %" G_GUINT64_FORMAT,
                     path, entry, i, v[i], offset + 4 * (guint64) i);
        return FALSE;
      }
  return TRUE;
}

static gboolean
check_name (const char *path, const char *name, gsize len, guint64 offset,
            QbImatrix *im, GError **error)
{
  if (len == 0 || memchr (name, '\0', len) != NULL || !g_utf8_validate (name, len, NULL))
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: entry name at offset %" G_GUINT64_FORMAT " is empty or not text",
                   path, offset);
      return FALSE;
    }
  if (g_hash_table_contains (im->by_name, name))
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: entry '%s' appears twice (offset %" G_GUINT64_FORMAT ")",
                   path, name, offset);
      return FALSE;
    }
  return TRUE;
}

/* ---- legacy .dat ---------------------------------------------------------- */

typedef struct {
  const char   *path;
  const guint8 *data;
  gsize         size;
  gsize         pos;
} Reader;

static gboolean
read_i32 (Reader *r, const char *field, gint32 *out, GError **error)
{
  if (r->size - r->pos < 4)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: truncated: %s at offset %" G_GSIZE_FORMAT " runs past the end (%"
                   G_GSIZE_FORMAT " bytes)", r->path, field, r->pos, r->size);
      return FALSE;
    }
  memcpy (out, r->data + r->pos, 4);
  *out = GINT32_FROM_LE (*out);
  r->pos += 4;
  return TRUE;
}

static gboolean
read_bytes (Reader *r, const char *field, gsize n, const guint8 **out, GError **error)
{
  if (r->size - r->pos < n)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: truncated: %s (%" G_GSIZE_FORMAT " bytes) at offset %" G_GSIZE_FORMAT
                   " runs past the end (%" G_GSIZE_FORMAT " bytes)",
                   r->path, field, n, r->pos, r->size);
      return FALSE;
    }
  *out = r->data + r->pos;
  r->pos += n;
  return TRUE;
}

static gboolean
bad_count (Reader *r, const char *field, gint64 value, gsize at, GError **error)
{
  g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
               "%s: %s is %" G_GINT64_FORMAT " at offset %" G_GSIZE_FORMAT,
               r->path, field, value, at);
  return FALSE;
}

static gboolean
load_dat_entry (QbImatrix *im, Reader *r, guint index, GError **error)
{
  g_autofree char *name = NULL;
  g_autofree float *values = NULL;
  const guint8 *p;
  gint32 len, ncall, nval;
  gsize at = r->pos;
  guint64 *counts;

  if (!read_i32 (r, "entry name length", &len, error))
    return FALSE;
  if (len <= 0 || len > MAX_NAME)
    return bad_count (r, "entry name length", len, at, error);
  if (!read_bytes (r, "entry name", len, &p, error))
    return FALSE;
  name = g_strndup ((const char *) p, len);
  if (!check_name (r->path, name, len, at + 4, im, error))
    return FALSE;

  at = r->pos;
  if (!read_i32 (r, "ncall", &ncall, error))
    return FALSE;
  if (ncall < 0)
    return bad_count (r, "ncall", ncall, at, error);
  at = r->pos;
  if (!read_i32 (r, "number of values", &nval, error))
    return FALSE;
  if (nval <= 0 || (guint) nval > MAX_VALUES)
    return bad_count (r, "number of values", nval, at, error);
  at = r->pos;
  if (!read_bytes (r, "values", (gsize) nval * 4, &p, error))
    return FALSE;
  values = g_new (float, nval);
  for (gint32 i = 0; i < nval; i++)
    {
      guint32 u;
      memcpy (&u, p + 4 * (gsize) i, 4);
      u = GUINT32_FROM_LE (u);
      memcpy (&values[i], &u, 4);
    }
  if (!check_values (r->path, name, at, values, nval, error))
    return FALSE;

  /* The file holds mean * ncall; llama-quantize divides by ncall (and
   * takes the values as they are when ncall is 0). */
  counts = g_new (guint64, 1);
  counts[0] = ncall > 0 ? (guint64) ncall : 1;
  set_entry (im, name, g_steal_pointer (&values), nval, counts, 1);
  return TRUE;
}

static QbImatrix *
load_dat (const char *path, const guint8 *data, gsize size, GError **error)
{
  g_autoptr(QbImatrix) im = qb_imatrix_new ();
  Reader r = { path, data, size, 0 };
  gint32 n_entries, chunks, len;
  const guint8 *p;

  if (!read_i32 (&r, "number of entries", &n_entries, error))
    return NULL;
  if (n_entries < 1 || (gsize) n_entries > size / 16)
    {
      bad_count (&r, "number of entries", n_entries, 0, error);
      return NULL;
    }
  for (gint32 i = 0; i < n_entries; i++)
    if (!load_dat_entry (im, &r, i, error))
      return NULL;

  /* The optional trailer: chunk count and dataset name. */
  if (r.pos == size)
    return g_steal_pointer (&im);
  if (!read_i32 (&r, "chunk count", &chunks, error) || !read_i32 (&r, "dataset name length", &len, error))
    return NULL;
  if (chunks < 0)
    {
      bad_count (&r, "chunk count", chunks, r.pos - 8, error);
      return NULL;
    }
  if (len < 0 || len > MAX_NAME * 16)
    {
      bad_count (&r, "dataset name length", len, r.pos - 4, error);
      return NULL;
    }
  if (!read_bytes (&r, "dataset name", len, &p, error))
    return NULL;
  if (r.pos != size)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: %" G_GSIZE_FORMAT " unexpected bytes after the dataset name at offset %"
                   G_GSIZE_FORMAT, path, size - r.pos, r.pos);
      return NULL;
    }
  {
    g_autofree char *dataset = g_strndup ((const char *) p, len);
    qb_imatrix_set_dataset (im, dataset, chunks, 0);
  }
  return g_steal_pointer (&im);
}

/* ---- GGUF ---------------------------------------------------------------- */

static gboolean
strip_suffix (const QbGgufString *name, const char *suffix, char **base)
{
  gsize n = strlen (suffix);

  if (name->len <= n || memcmp (name->str + name->len - n, suffix, n) != 0)
    return FALSE;
  *base = g_strndup (name->str, name->len - n);
  return TRUE;
}

static gboolean
check_f32_matrix (const char *path, const QbGgufTensorInfo *t, GError **error)
{
  if (t->dtype != QB_DTYPE_F32 || t->n_dims > 2 || t->ne[2] != 1 || t->ne[3] != 1)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: tensor '%s' must be a 1-D or 2-D F32 tensor (it is %s, %u dims)",
                   path, t->name.str, qb_dtype_name (t->dtype), t->n_dims);
      return FALSE;
    }
  return TRUE;
}

static gboolean
load_gguf_entry (QbImatrix *im, const char *path, const char *name,
                 const QbGgufTensorInfo *sums, const QbGgufTensorInfo *cnt,
                 GError **error)
{
  g_autofree float *sum2 = NULL;
  g_autofree float *fcounts = NULL;
  g_autofree guint64 *counts = NULL;
  gint64 n_mat, n_values;

  if (!check_f32_matrix (path, sums, error) || !check_f32_matrix (path, cnt, error))
    return FALSE;
  n_mat = sums->ne[1];
  n_values = sums->ne[0] * sums->ne[1];
  if (cnt->ne[0] != 1 || cnt->ne[1] != n_mat || n_values <= 0 || n_values > MAX_VALUES)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: entry '%s': %s.in_sum2 is [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "] but %s.counts is [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "]; expected [1, %" G_GINT64_FORMAT "]",
                   path, name, name, sums->ne[0], sums->ne[1], name, cnt->ne[0], cnt->ne[1], n_mat);
      return FALSE;
    }
  sum2 = g_new (float, n_values);
  memcpy (sum2, sums->data, sizeof (float) * n_values);
  if (!check_values (path, name, sums->offset, sum2, n_values, error))
    return FALSE;
  fcounts = g_new (float, n_mat);
  memcpy (fcounts, cnt->data, sizeof (float) * n_mat);
  counts = g_new (guint64, n_mat);
  for (gint64 m = 0; m < n_mat; m++)
    {
      if (!isfinite (fcounts[m]) || fcounts[m] < 0 || fcounts[m] > 1e18)
        {
          g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                       "%s: entry '%s': count %" G_GINT64_FORMAT " is %g", path, name, m, fcounts[m]);
          return FALSE;
        }
      counts[m] = (guint64) llround (fcounts[m]);
    }
  set_entry (im, name, g_steal_pointer (&sum2), n_values, g_steal_pointer (&counts), n_mat);
  return TRUE;
}

static gboolean
get_u32_kv (QbGguf *gguf, const char *path, const char *key, guint *out, GError **error)
{
  guint64 v = 0;

  *out = 0;
  if (qb_gguf_find_kv (gguf, key) == NULL)
    return TRUE;
  if (!qb_gguf_get_uint (gguf, key, &v) || v > G_MAXUINT32)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: %s must be an unsigned 32-bit number", path, key);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static QbImatrix *
load_gguf (const char *path, GError **error)
{
  g_autoptr(QbImatrix) im = qb_imatrix_new ();
  g_autoptr(QbGguf) gguf = NULL;
  g_autoptr(GHashTable) pairs = NULL;   /* base name -> index of .counts */
  g_autoptr(GError) local = NULL;
  const char *type;
  const QbGgufString *datasets;
  guint64 n_datasets = 0, n = 0;
  guint chunks, chunk_size;

  gguf = qb_gguf_open (path, &local);
  if (gguf == NULL)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID, "%s", local->message);
      return NULL;
    }
  type = qb_gguf_get_string (gguf, "general.type");
  if (type != NULL && strcmp (type, "imatrix") != 0)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: a GGUF file of type '%s', not an importance matrix", path, type);
      return NULL;
    }
  if (!get_u32_kv (gguf, path, "imatrix.chunk_count", &chunks, error)
      || !get_u32_kv (gguf, path, "imatrix.chunk_size", &chunk_size, error))
    return NULL;
  datasets = qb_gguf_get_string_array (gguf, "imatrix.datasets", &n_datasets);

  /* Pair NAME.in_sum2 with NAME.counts. */
  pairs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  n = qb_gguf_get_n_tensors (gguf);
  for (guint64 i = 0; i < n; i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (gguf, i);
      char *base = NULL;
      if (strip_suffix (&t->name, ".counts", &base))
        g_hash_table_replace (pairs, base, GSIZE_TO_POINTER (i + 1));
    }
  for (guint64 i = 0; i < n; i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (gguf, i);
      g_autofree char *base = NULL;
      gsize cnt;

      if (!strip_suffix (&t->name, ".in_sum2", &base))
        continue;
      cnt = GPOINTER_TO_SIZE (g_hash_table_lookup (pairs, base));
      if (cnt == 0)
        {
          g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                       "%s: entry '%s' has sums (%s.in_sum2) but no counts (%s.counts)",
                       path, base, base, base);
          return NULL;
        }
      if (!check_name (path, base, strlen (base), t->offset, im, error)
          || !load_gguf_entry (im, path, base, t, qb_gguf_get_tensor (gguf, cnt - 1), error))
        return NULL;
      g_hash_table_remove (pairs, base);
    }
  if (g_hash_table_size (pairs) > 0)
    {
      GHashTableIter iter;
      gpointer key;
      g_hash_table_iter_init (&iter, pairs);
      g_hash_table_iter_next (&iter, &key, NULL);
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: entry '%s' has counts but no sums (%s.in_sum2)", path,
                   (const char *) key, (const char *) key);
      return NULL;
    }
  if (im->entries->len == 0)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: no importance entries (no NAME.in_sum2 tensors)", path);
      return NULL;
    }
  qb_imatrix_set_dataset (im, n_datasets > 0 ? datasets[0].str : NULL, chunks, chunk_size);
  return g_steal_pointer (&im);
}

QbImatrix *
qb_imatrix_load (const char *path, GError **error)
{
  g_autoptr(GMappedFile) file = NULL;
  g_autoptr(GError) local = NULL;
  const guint8 *data;
  gsize size;

  g_return_val_if_fail (path != NULL, NULL);
  file = qb_file_map (path, &local);
  if (file == NULL)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_IO, "%s", local->message);
      return NULL;
    }
  data = (const guint8 *) g_mapped_file_get_contents (file);
  size = g_mapped_file_get_length (file);
  if (size >= 4 && memcmp (data, GGUF_MAGIC, 4) == 0)
    return load_gguf (path, error);
  return load_dat (path, data, size, error);
}

/* ---- writers ---------------------------------------------------------- */

static void
put_i32 (GByteArray *b, gint32 v)
{
  v = GINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

gboolean
qb_imatrix_save_dat (QbImatrix *im, const char *path, GError **error)
{
  g_autoptr(GByteArray) b = g_byte_array_new ();
  g_autoptr(GError) local = NULL;
  const char *dataset;

  g_return_val_if_fail (im != NULL && path != NULL, FALSE);
  if (im->entries->len == 0 || im->entries->len > G_MAXINT32)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: an importance matrix needs at least one entry", path);
      return FALSE;
    }
  put_i32 (b, im->entries->len);
  for (guint i = 0; i < im->entries->len; i++)
    {
      const Entry *e = g_ptr_array_index (im->entries, i);
      guint64 max_count = 0;
      gint32 ncall;
      gboolean exact;

      for (guint m = 0; m < e->n_mat; m++)
        max_count = MAX (max_count, e->counts[m]);
      /* Readers divide by ncall.  llama-imatrix writes ncall = the chunks
       * it ran and values = importance * ncall, and weighs files by ncall
       * when it combines them (--in-file): do the same when the chunk
       * count is known.  Otherwise store the sums themselves when one
       * count covers the entry and fits, else importance * ncall. */
      if (im->n_chunks > 0 && im->n_chunks <= G_MAXINT32)
        {
          exact = FALSE;
          ncall = (gint32) im->n_chunks;
        }
      else
        {
          exact = e->n_mat == 1 && e->counts[0] > 0 && e->counts[0] <= G_MAXINT32;
          ncall = (gint32) CLAMP (max_count, 1, G_MAXINT32);
        }
      put_i32 (b, (gint32) strlen (e->name));
      g_byte_array_append (b, (const guint8 *) e->name, strlen (e->name));
      put_i32 (b, ncall);
      put_i32 (b, (gint32) e->n_values);
      for (guint j = 0; j < e->n_values; j++)
        {
          float v = exact ? e->sum2[j] : e->importance[j] * (float) ncall;
          guint32 u;
          memcpy (&u, &v, 4);
          u = GUINT32_TO_LE (u);
          g_byte_array_append (b, (const guint8 *) &u, 4);
        }
    }
  dataset = im->dataset ? im->dataset : "";
  put_i32 (b, (gint32) MIN (im->n_chunks, G_MAXINT32));
  put_i32 (b, (gint32) strlen (dataset));
  g_byte_array_append (b, (const guint8 *) dataset, strlen (dataset));

  if (!g_file_set_contents_full (path, (const char *) b->data, b->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &local))
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_IO, "%s", local->message);
      return FALSE;
    }
  return TRUE;
}

static int
compare_entries (gconstpointer a, gconstpointer b)
{
  const Entry *ea = *(const Entry * const *) a, *eb = *(const Entry * const *) b;
  return strcmp (ea->name, eb->name);
}

gboolean
qb_imatrix_save_gguf (QbImatrix *im, const char *path, GError **error)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GPtrArray) sorted = NULL;
  g_autoptr(GError) local = NULL;
  const char *datasets[1];

  g_return_val_if_fail (im != NULL && path != NULL, FALSE);
  if (im->entries->len == 0)
    {
      g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_INVALID,
                   "%s: an importance matrix needs at least one entry", path);
      return FALSE;
    }

  qb_gguf_writer_set_string (w, "general.type", "imatrix");
  datasets[0] = im->dataset;
  qb_gguf_writer_set_string_array (w, "imatrix.datasets", datasets, im->dataset ? 1 : 0);
  qb_gguf_writer_set_uint32 (w, "imatrix.chunk_count", im->n_chunks);
  qb_gguf_writer_set_uint32 (w, "imatrix.chunk_size", im->chunk_size);

  /* Sorted by name, as llama.cpp writes them. */
  /* A plain copy would share the entries' free function. */
  sorted = g_ptr_array_sized_new (im->entries->len);
  for (guint i = 0; i < im->entries->len; i++)
    g_ptr_array_add (sorted, g_ptr_array_index (im->entries, i));
  g_ptr_array_sort (sorted, compare_entries);
  for (guint i = 0; i < sorted->len; i++)
    {
      const Entry *e = g_ptr_array_index (sorted, i);
      g_autofree char *sums = g_strconcat (e->name, ".in_sum2", NULL);
      g_autofree char *counts = g_strconcat (e->name, ".counts", NULL);
      gint64 ne_sums[2] = { e->n_values / e->n_mat, e->n_mat };
      gint64 ne_counts[2] = { 1, e->n_mat };

      qb_gguf_writer_add_tensor (w, sums, 2, ne_sums, QB_DTYPE_F32);
      qb_gguf_writer_add_tensor (w, counts, 2, ne_counts, QB_DTYPE_F32);
    }

  if (!qb_gguf_writer_begin (w, path, &local))
    goto fail;
  for (guint i = 0; i < sorted->len; i++)
    {
      const Entry *e = g_ptr_array_index (sorted, i);
      g_autofree float *counts = g_new (float, e->n_mat);

      for (guint m = 0; m < e->n_mat; m++)
        counts[m] = (float) e->counts[m];
      if (!qb_gguf_writer_write_tensor (w, 2 * i, e->sum2, sizeof (float) * e->n_values, &local)
          || !qb_gguf_writer_write_tensor (w, 2 * i + 1, counts, sizeof (float) * e->n_mat, &local))
        {
          qb_gguf_writer_abort (w);
          goto fail;
        }
    }
  if (!qb_gguf_writer_finish (w, &local))
    goto fail;
  return TRUE;

fail:
  g_set_error (error, QB_IMATRIX_ERROR, QB_IMATRIX_ERROR_IO, "%s", local->message);
  return FALSE;
}
