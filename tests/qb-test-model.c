/* SPDX-License-Identifier: MIT */
/* qb-test-model.c — synthetic LLaMA-shaped GGUF models for tests. */
#include "qb-test-model.h"
#include "qb-test-util.h"
#include "qb-activation-stats.h"
#include "qb-calibration.h"
#include "qb-gguf.h"
#include "qb-llama.h"

#include <math.h>
#include <string.h>

static guint32
next_u32 (guint64 *s)
{
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (guint32) (*s >> 32);
}

void
qb_test_gaussian (guint64 *state, float *x, gsize n, float std)
{
  for (gsize i = 0; i < n; i += 2)
    {
      double u1 = (next_u32 (state) + 1.0) / 4294967297.0;
      double u2 = next_u32 (state) / 4294967296.0;
      double r = sqrt (-2.0 * log (u1));
      x[i] = (float) (std * r * cos (2 * G_PI * u2));
      if (i + 1 < n)
        x[i + 1] = (float) (std * r * sin (2 * G_PI * u2));
    }
}

typedef struct {
  char   *name;
  guint   n_dims;
  gint64  ne[2];
  gboolean norm;
} Spec;

static void
add (GArray *specs, const char *name, guint n_dims, gint64 ne0, gint64 ne1, gboolean norm)
{
  Spec s = { g_strdup (name), n_dims, { ne0, ne1 }, norm };
  g_array_append_val (specs, s);
}

char *
qb_test_write_llama (const char *dir, const char *name, const QbTestLlama *p)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GArray) specs = g_array_new (FALSE, FALSE, sizeof (Spec));
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  guint n_embd_kv = p->n_embd / p->n_head * p->n_head_kv;
  guint64 state = p->seed ? p->seed : 1;

  qb_gguf_writer_set_string (w, "general.architecture", "llama");
  qb_gguf_writer_set_string (w, "general.name", "synthetic");
  qb_gguf_writer_set_uint32 (w, "llama.block_count", p->n_layer);
  qb_gguf_writer_set_uint32 (w, "llama.embedding_length", p->n_embd);
  qb_gguf_writer_set_uint32 (w, "llama.feed_forward_length", p->n_ff);
  qb_gguf_writer_set_uint32 (w, "llama.attention.head_count", p->n_head);
  qb_gguf_writer_set_uint32 (w, "llama.attention.head_count_kv", p->n_head_kv);
  qb_gguf_writer_set_uint32 (w, "llama.context_length", 256);
  qb_gguf_writer_set_float32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);

  add (specs, "token_embd.weight", 2, p->n_embd, p->n_vocab, FALSE);
  for (guint l = 0; l < p->n_layer; l++)
    {
      char buf[64];
#define T(suffix, nd, a, b, norm) \
      (g_snprintf (buf, sizeof buf, "blk.%u." suffix, l), add (specs, buf, nd, a, b, norm))
      T ("attn_norm.weight", 1, p->n_embd, 1, TRUE);
      T ("attn_q.weight", 2, p->n_embd, p->n_embd, FALSE);
      T ("attn_k.weight", 2, p->n_embd, n_embd_kv, FALSE);
      T ("attn_v.weight", 2, p->n_embd, n_embd_kv, FALSE);
      T ("attn_output.weight", 2, p->n_embd, p->n_embd, FALSE);
      T ("ffn_norm.weight", 1, p->n_embd, 1, TRUE);
      T ("ffn_gate.weight", 2, p->n_embd, p->n_ff, FALSE);
      T ("ffn_up.weight", 2, p->n_embd, p->n_ff, FALSE);
      T ("ffn_down.weight", 2, p->n_ff, p->n_embd, FALSE);
#undef T
    }
  add (specs, "output_norm.weight", 1, p->n_embd, 1, TRUE);
  if (!p->tied)
    add (specs, "output.weight", 2, p->n_embd, p->n_vocab, FALSE);

  for (guint i = 0; i < specs->len; i++)
    {
      Spec *s = &g_array_index (specs, Spec, i);
      qb_gguf_writer_add_tensor (w, s->name, s->n_dims, s->ne, s->norm ? QB_DTYPE_F32 : p->dtype);
    }
  if (!qb_gguf_writer_begin (w, path, &error))
    g_error ("%s", error->message);
  for (guint i = 0; i < specs->len; i++)
    {
      Spec *s = &g_array_index (specs, Spec, i);
      gsize n = s->ne[0] * s->ne[1];
      g_autofree float *x = g_new (float, n);
      QbDType dtype = s->norm ? QB_DTYPE_F32 : p->dtype;

      if (s->norm)
        {
          /* Norm weights sit near 1. */
          qb_test_gaussian (&state, x, n, 0.05f);
          for (gsize j = 0; j < n; j++)
            x[j] += 1.0f;
        }
      else
        {
          qb_test_gaussian (&state, x, n, 0.02f);
          /* A few outliers, as real weights have. */
          for (gsize j = 0; j < n; j += 997)
            x[j] *= 8.0f;
        }
      if (dtype == QB_DTYPE_F16)
        {
          g_autofree guint16 *h = g_new (guint16, n);
          for (gsize j = 0; j < n; j++)
            h[j] = qb_fp32_to_fp16 (x[j]);
          if (!qb_gguf_writer_write_tensor (w, i, h, 2 * n, &error))
            g_error ("%s", error->message);
        }
      else if (!qb_gguf_writer_write_tensor (w, i, x, 4 * n, &error))
        g_error ("%s", error->message);
      g_free (s->name);
    }
  if (!qb_gguf_writer_finish (w, &error))
    g_error ("%s", error->message);
  return path;
}

