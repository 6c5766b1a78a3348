/* SPDX-License-Identifier: MIT */
/* qb-gguf-writer.c — writes GGUF files atomically.
 *
 * Key/value pairs are encoded when they are set, so writing the header is
 * a concatenation.  Tensors are laid out the way llama.cpp lays them out:
 * in declaration order, each at the next multiple of the alignment, the
 * gaps zero.  A file read by qb-gguf.c and written back with the same keys
 * and tensors is therefore byte-identical to the original.
 *
 * The data goes to a temporary file beside the target (pwrite at fixed
 * offsets, so any thread may write any tensor), which is fsynced and
 * renamed over the target only when every byte is there.
 */
#include "qb-gguf-private.h"
#include "qb-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

typedef struct
{
  char       *key;
  GByteArray *encoded;      /* value type and value, as they follow the key */
} WriterKv;

typedef struct
{
  char    *name;
  guint    n_dims;
  gint64   ne[QB_GGUF_MAX_DIMS];
  QbDType  dtype;
  guint64  n_bytes;
  gboolean valid;           /* shape and type give a size */
  guint64  offset;          /* in the data section; set by begin() */
  guint64  written;         /* bytes written so far, atomic */
} WriterTensor;

struct _QbGgufWriter
{
  guint32    version;
  GPtrArray *kvs;           /* WriterKv, in file order */
  GPtrArray *tensors;       /* WriterTensor, in file order */

  /* While a write is under way. */
  char      *path;
  char      *tmp_path;
  int        fd;
  guint64    alignment;
  guint64    data_offset;
};

static void
writer_kv_free (WriterKv *kv)
{
  g_free (kv->key);
  g_byte_array_unref (kv->encoded);
  g_free (kv);
}

static void
writer_tensor_free (WriterTensor *t)
{
  g_free (t->name);
  g_free (t);
}

QbGgufWriter *
qb_gguf_writer_new (void)
{
  QbGgufWriter *w = g_new0 (QbGgufWriter, 1);

  w->version = 3;
  w->kvs = g_ptr_array_new_with_free_func ((GDestroyNotify) writer_kv_free);
  w->tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) writer_tensor_free);
  w->fd = -1;
  return w;
}

void
qb_gguf_writer_free (QbGgufWriter *w)
{
  if (w == NULL)
    return;
  qb_gguf_writer_abort (w);
  g_ptr_array_unref (w->kvs);
  g_ptr_array_unref (w->tensors);
  g_free (w);
}

void
qb_gguf_writer_set_version (QbGgufWriter *w, guint32 version)
{
  g_return_if_fail (version == 2 || version == 3);
  w->version = version;
}

/* ---- encoding --------------------------------------------------------- */

