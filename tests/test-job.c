/* SPDX-License-Identifier: MIT */
/* test-job.c — jobs: totals, cancellation, export and re-reading, plug-in
 * methods, importance look-up. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "qb-gguf.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-model.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

typedef QbTestModelFixture Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  QbTestLlama spec = { .n_layer = 3, .n_embd = 256, .n_ff = 768, .n_vocab = 1024,
                       .n_head = 8, .n_head_kv = 2, .dtype = QB_DTYPE_F16, .seed = 5 };
  qb_test_model_fixture_open (f, &spec);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  qb_test_model_fixture_close (f);
}

/* A mixed plan: K-quants by preset, Q8_0/Q4_0 rules, and a format with no
 * ggml type (the first INTn of the registry) for the ffn_up matrices. */
static QbPlan *
mixed_plan (const char **fake_format)
{
  QbPlan *plan = qb_plan_new ();

  *fake_format = NULL;
  qb_plan_set_preset (plan, "Q4_K_M");
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.attn_q.*", QB_RULE_GLOB, "Q8_0", NULL, NULL));
  g_assert_true (qb_plan_insert_rule (plan, -1, "^blk\\.1\\.attn_k", QB_RULE_REGEX, "Q4_0", NULL, NULL));
  for (guint k = 0; k < qb_format_count (); k++)
    if (qb_format_get (k)->dtype == QB_DTYPE_INVALID && qb_format_fits (qb_format_get (k), 256))
      {
        *fake_format = qb_format_get (k)->name;
        g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_up.*", QB_RULE_GLOB, *fake_format, NULL, NULL));
        break;
      }
  return plan;
}

static void
test_totals_match (Fixture *f, gconstpointer data)
{
  const char *fake;
  g_autoptr(QbPlan) plan = mixed_plan (&fake);
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(QbJob) job = qb_job_new (f->model, plan);
  g_autoptr(GError) error = NULL;
  guint64 written = 0, orig = 0;

  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, 2);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensorResult *r = qb_job_get_result (job, i);
      g_autoptr(GBytes) bytes = qb_job_get_tensor_data (job, i, NULL);

      g_assert_nonnull (r);
      g_assert_cmpuint (r->bytes, ==, res->choices[i].bytes);
      g_assert_cmpuint (g_bytes_get_size (bytes), ==, res->choices[i].bytes);
      written += g_bytes_get_size (bytes);
      orig += qb_model_get_tensor (f->model, i)->n_bytes;
    }
  /* The instant estimate is exactly what the job produced. */
  g_assert_cmpuint (written, ==, res->quantized_bytes);
  g_assert_cmpuint (qb_job_get_quantized_bytes (job), ==, res->quantized_bytes);
  g_assert_cmpuint (qb_job_get_original_bytes (job), ==, orig);
  g_assert_cmpuint (qb_job_get_n_results (job), ==, res->n_tensors);
}

