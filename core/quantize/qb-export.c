/* SPDX-License-Identifier: MIT */
/* qb-export.c — GGUF and safetensors output, written atomically.
 *
 * GGUF: every key/value of the source kept (split keys dropped), plus
 * general.file_type (the closest LLAMA_FTYPE), general.quantization_version
 * = 2 and quantbench.plan (the plan as JSON).  Tensors keep their names,
 * shapes and order; each is stored in its format's ggml type, kept tensors
 * as they were, and formats with no ggml type as fake-quantized F16.
 * A 1-D tensor (norm, bias) that the plan quantizes is stored
 * fake-quantized as F32: llama.cpp only multiplies those in F32.
 *
 * safetensors: an 8-byte little-endian header length, the JSON header
 * (name -> dtype, shape [outer..inner], data_offsets; "__metadata__" with
 * the plan), padded with spaces to 8 bytes, then the data.  Quantized
 * tensors are stored fake-quantized as F16 (F32/F16/BF16 formats as
 * themselves), kept tensors as stored when safetensors has the type, else
 * converted to F32.
 */
#include "qb-export-private.h"
#include "qb-file.h"
#include "qb-gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#define GGML_QUANTIZATION_VERSION 2
#define MAX_NAMES_IN_SUMMARY 6

struct _QbExporter {
  QbExportKind        kind;
  char               *path;
  QbModel            *model;
  guint               n_tensors;
  QbExportTensorKind *tensor_kind;
  QbDType            *file_dtype;
  guint64            *file_bytes;
  char               *summary;

  /* GGUF */
  QbGgufWriter       *gguf;

  /* safetensors */
  int                 fd;
  char               *tmp_path;
  guint64             data_start;
  guint64            *offsets;
  gboolean           *written;
  GMutex              lock;
  gboolean            open;
};

static const struct {
  QbDType     dtype;
  const char *name;
} safetensors_dtypes[] = {
  { QB_DTYPE_F64, "F64" }, { QB_DTYPE_F32, "F32" }, { QB_DTYPE_F16, "F16" },
  { QB_DTYPE_BF16, "BF16" }, { QB_DTYPE_I64, "I64" }, { QB_DTYPE_I32, "I32" },
  { QB_DTYPE_I16, "I16" }, { QB_DTYPE_I8, "I8" }, { QB_DTYPE_U8, "U8" },
  { QB_DTYPE_BOOL, "BOOL" }, { QB_DTYPE_F8_E4M3, "F8_E4M3" },
  { QB_DTYPE_F8_E5M2, "F8_E5M2" }, { QB_DTYPE_U16, "U16" }, { QB_DTYPE_U32, "U32" },
  { QB_DTYPE_U64, "U64" },
};

static const char *
safetensors_dtype_name (QbDType dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (safetensors_dtypes); i++)
    if (safetensors_dtypes[i].dtype == dtype)
      return safetensors_dtypes[i].name;
  return NULL;
}

static gboolean
is_float_dtype (QbDType dtype)
{
  return dtype == QB_DTYPE_F32 || dtype == QB_DTYPE_F16 || dtype == QB_DTYPE_BF16;
}

/* Decides how each tensor is stored and in which type. */
static gboolean
plan_tensor (QbExporter *ex, guint i, const QbTensorChoice *c, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (ex->model, i);
  const QbDTypeInfo *info = qb_dtype_info (t->dtype);
  gboolean gguf = ex->kind == QB_EXPORT_GGUF;

  if (c->format == NULL)
    {
      gboolean storable = gguf ? (info && info->is_ggml) : safetensors_dtype_name (t->dtype) != NULL;
      ex->tensor_kind[i] = storable ? QB_EXPORT_COPY : QB_EXPORT_CONVERT_F32;
      ex->file_dtype[i] = storable ? t->dtype : QB_DTYPE_F32;
      if (!storable && !qb_dtype_is_readable (t->dtype))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       "%s: tensor %s is stored as %s, which %s cannot hold and Quantbench "
                       "cannot convert", ex->path, t->name, qb_dtype_name (t->dtype),
                       gguf ? "GGUF" : "safetensors");
          return FALSE;
        }
    }
  else if (gguf && t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1 && c->format->dtype != QB_DTYPE_F32)
    {
      ex->tensor_kind[i] = QB_EXPORT_FAKE_F32;
      ex->file_dtype[i] = QB_DTYPE_F32;
    }
  else if (gguf ? (c->format->dtype != QB_DTYPE_INVALID && qb_dtype_info (c->format->dtype)
                   && qb_dtype_info (c->format->dtype)->is_ggml)
                : is_float_dtype (c->format->dtype))
    {
      ex->tensor_kind[i] = QB_EXPORT_NATIVE;
      ex->file_dtype[i] = c->format->dtype;
    }
  else
    {
      ex->tensor_kind[i] = QB_EXPORT_FAKE_F16;
      ex->file_dtype[i] = QB_DTYPE_F16;
    }

  if (ex->tensor_kind[i] == QB_EXPORT_COPY)
    ex->file_bytes[i] = t->n_bytes;
  else if (!qb_dtype_bytes (ex->file_dtype[i], t->n_params, &ex->file_bytes[i]))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: tensor %s cannot be stored as %s", ex->path, t->name,
                   qb_dtype_name (ex->file_dtype[i]));
      return FALSE;
    }
  return TRUE;
}