static void
put_u32 (GByteArray *b, guint32 v)
{
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

static void
put_u64 (GByteArray *b, guint64 v)
{
  g_byte_array_append (b, (const guint8 *) &v, 8);
}

static void
put_string (GByteArray *b, const char *s, guint64 len)
{
  put_u64 (b, len);
  g_byte_array_append (b, (const guint8 *) s, len);
}

static void
put_array (GByteArray *b, QbGgufType element_type, gconstpointer data, guint64 n)
{
  guint size = qb_gguf_type_fixed_size (element_type);

  put_u32 (b, element_type);
  put_u64 (b, n);
  if (size != 0)
    g_byte_array_append (b, data, n * size);
  else if (element_type == QB_GGUF_TYPE_STRING)
    for (guint64 i = 0; i < n; i++)
      {
        const QbGgufString *s = (const QbGgufString *) data + i;
        put_string (b, s->str, s->len);
      }
  else
    for (guint64 i = 0; i < n; i++)
      {
        const QbGgufKv *a = (const QbGgufKv *) data + i;
        put_array (b, a->array_type, a->array, a->n);
      }
}

/* Appends the value of a pair read from a file, in its own type. */
static void
put_value (GByteArray *b, const QbGgufKv *kv)
{
  guint8 u8;
  guint16 u16;
  guint32 u32;
  float f32;

  switch (kv->type)
    {
    case QB_GGUF_TYPE_UINT8:
    case QB_GGUF_TYPE_INT8:    u8 = (guint8) kv->v.u64; g_byte_array_append (b, &u8, 1); break;
    case QB_GGUF_TYPE_BOOL:    u8 = (guint8) kv->v.b; g_byte_array_append (b, &u8, 1); break;
    case QB_GGUF_TYPE_UINT16:
    case QB_GGUF_TYPE_INT16:   u16 = (guint16) kv->v.u64; g_byte_array_append (b, (guint8 *) &u16, 2); break;
    case QB_GGUF_TYPE_UINT32:
    case QB_GGUF_TYPE_INT32:   u32 = (guint32) kv->v.u64; put_u32 (b, u32); break;
    case QB_GGUF_TYPE_FLOAT32: f32 = (float) kv->v.f64; g_byte_array_append (b, (guint8 *) &f32, 4); break;
    case QB_GGUF_TYPE_UINT64:
    case QB_GGUF_TYPE_INT64:
    case QB_GGUF_TYPE_FLOAT64: put_u64 (b, kv->v.u64); break;
    case QB_GGUF_TYPE_STRING:  put_string (b, kv->v.str.str, kv->v.str.len); break;
    case QB_GGUF_TYPE_ARRAY:   put_array (b, kv->array_type, kv->array, kv->n); break;
    default:                   g_return_if_reached ();
    }
}

static GByteArray *
encoded_new (QbGgufType type)
{
  GByteArray *b = g_byte_array_new ();
  put_u32 (b, type);
  return b;
}

/* Takes enc; a key already set keeps its place. */
static void
set_encoded (QbGgufWriter *w, const char *key, GByteArray *enc)
{
  WriterKv *kv;

  g_return_if_fail (key != NULL && *key != '\0');
  for (guint i = 0; i < w->kvs->len; i++)
    {
      kv = g_ptr_array_index (w->kvs, i);
      if (strcmp (kv->key, key) == 0)
        {
          g_byte_array_unref (kv->encoded);
          kv->encoded = enc;
          return;
        }
    }
  kv = g_new0 (WriterKv, 1);
  kv->key = g_strdup (key);
  kv->encoded = enc;
  g_ptr_array_add (w->kvs, kv);
}

void
qb_gguf_writer_copy_kv (QbGgufWriter *w, const QbGgufKv *kv)
{
  GByteArray *enc = encoded_new (kv->type);

  put_value (enc, kv);
  set_encoded (w, kv->key.str, enc);
}

static void
set_fixed (QbGgufWriter *w, const char *key, QbGgufType type, gconstpointer v)
{
  GByteArray *enc = encoded_new (type);

  g_byte_array_append (enc, v, qb_gguf_type_fixed_size (type));
  set_encoded (w, key, enc);
}

void qb_gguf_writer_set_uint32  (QbGgufWriter *w, const char *key, guint32 v) { set_fixed (w, key, QB_GGUF_TYPE_UINT32, &v); }
void qb_gguf_writer_set_int32   (QbGgufWriter *w, const char *key, gint32 v)  { set_fixed (w, key, QB_GGUF_TYPE_INT32, &v); }
void qb_gguf_writer_set_uint64  (QbGgufWriter *w, const char *key, guint64 v) { set_fixed (w, key, QB_GGUF_TYPE_UINT64, &v); }
void qb_gguf_writer_set_float32 (QbGgufWriter *w, const char *key, float v)   { set_fixed (w, key, QB_GGUF_TYPE_FLOAT32, &v); }

void
qb_gguf_writer_set_bool (QbGgufWriter *w, const char *key, gboolean v)
{
  guint8 b = v ? 1 : 0;
  set_fixed (w, key, QB_GGUF_TYPE_BOOL, &b);
}

void
qb_gguf_writer_set_string (QbGgufWriter *w, const char *key, const char *v)
{
  GByteArray *enc = encoded_new (QB_GGUF_TYPE_STRING);

  put_string (enc, v, strlen (v));
  set_encoded (w, key, enc);
}

void
qb_gguf_writer_set_string_array (QbGgufWriter *w, const char *key, const char *const *v, guint64 n)
{
  GByteArray *enc = encoded_new (QB_GGUF_TYPE_ARRAY);

  put_u32 (enc, QB_GGUF_TYPE_STRING);
  put_u64 (enc, n);
  for (guint64 i = 0; i < n; i++)
    put_string (enc, v[i], strlen (v[i]));
  set_encoded (w, key, enc);
}

void
qb_gguf_writer_set_array (QbGgufWriter *w, const char *key, QbGgufType element_type,
                          gconstpointer data, guint64 n)
{
  GByteArray *enc;

  g_return_if_fail (qb_gguf_type_fixed_size (element_type) != 0);
  enc = encoded_new (QB_GGUF_TYPE_ARRAY);
  put_array (enc, element_type, data, n);
  set_encoded (w, key, enc);
}

void
qb_gguf_writer_remove_kv (QbGgufWriter *w, const char *key)
{
  for (guint i = 0; i < w->kvs->len; i++)
    {
      WriterKv *kv = g_ptr_array_index (w->kvs, i);
      if (strcmp (kv->key, key) == 0)
        {
          g_ptr_array_remove_index (w->kvs, i);
          return;
        }
    }
}

guint
qb_gguf_writer_add_tensor (QbGgufWriter *w, const char *name, guint n_dims,
                           const gint64 *ne, QbDType dtype)
{
  WriterTensor *t = g_new0 (WriterTensor, 1);
  gint64 n = 1;

  g_return_val_if_fail (w->fd < 0, G_MAXUINT);
  t->name = g_strdup (name);
  t->n_dims = n_dims;
  t->dtype = dtype;
  t->valid = n_dims <= QB_GGUF_MAX_DIMS;
  for (guint d = 0; d < QB_GGUF_MAX_DIMS; d++)
    {
      t->ne[d] = t->valid && d < n_dims ? ne[d] : 1;
      if (t->ne[d] < 0 || __builtin_mul_overflow (n, t->ne[d], &n))
        t->valid = FALSE;
    }
  if (t->valid)
    {
      const QbDTypeInfo *info = qb_dtype_info (dtype);
      t->valid = info != NULL && info->is_ggml && t->ne[0] % info->block_size == 0 &&
                 qb_dtype_bytes (dtype, n, &t->n_bytes);
    }
  g_ptr_array_add (w->tensors, t);
  return w->tensors->len - 1;
}

/* ---- writing ---------------------------------------------------------- */

static gboolean
set_io_error (GError **error, const char *path, const char *what, int errsv)
{
  g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO, "%s: %s: %s", path, what, g_strerror (errsv));
  return FALSE;
}