/* Without metrics the job produces the same bytes, and measures nothing. */
static void
test_no_metrics (Fixture *f, gconstpointer data)
{
  const char *fake;
  g_autoptr(QbPlan) plan = mixed_plan (&fake);
  g_autoptr(QbJob) measured = qb_job_new (f->model, plan);
  g_autoptr(QbJob) quick = qb_job_new (f->model, plan);
  g_autoptr(GError) error = NULL;

  qb_job_set_keep_data (measured, TRUE);
  qb_job_set_keep_data (quick, TRUE);
  qb_job_set_metrics (quick, FALSE);
  g_assert_true (qb_job_run (measured, NULL, &error));
  g_assert_true (qb_job_run (quick, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (f->model); i++)
    {
      g_autoptr(GBytes) a = qb_job_get_tensor_data (measured, i, NULL);
      g_autoptr(GBytes) b = qb_job_get_tensor_data (quick, i, NULL);
      const QbTensorResult *r = qb_job_get_result (quick, i);
      QbQuantParams pa, pb;

      g_assert_true (g_bytes_equal (a, b));
      g_assert_cmpuint (r->bytes, ==, qb_job_get_result (measured, i)->bytes);
      g_assert_true (isnan (r->metrics.mse));
      g_assert_null (r->hist_original);
      g_assert_null (r->hist_error);
      if (qb_job_get_dequant_params (measured, i, &pa))
        {
          g_assert_true (qb_job_get_dequant_params (quick, i, &pb));
          if (pa.format->scope == QB_SCOPE_TENSOR)
            g_assert_cmpfloat (pa.tensor_absmax, ==, pb.tensor_absmax);
        }
    }
  g_assert_cmpuint (qb_job_get_quantized_bytes (quick), ==, qb_job_get_quantized_bytes (measured));
}

typedef struct {
  GCancellable *cancellable;
  guint         cancel_at;       /* the k-th tensor of the run */
  gboolean      cancelled_mid;
  guint         tensors_done;
  guint         last_done_reported;
} CancelState;

static void
cancel_mid_tensor (const QbJobProgress *p, gpointer user_data)
{
  CancelState *s = user_data;

  s->last_done_reported = p->tensors_done;
  if (p->tensors_done == s->cancel_at && p->current_fraction > 0.3
      && p->current_fraction < 0.9 && !s->cancelled_mid)
    {
      s->cancelled_mid = TRUE;
      g_cancellable_cancel (s->cancellable);
    }
}

static void
count_done (guint index, const QbTensorResult *r, gpointer user_data)
{
  CancelState *s = user_data;
  s->tensors_done++;
}

static guint
count_files (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (g_dir_read_name (d) != NULL)
    n++;
  return n;
}

static void
test_cancel_mid_tensor (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *out = g_build_filename (f->dir, "out", "cancelled.gguf", NULL);
  g_autofree char *out_dir = g_path_get_dirname (out);
  CancelState s = { cancellable, 0 };
  guint index;

  /* blk.0.ffn_gate (three chunks of rows) is cancelled midway. */
  g_assert_nonnull (qb_model_find_tensor (f->model, "blk.0.ffn_gate.weight", &index));
  g_assert_cmpint (g_mkdir_with_parents (out_dir, 0755), ==, 0);
  qb_plan_set_default_format (plan, "Q4_K");
  qb_plan_set_default_method (plan, "search");
  s.cancel_at = index;   /* tensors before it finish */
  job = qb_job_new (f->model, plan);
  qb_job_set_threads (job, 2);
  qb_job_set_export (job, QB_EXPORT_GGUF, out);
  qb_job_set_progress_func (job, cancel_mid_tensor, &s);
  qb_job_set_tensor_func (job, count_done, &s);

  g_assert_false (qb_job_run (job, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (s.cancelled_mid);
  /* Nothing written: no output, no temporary file. */
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_files (out_dir), ==, 0);
  g_assert_null (qb_job_get_export_summary (job));
  /* What finished before is kept; the cancelled tensor has no result. */
  g_assert_cmpuint (qb_job_get_n_results (job), ==, index);
  g_assert_cmpuint (s.tensors_done, ==, index);
  for (guint i = 0; i < index; i++)
    g_assert_nonnull (qb_job_get_result (job, i));
  g_assert_null (qb_job_get_result (job, index));
  g_rmdir (out_dir);
}

/* Dequantizes kept job data with its format. */
static float *
dequantize_data (QbJob *job, QbModel *model, guint i)
{
  const QbTensor *t = qb_model_get_tensor (model, i);
  const QbFormat *format = NULL;
  g_autoptr(GBytes) bytes = qb_job_get_tensor_data (job, i, &format);
  float *y = g_new (float, t->n_params);
  QbQuantParams params = { 0 };
  guint64 row_bytes;
  gint64 n_rows = qb_tensor_n_rows (t);
  const guint8 *q = g_bytes_get_data (bytes, NULL);

  g_assert_nonnull (format);
  g_assert_true (qb_format_row_bytes (format, t->ne[0], &row_bytes));
  g_assert_true (qb_job_get_dequant_params (job, i, &params));
  g_assert_true (params.format == format);
  for (gint64 r = 0; r < n_rows; r++)
    format->dequantize_row (&params, q + r * row_bytes, y + r * t->ne[0], t->ne[0]);
  return y;
}

static void
test_export_gguf_reopen (Fixture *f, gconstpointer data)
{
  const char *fake;
  g_autoptr(QbPlan) plan = mixed_plan (&fake);
  g_autoptr(QbJob) job = qb_job_new (f->model, plan);
  g_autoptr(QbModel) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = g_build_filename (f->dir, "mixed.gguf", NULL);
  QbGguf *gguf;
  guint64 v;
  guint n_fake = 0;

  qb_job_set_keep_data (job, TRUE);
  qb_job_set_export (job, QB_EXPORT_GGUF, out);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (qb_job_get_export_summary (job));

  back = qb_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_model_get_n_tensors (back), ==, qb_model_get_n_tensors (f->model));
  gguf = qb_model_get_gguf (back);
  g_assert_true (qb_gguf_get_uint (gguf, "general.quantization_version", &v));
  g_assert_cmpuint (v, ==, 2);
  g_assert_true (qb_gguf_get_uint (gguf, "general.file_type", &v));
  g_assert_cmpuint (v, ==, 15);   /* LLAMA_FTYPE_MOSTLY_Q4_K_M */
  g_assert_cmpstr (qb_gguf_get_string (gguf, "general.architecture"), ==, "llama");
  g_assert_true (qb_gguf_get_uint (gguf, "llama.block_count", &v));
  g_assert_cmpuint (v, ==, 3);
  {
    g_autoptr(QbPlan) stored = qb_plan_new_from_json (qb_gguf_get_string (gguf, "quantbench.plan"), &error);
    g_autofree char *a = qb_plan_to_json (stored);
    g_autofree char *b = qb_plan_to_json (plan);
    g_assert_no_error (error);
    g_assert_cmpstr (a, ==, b);
  }

  for (guint i = 0; i < qb_model_get_n_tensors (back); i++)
    {
      const QbTensor *t = qb_model_get_tensor (back, i);
      const QbTensorResult *r = qb_job_get_result (job, i);
      g_autofree float *got = g_new (float, t->n_params);

      g_assert_cmpstr (t->name, ==, qb_model_get_tensor (f->model, i)->name);
      g_assert_true (qb_model_read_rows (back, i, 0, qb_tensor_n_rows (t), got, NULL));
      if (strcmp (r->method, "keep") == 0)
        {
          g_autofree float *orig = g_new (float, t->n_params);
          g_assert_true (qb_model_read_rows (f->model, i, 0, qb_tensor_n_rows (t), orig, NULL));
          g_assert_cmpmem (got, 4 * t->n_params, orig, 4 * t->n_params);
          g_assert_cmpint (t->dtype, ==, qb_model_get_tensor (f->model, i)->dtype);
        }
      else
        {
          g_autofree float *want = dequantize_data (job, f->model, i);
          const QbFormat *format = qb_format_find (r->format);
          if (format->dtype == QB_DTYPE_INVALID)
            {
              /* Fake-quantized: the dequantized values rounded to F16. */
              g_assert_cmpint (t->dtype, ==, QB_DTYPE_F16);
              for (gint64 k = 0; k < t->n_params; k++)
                want[k] = qb_fp16_to_fp32 (qb_fp32_to_fp16 (want[k]));
              n_fake++;
            }
          else
            g_assert_cmpint (t->dtype, ==, format->dtype);
          g_assert_cmpmem (got, 4 * t->n_params, want, 4 * t->n_params);
        }
    }
  if (fake != NULL)
    {
      g_assert_cmpuint (n_fake, ==, 3);
      g_assert_nonnull (strstr (qb_job_get_export_summary (job), "blk.0.ffn_up.weight"));
      g_assert_nonnull (strstr (qb_job_get_export_summary (job), "3 fake-quantized"));
    }
}

static void
test_export_safetensors (Fixture *f, gconstpointer data)
{
  const char *fake;
  g_autoptr(QbPlan) plan = mixed_plan (&fake);
  g_autoptr(QbJob) job = qb_job_new (f->model, plan);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *out = g_build_filename (f->dir, "mixed.safetensors", NULL);
  g_autofree char *contents = NULL;
  gsize size;
  guint64 header_len;
  JsonObject *header, *meta;

  qb_job_set_keep_data (job, TRUE);
  qb_job_set_export (job, QB_EXPORT_SAFETENSORS, out);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);

  g_assert_true (g_file_get_contents (out, &contents, &size, NULL));
  memcpy (&header_len, contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  g_assert_cmpuint ((8 + header_len) % 8, ==, 0);
  g_assert_true (json_parser_load_from_data (parser, contents + 8, header_len, &error));
  header = json_node_get_object (json_parser_get_root (parser));
  meta = json_object_get_object_member (header, "__metadata__");
  g_assert_nonnull (strstr (json_object_get_string_member (meta, "quantbench.plan"), "Q4_K_M"));

  for (guint i = 0; i < qb_model_get_n_tensors (f->model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (f->model, i);
      const QbTensorResult *r = qb_job_get_result (job, i);
      JsonObject *entry = json_object_get_object_member (header, t->name);
      JsonArray *shape = json_object_get_array_member (entry, "shape");
      JsonArray *offsets = json_object_get_array_member (entry, "data_offsets");
      gint64 begin = json_array_get_int_element (offsets, 0);
      gint64 end = json_array_get_int_element (offsets, 1);
      const guint8 *p = (const guint8 *) contents + 8 + header_len + begin;

      g_assert_cmpuint (json_array_get_length (shape), ==, t->n_dims);
      g_assert_cmpint (json_array_get_int_element (shape, 0), ==, t->ne[t->n_dims - 1]);
      g_assert_cmpuint (8 + header_len + end, <=, size);
      if (strcmp (r->method, "keep") == 0)
        {
          g_assert_cmpstr (json_object_get_string_member (entry, "dtype"), ==, qb_dtype_name (t->dtype));
          g_assert_cmpmem (p, end - begin, t->data, t->n_bytes);
        }
      else
        {
          g_autofree float *want = dequantize_data (job, f->model, i);
          g_assert_cmpstr (json_object_get_string_member (entry, "dtype"), ==, "F16");
          g_assert_cmpint (end - begin, ==, 2 * t->n_params);
          for (gint64 k = 0; k < t->n_params; k++)
            {
              guint16 h;
              memcpy (&h, p + 2 * k, 2);
              g_assert_cmpuint (h, ==, qb_fp32_to_fp16 (want[k]));
            }
        }
    }
}

static void
test_stories_export (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *dir = NULL;
  g_autofree char *out = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbModel) back = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  guint index;

  if (path == NULL)
    return;
  dir = qb_test_tmpdir ();
  out = g_build_filename (dir, "stories-mixed.gguf", NULL);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  qb_plan_set_default_format (plan, "Q8_0");
  /* keep_1d off, so that the rule below reaches the 1-D ffn_norm. */
  qb_plan_set_keep_1d (plan, FALSE);
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_*", QB_RULE_GLOB, "Q4_0", NULL, NULL));
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.attn_v.*", QB_RULE_GLOB, "Q5_1", NULL, NULL));
  job = qb_job_new (model, plan);
  qb_job_set_export (job, QB_EXPORT_GGUF, out);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);

  back = qb_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_nonnull (qb_model_find_tensor (back, "blk.2.ffn_down.weight", &index));
  /* 172-wide rows: Q4_0 falls back, and the result says so. */
  g_assert_cmpint (qb_model_get_tensor (back, index)->dtype, !=, QB_DTYPE_Q4_0);
  g_assert_nonnull (qb_job_get_result (job, index)->fallback_reason);
  g_assert_cmpstr (qb_job_get_result (job, index)->requested_format, ==, "Q4_0");
  g_assert_nonnull (qb_model_find_tensor (back, "blk.2.ffn_up.weight", &index));
  g_assert_cmpint (qb_model_get_tensor (back, index)->dtype, ==, QB_DTYPE_Q4_0);
  g_assert_nonnull (qb_model_find_tensor (back, "blk.0.attn_v.weight", &index));
  g_assert_cmpint (qb_model_get_tensor (back, index)->dtype, ==, QB_DTYPE_Q5_1);
  g_assert_cmpuint (qb_gguf_get_n_kv (qb_model_get_gguf (back)), >=,
                    qb_gguf_get_n_kv (qb_model_get_gguf (model)) + 1);
  g_assert_nonnull (qb_gguf_get_string_array (qb_model_get_gguf (back), "tokenizer.ggml.tokens", NULL));

  /* "*.ffn_*" also matched the 1-D ffn_norm: quantized, but stored as F32
   * (llama.cpp multiplies norms in F32), with the quantized values. */
  g_assert_nonnull (qb_model_find_tensor (back, "blk.3.ffn_norm.weight", &index));
  g_assert_cmpint (qb_model_get_tensor (back, index)->dtype, ==, QB_DTYPE_F32);
  g_assert_cmpstr (qb_job_get_result (job, index)->format, ==, "Q4_0");
  {
    const QbTensor *t = qb_model_get_tensor (back, index);
    const QbTensor *orig = qb_model_get_tensor (model, index);
    g_autofree float *q = g_new (float, t->n_params);
    g_autofree float *o = g_new (float, t->n_params);
    double err = 0;
    g_assert_true (qb_model_read_rows (back, index, 0, 1, q, NULL));
    g_assert_true (qb_model_read_rows (model, index, 0, 1, o, NULL));
    for (gint64 k = 0; k < t->n_params; k++)
      err = MAX (err, fabs (q[k] - o[k]));
    g_assert_cmpfloat (err, >, 0);
    g_assert_cmpfloat (err, ==, qb_job_get_result (job, index)->metrics.max_abs_err);
    g_assert_cmpint (orig->dtype, ==, QB_DTYPE_F32);
  }
  g_assert_nonnull (strstr (qb_job_get_export_summary (job), "1-D tensors"));
}