void
qb_test_poison_tensor (const char *path, const char *tensor, gint64 index, float value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autofree char *contents = NULL;
  const QbTensor *t;
  const char *at;
  gsize len = 0, width;
  guint16 h = qb_fp32_to_fp16 (value);

  g_assert_no_error (error);
  t = qb_model_find_tensor (model, tensor, NULL);
  g_assert_nonnull (t);
  g_assert_true (t->dtype == QB_DTYPE_F32 || t->dtype == QB_DTYPE_F16);
  g_assert_cmpint (index, <, t->n_params);
  g_assert_true (g_file_get_contents (path, &contents, &len, &error));
  /* The tensor's bytes are where they occur in the file (unique here). */
  at = memmem (contents, len, t->data, t->n_bytes);
  g_assert_nonnull (at);
  width = t->dtype == QB_DTYPE_F32 ? 4 : 2;
  memcpy (contents + (at - contents) + index * width, width == 4 ? (const void *) &value
                                                                 : (const void *) &h, width);
  g_clear_object (&model);
  g_assert_true (g_file_set_contents (path, contents, len, &error));
}

void
qb_test_model_fixture_open (QbTestModelFixture *f, const QbTestLlama *spec)
{
  g_autoptr(GError) error = NULL;

  f->dir = qb_test_tmpdir ();
  f->path = qb_test_write_llama (f->dir, "model.gguf", spec);
  f->model = qb_model_open (f->path, &error);
  g_assert_no_error (error);
}

void
qb_test_model_fixture_close (QbTestModelFixture *f)
{
  g_clear_object (&f->model);
  g_clear_pointer (&f->path, g_free);
  g_clear_pointer (&f->dir, g_free);
}

struct _QbTestSafetensors {
  GString    *header;
  GByteArray *data;
};

QbTestSafetensors *
qb_test_safetensors_new (void)
{
  QbTestSafetensors *st = g_new0 (QbTestSafetensors, 1);

  st->header = g_string_new ("{");
  st->data = g_byte_array_new ();
  return st;
}

void
qb_test_safetensors_add (QbTestSafetensors *st, const char *name, guint n_dims,
                         const gint64 *shape, const float *values)
{
  gint64 n = 1;

  g_string_append_printf (st->header, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                          st->header->len > 1 ? "," : "", name);
  for (guint i = 0; i < n_dims; i++)
    {
      g_string_append_printf (st->header, "%s%" G_GINT64_FORMAT, i ? "," : "", shape[i]);
      n *= shape[i];
    }
  g_string_append_printf (st->header, "],\"data_offsets\":[%u,%" G_GUINT64_FORMAT "]}",
                          st->data->len, st->data->len + sizeof (float) * (guint64) n);
  g_byte_array_append (st->data, (const guint8 *) values, (guint) (sizeof (float) * n));
}

void
qb_test_safetensors_write (QbTestSafetensors *st, const char *path)
{
  g_autoptr(GByteArray) file = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  guint64 header_len;

  g_string_append (st->header, "}");
  while (st->header->len % 8 != 0)
    g_string_append_c (st->header, ' ');
  header_len = GUINT64_TO_LE (st->header->len);
  g_byte_array_append (file, (const guint8 *) &header_len, 8);
  g_byte_array_append (file, (const guint8 *) st->header->str, st->header->len);
  g_byte_array_append (file, st->data->data, st->data->len);
  g_assert_true (g_file_set_contents (path, (const char *) file->data, file->len, &error));
  g_assert_no_error (error);
  g_string_free (st->header, TRUE);
  g_byte_array_unref (st->data);
  g_free (st);
}

QbActivationStats *
qb_test_activation_stats (QbLlama *llama, guint n_ctx, guint n_chunks)
{
  g_autofree gint32 *tokens = g_new (gint32, (gsize) n_ctx * n_chunks);
  g_autoptr(QbCalibration) calib = NULL;
  g_autoptr(GError) error = NULL;
  QbActivationStats *stats;
  QbCalibrationOptions co;
  QbStatsOptions so;

  qb_llama_set_threads (llama, 2);
  for (guint i = 0; i < n_ctx * n_chunks; i++)
    tokens[i] = (gint32) (3 + (i * 2654435761u) % 500);
  qb_calibration_options_init (&co);
  co.n_ctx = n_ctx;
  co.n_chunks = n_chunks;
  calib = qb_calibration_new_from_tokens (tokens, n_ctx * n_chunks, 1, &co, &error);
  g_assert_no_error (error);
  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  stats = qb_activation_stats_compute (llama, calib, &so, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return stats;
}