static gboolean
pwrite_all (int fd, const guint8 *p, guint64 n, guint64 offset)
{
  while (n > 0)
    {
      ssize_t k = pwrite (fd, p, MIN (n, G_GUINT64_CONSTANT (1) << 30), (off_t) offset);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        {
          if (k == 0)
            errno = EIO;
          return FALSE;
        }
      p += k;
      n -= (guint64) k;
      offset += (guint64) k;
    }
  return TRUE;
}

/* general.alignment, if set, as an unsigned integer of any width. */
static gboolean
find_alignment (QbGgufWriter *w, guint64 *out, GError **error)
{
  *out = QB_GGUF_DEFAULT_ALIGNMENT;
  for (guint i = 0; i < w->kvs->len; i++)
    {
      WriterKv *kv = g_ptr_array_index (w->kvs, i);
      guint32 type;
      guint64 v = 0;
      guint size;

      if (strcmp (kv->key, "general.alignment") != 0)
        continue;
      memcpy (&type, kv->encoded->data, 4);
      size = qb_gguf_type_fixed_size (type);
      if (type == QB_GGUF_TYPE_UINT8 || type == QB_GGUF_TYPE_UINT16 ||
          type == QB_GGUF_TYPE_UINT32 || type == QB_GGUF_TYPE_UINT64)
        memcpy (&v, kv->encoded->data + 4, size);
      if (v == 0 || (v & (v - 1)) != 0 || v > (G_GUINT64_CONSTANT (1) << 30))
        {
          g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID,
                       "general.alignment must be an unsigned power of two up to 2^30");
          return FALSE;
        }
      *out = v;
    }
  return TRUE;
}