static void
test_importance (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbImatrix) im = qb_imatrix_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *sum2 = g_new (float, 768);
  guint index;

  for (guint j = 0; j < 768; j++)
    sum2[j] = 1 + j % 7;
  qb_imatrix_set (im, "blk.0.ffn_down.weight", sum2, 768, 10);
  qb_plan_set_default_format (plan, "Q4_K");
  job = qb_job_new (f->model, plan);
  qb_job_set_imatrix (job, im);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (qb_model_find_tensor (f->model, "blk.0.ffn_down.weight", &index));
  g_assert_false (isnan (qb_job_get_result (job, index)->metrics.wmse));
  g_assert_nonnull (qb_model_find_tensor (f->model, "blk.1.ffn_down.weight", &index));
  g_assert_true (isnan (qb_job_get_result (job, index)->metrics.wmse));

  /* An entry of the wrong length is an error naming the tensor. */
  qb_imatrix_set (im, "blk.1.attn_q.weight", sum2, 100, 10);
  g_clear_pointer (&job, qb_job_free);
  job = qb_job_new (f->model, plan);
  qb_job_set_imatrix (job, im);
  g_assert_false (qb_job_run (job, NULL, &error));
  g_assert_error (error, QB_JOB_ERROR, QB_JOB_ERROR_IMATRIX);
  g_assert_nonnull (strstr (error->message, "blk.1.attn_q.weight"));
}