static char *
build_summary (QbExporter *ex, const QbPlanResolution *res)
{
  GString *s = g_string_new (ex->kind == QB_EXPORT_GGUF ? "GGUF" : "safetensors");
  guint counts[5] = { 0 };
  guint listed = 0;

  for (guint i = 0; i < ex->n_tensors; i++)
    counts[ex->tensor_kind[i]]++;
  g_string_append_printf (s, " %s: ", ex->path);
  g_string_append_printf (s, "%u tensors in their %s", counts[QB_EXPORT_NATIVE],
                          ex->kind == QB_EXPORT_GGUF ? "ggml types" : "float types");
  g_string_append_printf (s, ", %u kept as stored", counts[QB_EXPORT_COPY]);
  if (counts[QB_EXPORT_CONVERT_F32])
    g_string_append_printf (s, ", %u kept but converted to F32", counts[QB_EXPORT_CONVERT_F32]);
  if (counts[QB_EXPORT_FAKE_F32])
    g_string_append_printf (s, ", %u 1-D tensors quantized and stored dequantized as F32 "
                            "(llama.cpp needs F32 norms)", counts[QB_EXPORT_FAKE_F32]);
  g_string_append_printf (s, ", %u fake-quantized (quantized, dequantized, stored as F16)",
                          counts[QB_EXPORT_FAKE_F16]);
  for (guint i = 0; i < ex->n_tensors; i++)
    if (ex->tensor_kind[i] == QB_EXPORT_FAKE_F16)
      {
        if (listed == MAX_NAMES_IN_SUMMARY)
          {
            g_string_append_printf (s, ", and %u more", counts[QB_EXPORT_FAKE_F16] - listed);
            break;
          }
        g_string_append_printf (s, "%s%s (%s)", listed ? ", " : ": ",
                                qb_model_get_tensor (ex->model, i)->name,
                                res->choices[i].format->name);
        listed++;
      }
  return g_string_free (s, FALSE);
}

/* ---- GGUF ---------------------------------------------------------------- */