/* Checks the tensors and assigns their offsets; returns the size of the
 * data section. */
static gboolean
layout_tensors (QbGgufWriter *w, guint64 *data_size, GError **error)
{
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  guint64 offset = 0;

  for (guint i = 0; i < w->tensors->len; i++)
    {
      WriterTensor *t = g_ptr_array_index (w->tensors, i);

      if (!t->valid)
        {
          g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID,
                       "tensor %u '%s': its shape and type %s give no valid size", i, t->name,
                       qb_dtype_name (t->dtype));
          return FALSE;
        }
      if (!g_hash_table_add (names, t->name))
        {
          g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID,
                       "tensor %u '%s': the name is used twice", i, t->name);
          return FALSE;
        }
      t->offset = offset;
      t->written = 0;
      if (__builtin_add_overflow (offset, t->n_bytes, &offset) ||
          !qb_gguf_pad (offset, w->alignment, &offset))
        {
          g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID, "the tensors' total size overflows");
          return FALSE;
        }
    }
  *data_size = offset;
  return TRUE;
}

static GByteArray *
build_header (QbGgufWriter *w)
{
  GByteArray *b = g_byte_array_new ();
  guint64 padded = 0;
  guint old_len;

  g_byte_array_append (b, (const guint8 *) QB_GGUF_MAGIC, 4);
  put_u32 (b, w->version);
  put_u64 (b, w->tensors->len);
  put_u64 (b, w->kvs->len);
  for (guint i = 0; i < w->kvs->len; i++)
    {
      WriterKv *kv = g_ptr_array_index (w->kvs, i);
      put_string (b, kv->key, strlen (kv->key));
      g_byte_array_append (b, kv->encoded->data, kv->encoded->len);
    }
  for (guint i = 0; i < w->tensors->len; i++)
    {
      WriterTensor *t = g_ptr_array_index (w->tensors, i);
      put_string (b, t->name, strlen (t->name));
      put_u32 (b, t->n_dims);
      for (guint d = 0; d < t->n_dims; d++)
        put_u64 (b, (guint64) t->ne[d]);
      put_u32 (b, t->dtype);
      put_u64 (b, t->offset);
    }
  old_len = b->len;
  qb_gguf_pad (old_len, w->alignment, &padded);
  g_byte_array_set_size (b, (guint) padded);      /* does not clear the new bytes */
  memset (b->data + old_len, 0, padded - old_len);
  return b;
}

gboolean
qb_gguf_writer_begin (QbGgufWriter *w, const char *path, GError **error)
{
  g_autoptr(GByteArray) header = NULL;
  guint64 data_size, total;
  guint header_len;

  g_return_val_if_fail (w->fd < 0, FALSE);

  if (!find_alignment (w, &w->alignment, error) || !layout_tensors (w, &data_size, error))
    return FALSE;

  header = build_header (w);
  header_len = header->len;
  w->data_offset = header_len;
  if (__builtin_add_overflow (w->data_offset, data_size, &total))
    return set_io_error (error, path, "size", EFBIG);

  w->path = g_strdup (path);
  {
    g_autoptr(GError) local = NULL;
    w->fd = qb_file_create_temp (path, 0666, &w->tmp_path, &local);
    if (w->fd < 0)
      {
        g_clear_pointer (&w->path, g_free);
        g_set_error_literal (error, QB_GGUF_ERROR, QB_GGUF_ERROR_IO, local->message);
        return FALSE;
      }
  }

  /* Reserve the space now so that a full disk shows at once; the unwritten
   * gaps read as zeros, which is the padding GGUF wants. */
  if (fallocate (w->fd, 0, 0, (off_t) total) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
    {
      int errsv = errno;
      qb_gguf_writer_abort (w);
      return set_io_error (error, path, "cannot reserve space", errsv);
    }
  if (ftruncate (w->fd, (off_t) total) != 0 || !pwrite_all (w->fd, header->data, header_len, 0))
    {
      int errsv = errno;
      qb_gguf_writer_abort (w);
      return set_io_error (error, path, "cannot write", errsv);
    }
  return TRUE;
}

gboolean
qb_gguf_writer_write_tensor_range (QbGgufWriter *w, guint index, guint64 offset,
                                   gconstpointer data, guint64 n_bytes, GError **error)
{
  WriterTensor *t;

  g_return_val_if_fail (w->fd >= 0, FALSE);
  g_return_val_if_fail (index < w->tensors->len, FALSE);

  t = g_ptr_array_index (w->tensors, index);
  if (offset > t->n_bytes || n_bytes > t->n_bytes - offset)
    {
      g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID,
                   "%s: tensor '%s': bytes %" G_GUINT64_FORMAT "..+%" G_GUINT64_FORMAT
                   " lie outside its %" G_GUINT64_FORMAT " bytes", w->path, t->name, offset,
                   n_bytes, t->n_bytes);
      return FALSE;
    }
  if (!pwrite_all (w->fd, data, n_bytes, w->data_offset + t->offset + offset))
    return set_io_error (error, w->path, "cannot write", errno);
#ifdef SYNC_FILE_RANGE_WRITE
  /* Starts writing these pages to disk now, without waiting: the fsync at
   * the end then finds little left, as the disk worked while the next
   * tensors were quantized. */
  sync_file_range (w->fd, (off64_t) (w->data_offset + t->offset + offset), (off64_t) n_bytes,
                   SYNC_FILE_RANGE_WRITE);
#endif
  __atomic_fetch_add (&t->written, n_bytes, __ATOMIC_RELAXED);
  return TRUE;
}