/* A Hugging Face name finds llama.cpp's imatrix entry by layer and role. */
static void
test_importance_hf_names (Fixture *f, gconstpointer data)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbImatrix) im = qb_imatrix_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (f->dir, "hf-names.gguf", NULL);
  gint64 ne[2] = { 64, 4 };
  float x[256], sum2[64];
  guint64 state = 9;

  qb_test_gaussian (&state, x, 256, 0.02f);
  for (guint j = 0; j < 64; j++)
    sum2[j] = 1 + j;
  qb_gguf_writer_add_tensor (w, "model.layers.2.mlp.down_proj.weight", 2, ne, QB_DTYPE_F32);
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 0, x, sizeof x, &error));
  g_assert_true (qb_gguf_writer_finish (w, &error));
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_model_get_tensor (model, 0)->role, ==, QB_ROLE_FFN_DOWN);

  qb_imatrix_set (im, "blk.2.ffn_down.weight", sum2, 64, 4);
  qb_plan_set_default_format (plan, "Q4_0");
  job = qb_job_new (model, plan);
  qb_job_set_imatrix (job, im);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (isnan (qb_job_get_result (job, 0)->metrics.wmse));
}

/* A plug-in method: round to nearest, counting its calls. */
static gint prepared, released, rows_seen;

static gpointer
counting_prepare (const QbMethodContext *ctx, GError **error)
{
  g_atomic_int_inc (&prepared);
  g_assert_nonnull (ctx->gram);
  g_assert_cmpfloat (ctx->gram[0], ==, 42.0);
  g_assert_cmpuint (ctx->gram_samples, ==, 7);
  g_assert_cmpstr (g_hash_table_lookup (ctx->options, "test.option"), ==, "yes");
  return GINT_TO_POINTER (1);
}