static gboolean
is_dropped_key (const QbGgufString *key)
{
  static const char * const dropped[] = {
    "general.file_type", "general.quantization_version", "quantbench.plan",
    "split.no", "split.count", "split.tensors.count",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (dropped); i++)
    if (key->len == strlen (dropped[i]) && memcmp (key->str, dropped[i], key->len) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
gguf_begin (QbExporter *ex, QbPlan *plan, const QbPlanResolution *res, GError **error)
{
  QbGguf *src = qb_model_get_gguf (ex->model);
  g_autofree char *plan_json = qb_plan_to_json (plan);
  int ftype;
  gboolean any_fake = FALSE;

  ex->gguf = qb_gguf_writer_new ();
  if (src != NULL)
    for (guint64 i = 0; i < qb_gguf_get_n_kv (src); i++)
      {
        const QbGgufKv *kv = qb_gguf_get_kv (src, i);
        if (!is_dropped_key (&kv->key))
          qb_gguf_writer_copy_kv (ex->gguf, kv);
      }
  for (guint i = 0; i < ex->n_tensors; i++)
    any_fake |= ex->tensor_kind[i] == QB_EXPORT_FAKE_F16;
  ftype = qb_plan_resolution_llama_ftype (plan, ex->model, res);
  if (ftype < 0)
    ftype = any_fake ? 1 : 0;   /* MOSTLY_F16, ALL_F32 */
  qb_gguf_writer_set_uint32 (ex->gguf, "general.quantization_version", GGML_QUANTIZATION_VERSION);
  qb_gguf_writer_set_uint32 (ex->gguf, "general.file_type", (guint32) ftype);
  qb_gguf_writer_set_string (ex->gguf, "quantbench.plan", plan_json);

  for (guint i = 0; i < ex->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (ex->model, i);
      qb_gguf_writer_add_tensor (ex->gguf, t->name, t->n_dims, t->ne, ex->file_dtype[i]);
    }
  return qb_gguf_writer_begin (ex->gguf, ex->path, error);
}

/* ---- safetensors ------------------------------------------------------- */

static char *
safetensors_header (QbExporter *ex, QbPlan *plan)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *plan_json = qb_plan_to_json (plan);
  guint64 offset = 0;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "__metadata__");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "pt");
  json_builder_set_member_name (b, "quantbench.plan");
  json_builder_add_string_value (b, plan_json);
  json_builder_end_object (b);

  for (guint i = 0; i < ex->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (ex->model, i);

      ex->offsets[i] = offset;
      json_builder_set_member_name (b, t->name);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, safetensors_dtype_name (ex->file_dtype[i]));
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (int d = (int) t->n_dims - 1; d >= 0; d--)
        json_builder_add_int_value (b, t->ne[d]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "data_offsets");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, (gint64) offset);
      json_builder_add_int_value (b, (gint64) (offset + ex->file_bytes[i]));
      json_builder_end_array (b);
      json_builder_end_object (b);
      offset += ex->file_bytes[i];
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gboolean
write_all_at (int fd, const char *path, gconstpointer data, guint64 n, guint64 offset,
              GError **error)
{
  const guint8 *p = data;

  while (n > 0)
    {
      ssize_t w = pwrite (fd, p, MIN (n, (guint64) 1 << 30), (off_t) offset);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          int saved = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "%s: writing at offset %" G_GUINT64_FORMAT ": %s", path, offset,
                       w < 0 ? g_strerror (saved) : "no space written");
          return FALSE;
        }
      p += w;
      n -= w;
      offset += w;
    }
  return TRUE;
}

static gboolean
safetensors_begin (QbExporter *ex, QbPlan *plan, GError **error)
{
  g_autofree char *header = NULL;
  g_autoptr(GString) padded = NULL;
  guint64 total = 0, len;

  ex->offsets = g_new0 (guint64, MAX (ex->n_tensors, 1));
  ex->written = g_new0 (gboolean, MAX (ex->n_tensors, 1));
  header = safetensors_header (ex, plan);
  padded = g_string_new (header);
  while (padded->len % 8 != 0)
    g_string_append_c (padded, ' ');
  ex->data_start = 8 + padded->len;
  for (guint i = 0; i < ex->n_tensors; i++)
    total += ex->file_bytes[i];

  ex->fd = qb_file_create_temp (ex->path, 0644, &ex->tmp_path, error);
  if (ex->fd < 0)
    return FALSE;
  ex->open = TRUE;
  len = GUINT64_TO_LE ((guint64) padded->len);
  if (ftruncate (ex->fd, (off_t) (ex->data_start + total)) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "%s: cannot size the file: %s", ex->path, g_strerror (saved));
      return FALSE;
    }
  return write_all_at (ex->fd, ex->path, &len, 8, 0, error)
         && write_all_at (ex->fd, ex->path, padded->str, padded->len, 8, error);
}

static gboolean
safetensors_finish (QbExporter *ex, GError **error)
{
  g_autofree char *dir = NULL;
  int dfd;

  for (guint i = 0; i < ex->n_tensors; i++)
    if (!ex->written[i])
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: tensor %s was never written",
                     ex->path, qb_model_get_tensor (ex->model, i)->name);
        return FALSE;
      }
  if (fsync (ex->fd) != 0 || close (ex->fd) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s",
                   ex->path, g_strerror (saved));
      ex->fd = -1;
      return FALSE;
    }
  ex->fd = -1;
  if (qb_file_rename_over (ex->tmp_path, ex->path) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: cannot rename %s: %s",
                   ex->path, ex->tmp_path, g_strerror (saved));
      return FALSE;
    }
  g_clear_pointer (&ex->tmp_path, g_free);
  ex->open = FALSE;
  /* Make the rename itself durable. */
  dir = g_path_get_dirname (ex->path);
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  return TRUE;
}

/* ---- the exporter --------------------------------------------------------- */

/* The output must not be the model being read: renamed over it, the
 * export would replace the original.  Checked here (device and inode, a
 * link or a shard included) so that every caller, the window too, gets it. */