gboolean
qb_gguf_writer_write_tensor (QbGgufWriter *w, guint index, gconstpointer data,
                             guint64 n_bytes, GError **error)
{
  WriterTensor *t;

  g_return_val_if_fail (index < w->tensors->len, FALSE);
  t = g_ptr_array_index (w->tensors, index);
  if (n_bytes != t->n_bytes)
    {
      g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID,
                   "tensor '%s': %" G_GUINT64_FORMAT " bytes given, %" G_GUINT64_FORMAT " expected",
                   t->name, n_bytes, t->n_bytes);
      return FALSE;
    }
  return qb_gguf_writer_write_tensor_range (w, index, 0, data, n_bytes, error);
}

static void
fsync_folder (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd >= 0)
    {
      fsync (fd);
      close (fd);
    }
}

static gboolean
fail_and_abort (QbGgufWriter *w, GError **error, const char *what, int errsv)
{
  g_autofree char *path = g_strdup (w->path);

  qb_gguf_writer_abort (w);
  return set_io_error (error, path, what, errsv);
}

gboolean
qb_gguf_writer_finish (QbGgufWriter *w, GError **error)
{
  int rc;

  g_return_val_if_fail (w->fd >= 0, FALSE);

  for (guint i = 0; i < w->tensors->len; i++)
    {
      WriterTensor *t = g_ptr_array_index (w->tensors, i);
      if (t->written != t->n_bytes)
        {
          g_set_error (error, QB_GGUF_ERROR, QB_GGUF_ERROR_INVALID,
                       "%s: tensor %u '%s': %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                       " bytes were written", w->path, i, t->name, t->written, t->n_bytes);
          qb_gguf_writer_abort (w);
          return FALSE;
        }
    }

  if (fsync (w->fd) != 0)
    return fail_and_abort (w, error, "cannot write", errno);
  rc = close (w->fd);
  w->fd = -1;
  if (rc != 0)
    return fail_and_abort (w, error, "cannot write", errno);
  if (qb_file_rename_over (w->tmp_path, w->path) != 0)
    return fail_and_abort (w, error, "cannot rename the temporary file into place", errno);
  fsync_folder (w->path);
  g_clear_pointer (&w->tmp_path, g_free);
  g_clear_pointer (&w->path, g_free);
  return TRUE;
}

void
qb_gguf_writer_abort (QbGgufWriter *w)
{
  if (w->fd >= 0)
    close (w->fd);
  w->fd = -1;
  if (w->tmp_path != NULL)
    g_unlink (w->tmp_path);
  g_clear_pointer (&w->tmp_path, g_free);
  g_clear_pointer (&w->path, g_free);
}