static void
counting_quantize_rows (const QbMethodContext *ctx, gpointer state, const float *w,
                        gint64 n_rows, guint8 *out)
{
  QbQuantParams params;

  g_assert_cmpint (GPOINTER_TO_INT (state), ==, 1);
  g_atomic_int_add (&rows_seen, (gint) n_rows);
  qb_method_context_params (ctx, &params);
  for (gint64 r = 0; r < n_rows; r++)
    ctx->format->quantize_row (&params, w + r * ctx->n_cols, out + r * ctx->row_bytes, ctx->n_cols);
}

static void
counting_release (gpointer state)
{
  g_atomic_int_inc (&released);
}

static const QbMethod counting_method = {
  .name = "test-counting",
  .summary = "RTN that counts its calls",
  .needs_gram = TRUE,
  .prepare = counting_prepare,
  .quantize_rows = counting_quantize_rows,
  .release = counting_release,
};

static double gram_storage[256 * 256];

static const double *
provide_gram (const char *tensor_name, gint64 n_cols, guint expert, guint64 *n_samples,
              gpointer user_data)
{
  if (n_cols != 256)
    return NULL;
  gram_storage[0] = 42.0;
  *n_samples = 7;
  return gram_storage;
}

static void
test_plugin_method (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  guint n_rows = 0, n_tensors = 0;

  qb_method_register (&counting_method);
  g_assert_true (qb_method_find ("test-counting") == &counting_method);
  qb_plan_set_default_format (plan, "Q8_0");
  qb_plan_set_option (plan, "test.option", "yes");
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.attn_*", QB_RULE_GLOB, "Q8_0", "test-counting", NULL));
  job = qb_job_new (f->model, plan);
  qb_job_set_gram_func (job, provide_gram, NULL);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (f->model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (f->model, i);
      /* The glob matches the attention norms too, but keep_1d keeps them. */
      if (strstr (t->name, ".attn_") && qb_plan_keeps_1d_tensor (plan, t))
        g_assert_cmpstr (qb_job_get_result (job, i)->method, ==, "keep");
      else if (strstr (t->name, ".attn_"))
        {
          n_tensors++;
          n_rows += qb_tensor_n_rows (t);
          g_assert_cmpstr (qb_job_get_result (job, i)->method, ==, "test-counting");
        }
    }
  g_assert_cmpint (prepared, ==, n_tensors);
  g_assert_cmpint (released, ==, n_tensors);
  /* Each row once in the main pass, plus the sampled chunks. */
  g_assert_cmpint (rows_seen, >=, n_rows);

  /* Without calibration statistics the method cannot run. */
  g_clear_pointer (&job, qb_job_free);
  job = qb_job_new (f->model, plan);
  g_assert_false (qb_job_run (job, NULL, &error));
  g_assert_nonnull (strstr (error->message, "XᵀX"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define FIX(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  FIX ("/job/totals-match-written", test_totals_match);
  FIX ("/job/cancel-mid-tensor", test_cancel_mid_tensor);
  FIX ("/job/no-metrics", test_no_metrics);
  FIX ("/job/export-gguf-reopen", test_export_gguf_reopen);
  FIX ("/job/export-safetensors", test_export_safetensors);
  FIX ("/job/importance", test_importance);
  FIX ("/job/importance-hf-names", test_importance_hf_names);
  FIX ("/job/plugin-method", test_plugin_method);
#undef FIX
  g_test_add_func ("/job/stories260K-export", test_stories_export);
  return g_test_run ();
}