static gboolean
check_not_model (const char *path, QbModel *model, GError **error)
{
  const char *inputs[] = { qb_model_get_path (model) };

  return qb_file_check_output (path, "The output", inputs, G_N_ELEMENTS (inputs), error);
}

QbExporter *
qb_exporter_begin (QbExportKind kind, const char *path, QbModel *model, QbPlan *plan,
                   const QbPlanResolution *res, GError **error)
{
  g_autoptr(QbExporter) ex = g_new0 (QbExporter, 1);
  gboolean ok;

  g_return_val_if_fail (kind == QB_EXPORT_GGUF || kind == QB_EXPORT_SAFETENSORS, NULL);
  ex->kind = kind;
  ex->path = g_strdup (path);
  ex->model = g_object_ref (model);
  ex->fd = -1;
  g_mutex_init (&ex->lock);
  if (!check_not_model (path, model, error))
    return NULL;
  ex->n_tensors = res->n_tensors;
  ex->tensor_kind = g_new0 (QbExportTensorKind, MAX (ex->n_tensors, 1));
  ex->file_dtype = g_new0 (QbDType, MAX (ex->n_tensors, 1));
  ex->file_bytes = g_new0 (guint64, MAX (ex->n_tensors, 1));

  for (guint i = 0; i < ex->n_tensors; i++)
    if (!plan_tensor (ex, i, &res->choices[i], error))
      return NULL;
  ex->summary = build_summary (ex, res);

  ok = kind == QB_EXPORT_GGUF ? gguf_begin (ex, plan, res, error)
                              : safetensors_begin (ex, plan, error);
  ex->open = TRUE;
  if (!ok)
    {
      qb_exporter_abort (ex);
      return NULL;
    }
  return g_steal_pointer (&ex);
}

QbExportTensorKind
qb_exporter_tensor_kind (QbExporter *ex, guint index)
{
  g_return_val_if_fail (index < ex->n_tensors, QB_EXPORT_COPY);
  return ex->tensor_kind[index];
}

gboolean
qb_exporter_write (QbExporter *ex, guint index, gconstpointer data, guint64 n_bytes,
                   GError **error)
{
  g_return_val_if_fail (index < ex->n_tensors, FALSE);
  if (n_bytes != ex->file_bytes[index])
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s: tensor %s: %" G_GUINT64_FORMAT " bytes given, %" G_GUINT64_FORMAT " expected",
                   ex->path, qb_model_get_tensor (ex->model, index)->name, n_bytes,
                   ex->file_bytes[index]);
      return FALSE;
    }
  if (ex->kind == QB_EXPORT_GGUF)
    return qb_gguf_writer_write_tensor (ex->gguf, index, data, n_bytes, error);

  if (!write_all_at (ex->fd, ex->path, data, n_bytes, ex->data_start + ex->offsets[index], error))
    return FALSE;
  g_mutex_lock (&ex->lock);
  ex->written[index] = TRUE;
  g_mutex_unlock (&ex->lock);
  return TRUE;
}

gboolean
qb_exporter_finish (QbExporter *ex, GError **error)
{
  gboolean ok;

  if (ex->kind == QB_EXPORT_GGUF)
    ok = qb_gguf_writer_finish (ex->gguf, error);
  else
    ok = safetensors_finish (ex, error);
  if (!ok)
    qb_exporter_abort (ex);
  ex->open = FALSE;
  return ok;
}

void
qb_exporter_abort (QbExporter *ex)
{
  if (ex->gguf != NULL)
    qb_gguf_writer_abort (ex->gguf);
  if (ex->fd >= 0)
    {
      close (ex->fd);
      ex->fd = -1;
    }
  if (ex->tmp_path != NULL)
    {
      g_unlink (ex->tmp_path);
      g_clear_pointer (&ex->tmp_path, g_free);
    }
  ex->open = FALSE;
}

const char *
qb_exporter_summary (QbExporter *ex)
{
  return ex->summary;
}

void
qb_exporter_free (QbExporter *ex)
{
  if (ex == NULL)
    return;
  if (ex->open)
    qb_exporter_abort (ex);
  g_clear_pointer (&ex->gguf, qb_gguf_writer_free);
  g_clear_object (&ex->model);
  g_free (ex->path);
  g_free (ex->tensor_kind);
  g_free (ex->file_dtype);
  g_free (ex->file_bytes);
  g_free (ex->summary);
  g_free (ex->offsets);
  g_free (ex->written);
  g_mutex_clear (&ex->lock);
  g_free (ex);
}
