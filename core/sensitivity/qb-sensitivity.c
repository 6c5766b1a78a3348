/* SPDX-License-Identifier: MIT */
/* qb-sensitivity.c — running a sensitivity study (see qb-sensitivity.h).
 *
 * One float pass over the evaluation chunks keeps the residual stream
 * entering every layer and the float log-probabilities of the scored
 * positions.  Then tensor by tensor, candidate by candidate: quantize the
 * tensor alone (the study's method, as a job would), take its proxies,
 * and when the candidate is one to measure, run the model from the
 * tensor's layer with those bytes in place of the float weights and
 * compare with the float log-probabilities.  Each result is stored at
 * once.
 */
#include "qb-sensitivity-private.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "qb-json.h"
#include "qb-llama.h"
#include "qb-tensor-quantizer.h"

G_DEFINE_QUARK (qb-sensitivity-error-quark, qb_sensitivity_error)

void
qb_sensitivity_options_init (QbSensitivityOptions *opts)
{
  memset (opts, 0, sizeof *opts);
}

typedef struct {
  QbModel                    *model;
  QbTokenizer                *tok;
  QbStore                    *store;
  const QbSensitivityOptions *opts;
  const QbMethod             *method;
  QbLlama                    *llama;
  QbWorkers                  *workers;
  QbImatrix                  *imatrix;
  const char                 *proxy;

  /* evaluation */
  guint     n_ctx, n_chunks, first, n_scored, n_vocab, n_embd, n_layer;
  gint32   *tokens;         /* n_chunks × n_ctx, BOS first */
  float    *hidden;         /* n_chunks × (n_layer + 1) × n_ctx × n_embd */
  float    *base_logits;    /* n_chunks × n_scored × n_vocab, the float model's */
  double   *base_lse;       /* n_chunks × n_scored: their log-sum-exp */
  float    *logits;         /* (n_ctx - first) × n_vocab */
  double   *pos_kld;        /* n_scored */
  double    base_ppl;
  char     *text_hash;
  char     *tokens_hash;

  /* the work */
  gint64      id;
  GHashTable *done;         /* "position/rung" of stored rows */
  guint      *tensors;      /* quantizable tensor indices */
  guint       n_tensors;
  QbSensitivityProgressFunc progress;
  gpointer    progress_data;
  QbSensitivityProgress p;
  gboolean    per_expert;   /* asked for, or the resumed study ran so */
} Study;

QbActivationStats *
qb_sensitivity_compute_stats (QbModel *model, const char * const *paths,
                              const QbCalibrationOptions *calib_opts, gboolean gram,
                              guint n_threads, QbStatsProgressFunc progress,
                              gpointer progress_data, GCancellable *cancellable, GError **error)
{
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbCalibration) calib = NULL;
  QbStatsOptions so;

  if ((llama = qb_llama_new (model, error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, error)) == NULL
      || (calib = qb_calibration_new (model, tok, paths, calib_opts, cancellable, error)) == NULL)
    return NULL;
  qb_llama_set_threads (llama, n_threads);
  qb_stats_options_init (&so);
  so.gram_all = gram;
  so.cache_dir = calib_opts->cache_dir;
  so.no_cache = calib_opts->no_cache;
  return qb_activation_stats_compute (llama, calib, &so, progress, progress_data, cancellable,
                                      error);
}

/* ---- what is studied -------------------------------------------------- */

gboolean
qb_sensitivity_is_quantizable (const QbTensor *t)
{
  if (t->n_dims < 2 || t->is_bias)
    return FALSE;
  switch (t->role)
    {
    case QB_ROLE_TOKEN_EMBD:
    case QB_ROLE_OUTPUT:
      return TRUE;
    case QB_ROLE_ATTN_Q:
    case QB_ROLE_ATTN_K:
    case QB_ROLE_ATTN_V:
    case QB_ROLE_ATTN_OUTPUT:
    case QB_ROLE_ATTN_Q_A:
    case QB_ROLE_ATTN_Q_B:
    case QB_ROLE_ATTN_KV_A_MQA:
    case QB_ROLE_ATTN_KV_B:
    case QB_ROLE_FFN_GATE:
    case QB_ROLE_FFN_UP:
    case QB_ROLE_FFN_DOWN:
    /* A mixture's experts (a 3-D tensor, all its experts in one format)
     * and shared expert; the router stays as stored. */
    case QB_ROLE_FFN_GATE_EXPS:
    case QB_ROLE_FFN_UP_EXPS:
    case QB_ROLE_FFN_DOWN_EXPS:
    case QB_ROLE_FFN_GATE_SHEXP:
    case QB_ROLE_FFN_UP_SHEXP:
    case QB_ROLE_FFN_DOWN_SHEXP:
      return t->layer >= 0;
    default:
      return FALSE;
    }
}

/* The layer a pass must start from when t changes: -1 for the embedding
 * (a whole pass from the tokens), n_layer for the output matrix. */
static int
first_layer_of (Study *s, const QbTensor *t)
{
  if (t->role == QB_ROLE_TOKEN_EMBD)
    return -1;
  if (t->role == QB_ROLE_OUTPUT)
    return (int) s->n_layer;
  return t->layer;
}

/* Which fitting candidates are measured end to end: all, or `measure` of
 * them spread over the lower half of the ladder by bits per weight (where
 * the KLD is well above the noise) — a fixed function of the ladder and
 * the row length, so a resumed study picks the same ones. */
gboolean *
qb_sensitivity_measured_rungs (const QbFormat **candidates, guint n, gint64 n_cols,
                               guint measure)
{
  gboolean *measured = g_new0 (gboolean, n);
  g_autofree guint *fit = g_new (guint, n);
  guint n_fit = 0;

  for (guint r = 0; r < n; r++)
    if (qb_format_fits (candidates[r], n_cols) && candidates[r]->family != QB_FAMILY_FLOAT)
      fit[n_fit++] = r;
  /* by bits per weight, ladder order among equals (insertion sort) */
  for (guint i = 1; i < n_fit; i++)
    for (guint j = i; j > 0 && qb_format_bpw (candidates[fit[j]], n_cols)
                                 < qb_format_bpw (candidates[fit[j - 1]], n_cols); j--)
      {
        guint tmp = fit[j];
        fit[j] = fit[j - 1];
        fit[j - 1] = tmp;
      }
  if (measure == 0 || measure >= n_fit)
    for (guint i = 0; i < n_fit; i++)
      measured[fit[i]] = TRUE;
  else
    for (guint i = 0; i < measure; i++)
      measured[fit[(i * (n_fit - 1) + measure / 2) / measure]] = TRUE;
  return measured;
}

/* ---- the evaluation tokens and the float pass ------------------------- */

static gboolean
read_eval_tokens (Study *s, GCancellable *cancellable, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GArray) all = NULL;
  gsize len = 0;
  guint train = qb_llama_get_params (s->llama)->n_ctx_train;
  gint32 bos = qb_tokenizer_get_add_bos (s->tok) ? qb_tokenizer_get_bos (s->tok) : -1;

  if (s->opts->eval_text == NULL || !g_file_get_contents (s->opts->eval_text, &text, &len, error))
    {
      if (s->opts->eval_text == NULL)
        g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID,
                     "a study needs an evaluation text");
      return FALSE;
    }
  s->text_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len);
  all = qb_tokenizer_encode (s->tok, text, len, TRUE, FALSE, cancellable, error);
  if (all == NULL)
    return FALSE;
  s->n_ctx = s->opts->eval_n_ctx ? s->opts->eval_n_ctx
                                 : (train > 0 && train < 512 ? train : 512);
  s->n_chunks = s->opts->eval_n_chunks ? s->opts->eval_n_chunks : QB_SENSITIVITY_DEFAULT_CHUNKS;
  s->n_chunks = MIN (s->n_chunks, all->len / MAX (s->n_ctx, 1));
  if (s->n_ctx < 4 || s->n_chunks == 0)
    {
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID,
                   "%s has %u tokens: not one evaluation chunk of %u", s->opts->eval_text,
                   all->len, s->n_ctx);
      return FALSE;
    }
  s->tokens = g_memdup2 (all->data, sizeof (gint32) * s->n_chunks * s->n_ctx);
  s->tokens_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) s->tokens,
                                                sizeof (gint32) * s->n_chunks * s->n_ctx);
  /* As llama-perplexity: each chunk starts from BOS (the hash keeps the text's own). */
  for (guint c = 0; bos >= 0 && c < s->n_chunks; c++)
    s->tokens[(gsize) c * s->n_ctx] = bos;
  s->first = s->n_ctx / 2;
  s->n_scored = s->n_ctx - 1 - s->n_ctx / 2;
  return TRUE;
}

static char *
file_sha256 (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, NULL))
    return NULL;
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len);
}

/* Calibration chunks and evaluation tokens never overlap. */
static gboolean
check_disjoint (Study *s, GError **error)
{
  QbCalibration *calib;
  const char * const *sources;
  guint64 eval_end = (guint64) s->n_chunks * s->n_ctx;

  if (s->opts->stats == NULL)
    return TRUE;
  calib = qb_activation_stats_get_calibration (s->opts->stats);
  sources = qb_calibration_get_sources (calib);
  for (guint i = 0; sources && sources[i]; i++)
    {
      g_autofree char *sha = file_sha256 (sources[i]);

      if (g_strcmp0 (sha, s->text_hash) != 0)
        continue;
      if (i > 0)
        {
          g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_OVERLAP,
                       "the evaluation text is calibration text %u: make it the first "
                       "calibration text and skip its evaluated chunks, or use another text",
                       i + 1);
          return FALSE;
        }
      for (guint c = 0; c < qb_calibration_get_n_chunks (calib); c++)
        {
          guint64 start = (guint64) qb_calibration_get_chunk_index (calib, c)
                          * qb_calibration_get_n_ctx (calib);
          if (start < eval_end)
            {
              g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_OVERLAP,
                           "calibration chunk %u (tokens %" G_GUINT64_FORMAT "…) overlaps the "
                           "%" G_GUINT64_FORMAT " evaluation tokens at the start of the text; "
                           "skip at least %" G_GUINT64_FORMAT " calibration chunks",
                           c, start, eval_end,
                           (eval_end + qb_calibration_get_n_ctx (calib) - 1)
                           / qb_calibration_get_n_ctx (calib));
              return FALSE;
            }
        }
    }
  return TRUE;
}

/* log Σ exp(l) of one position's logits, in double.  The float model's
 * log-probabilities and a measured model's come from the same function
 * on the logits kept as they are, so identical logits give a KLD of
 * exactly 0 (log-probabilities rounded to float on one side only left a
 * floor of ~1e-7 at every position). */
static double
row_lse (const float *l, guint n_vocab)
{
  float max = l[0];
  double sum = 0;

  for (guint j = 1; j < n_vocab; j++)
    max = MAX (max, l[j]);
  for (guint j = 0; j < n_vocab; j++)
    sum += exp ((double) l[j] - max);
  return max + log (sum);
}

static gboolean
float_pass (Study *s, GCancellable *cancellable, GError **error)
{
  gsize stream = (gsize) s->n_ctx * s->n_embd;
  gsize per_chunk = stream * (s->n_layer + 1);
  double nll = 0;

  s->hidden = g_try_malloc (sizeof (float) * per_chunk * s->n_chunks);
  s->base_logits = g_try_malloc (sizeof (float) * (gsize) s->n_chunks * s->n_scored * s->n_vocab);
  s->base_lse = g_try_malloc (sizeof (double) * (gsize) s->n_chunks * s->n_scored);
  if (s->hidden == NULL || s->base_logits == NULL || s->base_lse == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   "not enough memory for the float model's states on %u chunks of %u tokens",
                   s->n_chunks, s->n_ctx);
      return FALSE;
    }
  for (guint c = 0; c < s->n_chunks; c++)
    {
      const gint32 *tok = s->tokens + (gsize) c * s->n_ctx;
      float *l = s->base_logits + (gsize) c * s->n_scored * s->n_vocab;
      double *lse = s->base_lse + (gsize) c * s->n_scored;

      if (!qb_llama_forward_keep (s->llama, tok, s->n_ctx, s->first, s->logits,
                                  s->hidden + c * per_chunk, cancellable, error))
        return FALSE;
      memcpy (l, s->logits, sizeof (float) * s->n_scored * s->n_vocab);
      for (guint i = 0; i < s->n_scored; i++)
        {
          lse[i] = row_lse (l + (gsize) i * s->n_vocab, s->n_vocab);
          nll -= l[(gsize) i * s->n_vocab + tok[s->first + i + 1]] - lse[i];
        }
    }
  s->base_ppl = exp (nll / ((double) s->n_chunks * s->n_scored));
  return TRUE;
}

/* ---- one measurement -------------------------------------------------- */

typedef struct {
  Study        *s;
  const float  *base;       /* the chunk's float-model logits */
  const double *base_lse;   /* and their log-sum-exp */
} KldRun;

/* KL(float ‖ quantized) at one position, exactly, in double. */
static void
kld_item (gint64 i, guint thread, gpointer data)
{
  KldRun *run = data;
  Study *s = run->s;
  const float *l = s->logits + i * s->n_vocab;
  const float *b = run->base + i * s->n_vocab;
  double lse = row_lse (l, s->n_vocab), base_lse = run->base_lse[i], kld = 0;

  for (guint j = 0; j < s->n_vocab; j++)
    {
      double lp = (double) b[j] - base_lse;
      kld += exp (lp) * (lp - ((double) l[j] - lse));
    }
  s->pos_kld[i] = MAX (kld, 0);
}

/* The model as it is now set against the float pass, from `layer`. */
static gboolean
measure_kld (Study *s, int layer, double *mean, double *err, GCancellable *cancellable,
             GError **error)
{
  gsize stream = (gsize) s->n_ctx * s->n_embd;
  gsize per_chunk = stream * (s->n_layer + 1);
  double sum = 0, sum2 = 0;
  guint64 n = (guint64) s->n_chunks * s->n_scored;

  for (guint c = 0; c < s->n_chunks; c++)
    {
      KldRun run = { s, s->base_logits + (gsize) c * s->n_scored * s->n_vocab,
                     s->base_lse + (gsize) c * s->n_scored };
      gboolean ok;

      if (layer < 0)
        ok = qb_llama_forward (s->llama, s->tokens + (gsize) c * s->n_ctx, s->n_ctx, s->first,
                               s->logits, NULL, NULL, cancellable, error);
      else
        ok = qb_llama_forward_from (s->llama, (guint) layer,
                                    s->hidden + c * per_chunk + (gsize) layer * stream, s->n_ctx,
                                    s->first, s->logits, cancellable, error);
      if (!ok)
        return FALSE;
      qb_workers_run (s->workers, s->n_scored, kld_item, &run);
      for (guint i = 0; i < s->n_scored; i++)
        {
          sum += s->pos_kld[i];
          sum2 += s->pos_kld[i] * s->pos_kld[i];
        }
    }
  *mean = sum / n;
  *err = n > 1 ? sqrt (MAX (0, sum2 / n - *mean * *mean) / (n - 1)) : 0;
  return TRUE;
}

/* Importance-weighted MSE of the dequantized tensor into *wmse (NAN
 * without importance for this tensor). */
static gboolean
weighted_mse (Study *s, guint index, const QbTensor *t, const float *deq, double *wmse,
              GError **error)
{
  guint n_imp = 0;
  const float *imp = s->imatrix ? qb_imatrix_get (s->imatrix, t->name, &n_imp) : NULL;
  gint64 n_cols = t->ne[0], n_rows = qb_tensor_n_rows (t);
  g_autofree float *row = NULL;
  double num = 0, wsum = 0;

  *wmse = NAN;
  if (imp == NULL || n_imp != (guint) n_cols)
    return TRUE;
  row = g_new (float, n_cols);
  for (gint64 j = 0; j < n_cols; j++)
    wsum += imp[j];
  for (gint64 r = 0; r < n_rows; r++)
    {
      if (!qb_model_read_rows (s->model, index, r, 1, row, error))
        return FALSE;
      for (gint64 j = 0; j < n_cols; j++)
        {
          double d = (double) row[j] - deq[r * n_cols + j];
          num += imp[j] * d * d;
        }
    }
  if (wsum > 0)
    *wmse = num / (wsum * n_rows);
  return TRUE;
}

static void
report (Study *s, const char *stage, const char *tensor)
{
  if (s->progress == NULL)
    return;
  s->p.stage = stage;
  s->p.tensor = tensor;
  s->p.fraction = s->p.total ? (double) s->p.done / s->p.total : 0;
  s->progress (&s->p, s->progress_data);
}

/* The KLD with tensor `index` run as these bytes (the stored values
 * again afterwards, also on failure) into c. */
static gboolean
measure_with (Study *s, guint index, GBytes *bytes, const QbQuantParams *params, QbStudyCost *c,
              GCancellable *cancellable, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (s->model, index);
  gboolean ok;

  if (!qb_llama_set_weight (s->llama, index, bytes, params, error))
    return FALSE;
  ok = measure_kld (s, first_layer_of (s, t), &c->kld, &c->kld_err, cancellable, error);
  if (!qb_llama_set_weight (s->llama, index, NULL, NULL, ok ? error : NULL) && ok)
    return FALSE;
  return ok;
}

/* ---- experts one by one ------------------------------------------------ */

static gboolean
wants_experts (Study *s, const QbTensor *t)
{
  return s->per_expert && qb_tensor_n_experts (t) > 1;
}

static char *
expert_key (guint position, guint rung, gint64 expert)
{
  return g_strdup_printf ("%u/%u/%" G_GINT64_FORMAT, position, rung, expert);
}

/* Every expert's row of this tensor and rung is stored. */
static gboolean
experts_done (Study *s, guint position, guint rung, const QbTensor *t)
{
  for (gint64 e = 0; e < qb_tensor_n_experts (t); e++)
    {
      g_autofree char *key = expert_key (position, rung, e);
      if (!g_hash_table_contains (s->done, key))
        return FALSE;
    }
  return TRUE;
}

/* Expert e alone in the candidate: the tensor's float values with e's rows
 * replaced by their dequantized candidate values, run as F32 (the same
 * products as running those rows in the candidate).  Rows are quantized one
 * by one, so e's rows of the whole tensor's quantization are e quantized
 * alone; a per-tensor scale stays the whole tensor's, as in a file, where
 * llama.cpp stores one type (and scale) per 3-D tensor. */
static gboolean
study_expert (Study *s, guint index, const QbStudyCost *whole, const float *orig, const float *deq,
              gint64 e, GCancellable *cancellable, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (s->model, index);
  gint64 n_experts = qb_tensor_n_experts (t);
  gsize per_expert = (gsize) (t->n_params / n_experts), first = (gsize) e * per_expert;
  QbQuantParams params = { .format = qb_format_find ("F32") };
  g_autoptr(QbStudyCost) c = qb_study_cost_new ();
  g_autoptr(GBytes) bytes = NULL;
  gint64 start = g_get_monotonic_time ();
  float *mix = g_try_new (float, MAX (t->n_params, 1));
  double sum = 0;

  if (mix == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: not enough memory", t->name);
      return FALSE;
    }
  memcpy (mix, orig, sizeof (float) * t->n_params);
  memcpy (mix + first, deq + first, sizeof (float) * per_expert);
  for (gsize i = first; i < first + per_expert; i++)
    sum += ((double) orig[i] - deq[i]) * ((double) orig[i] - deq[i]);
  bytes = g_bytes_new_take (mix, sizeof (float) * t->n_params);
  c->position = whole->position;
  c->rung = whole->rung;
  c->expert = (int) e;
  c->tensor = g_strdup (whole->tensor);
  c->format = g_strdup (whole->format);
  c->n_weights = (gint64) per_expert;
  c->bytes = whole->bytes / (guint64) n_experts;
  c->mse = sum / MAX (per_expert, 1);
  if (!measure_with (s, index, bytes, &params, c, cancellable, error))
    return FALSE;
  c->seconds = (g_get_monotonic_time () - start) / 1e6;
  return qb_store_add_study_expert_cost (s->store, s->id, c, error);
}

/* Each expert not yet stored, alone in the candidate (deq: the whole
 * tensor's dequantized values). */
static gboolean
study_experts (Study *s, guint index, const QbStudyCost *whole, const float *deq,
               GCancellable *cancellable, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (s->model, index);
  g_autofree float *orig = g_try_new (float, MAX (t->n_params, 1));

  if (orig == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: not enough memory", t->name);
      return FALSE;
    }
  if (!qb_model_read_rows (s->model, index, 0, qb_tensor_n_rows (t), orig, error))
    return FALSE;
  for (gint64 e = 0; e < qb_tensor_n_experts (t); e++)
    {
      g_autofree char *key = expert_key (whole->position, whole->rung, e);

      if (g_hash_table_contains (s->done, key))
        continue;
      report (s, "studying experts", t->name);
      if (!study_expert (s, index, whole, orig, deq, e, cancellable, error))
        {
          g_prefix_error (error, "expert %" G_GINT64_FORMAT ": ", e);
          return FALSE;
        }
      g_hash_table_add (s->done, g_steal_pointer (&key));
    }
  return TRUE;
}

/* Quantizes tensor `index` in the candidate, takes its proxies and, when
 * asked, its end-to-end KLD; the row is filled in c. */
static gboolean
study_candidate (Study *s, guint index, const QbFormat *format, gboolean measure, QbStudyCost *c,
                 GCancellable *cancellable, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (s->model, index);
  gboolean uses_stats = s->method->needs_gram || s->method->needs_importance;
  QbQuantizeSpec spec = { 0 };
  QbQuantizeOutput out = { 0 };
  g_autoptr(QbTensorResult) r = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autofree float *deq = NULL;
  QbQuantParams params = { 0 };
  gint64 start = g_get_monotonic_time ();
  guint n_imp = 0;
  gint64 n_experts;
  g_autofree const double **expert_grams = NULL;
  g_autofree guint64 *expert_samples = NULL;

  spec.format = format;
  spec.method = s->method;
  spec.options = s->opts->method_options;
  /* As a job with these statistics attached would quantize it: importance
   * only for methods that use calibration (plain RTN stays plain). */
  if (uses_stats && s->imatrix != NULL)
    {
      spec.importance = qb_imatrix_get (s->imatrix, t->name, &n_imp);
      spec.importance_sets = 1;
      if (spec.importance != NULL && qb_tensor_n_experts (t) > 1
          && n_imp == (guint) (t->ne[0] * qb_tensor_n_experts (t)))
        spec.importance_sets = (guint) qb_tensor_n_experts (t);   /* one set per expert */
      else if (spec.importance != NULL && n_imp != (guint) t->ne[0])
        spec.importance = NULL;
    }
  n_experts = qb_tensor_n_experts (t);
  if (s->opts->stats != NULL && n_experts > 1)
    {
      expert_grams = g_new0 (const double *, n_experts);
      expert_samples = g_new0 (guint64, n_experts);
      spec.n_expert_grams = qb_activation_stats_get_expert_grams (s->opts->stats, t->name, t->ne[0],
                                                                  expert_grams, expert_samples,
                                                                  (guint) n_experts);
      spec.expert_grams = (const double * const *) expert_grams;
      spec.expert_gram_samples = expert_samples;
    }
  else if (s->opts->stats != NULL)
    spec.gram = qb_activation_stats_get_gram (s->opts->stats, t->name, &spec.gram_samples);
  /* Nothing for a calibration method to work with: an embedding (looked
   * up, not multiplied) or an expert tensor without XᵀX per expert. */
  if (s->method->needs_gram && spec.gram == NULL && spec.n_expert_grams == 0
      && (t->role == QB_ROLE_TOKEN_EMBD || n_experts > 1))
    spec.method = qb_method_find ("rtn");
  if (!qb_format_tensor_bytes (format, t->ne[0], qb_tensor_n_rows (t), &c->bytes))
    return FALSE;
  out.data = g_try_malloc (MAX (c->bytes, 1));
  out.f32 = g_try_new (float, MAX (t->n_params, 1));
  if (out.data == NULL || out.f32 == NULL)
    {
      g_free (out.data);
      g_free (out.f32);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: not enough memory", t->name);
      return FALSE;
    }
  deq = out.f32;
  bytes = g_bytes_new_take (out.data, c->bytes);
  r = qb_tensor_quantize (s->model, index, &spec, s->workers, &out, NULL, NULL, cancellable, error);
  if (r == NULL)
    return FALSE;
  c->mse = r->metrics.mse;
  c->out_err = spec.gram != NULL || spec.n_expert_grams > 0 ? r->metrics.out_rel_err : NAN;
  if (!weighted_mse (s, index, t, deq, &c->wmse, error))
    return FALSE;
  /* The experts first: the whole tensor's row, stored after them, marks the
   * candidate done. */
  if (measure && wants_experts (s, t)
      && !study_experts (s, index, c, deq, cancellable, error))
    return FALSE;
  g_clear_pointer (&deq, g_free);

  if (measure)
    {
      params.format = format;
      params.tensor_absmax = (float) MAX (fabs (r->metrics.min), fabs (r->metrics.max));
      if (!measure_with (s, index, bytes, &params, c, cancellable, error))
        return FALSE;
      s->p.measured++;
    }
  c->seconds = (g_get_monotonic_time () - start) / 1e6;
  return TRUE;
}

static char *
done_key (guint position, guint rung)
{
  return g_strdup_printf ("%u/%u", position, rung);
}

static gboolean
study_tensor (Study *s, guint index, GCancellable *cancellable, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (s->model, index);
  const QbSensitivityOptions *o = s->opts;
  g_autofree gboolean *measured = qb_sensitivity_measured_rungs (o->candidates, o->n_candidates,
                                                                 t->ne[0], o->measure);

  for (guint r = 0; r < o->n_candidates; r++)
    {
      g_autofree char *key = done_key (index, r);
      g_autoptr(QbStudyCost) c = NULL;
      const QbFormat *f = o->candidates[r];

      if (g_hash_table_contains (s->done, key)
          && (!measured[r] || !wants_experts (s, t) || !qb_format_fits (f, t->ne[0])
              || experts_done (s, index, r, t)))
        {
          s->p.done++;
          continue;
        }
      report (s, "studying", t->name);
      c = qb_study_cost_new ();
      c->position = index;
      c->rung = r;
      c->tensor = g_strdup (t->name);
      c->format = g_strdup (f->name);
      c->n_weights = t->n_params;
      if (!qb_format_fits (f, t->ne[0]))
        {
          c->skipped = TRUE;
          c->note = g_strdup_printf ("rows of %" G_GINT64_FORMAT " values do not fit %s's "
                                     "blocks of %u", t->ne[0], f->name, f->block_size);
        }
      else if (!study_candidate (s, index, f, measured[r], c, cancellable, error))
        {
          g_prefix_error (error, "%s in %s: ", t->name, f->name);
          return FALSE;
        }
      if (!qb_store_add_study_cost (s->store, s->id, c, error))
        return FALSE;
      s->p.done++;
    }
  return TRUE;
}

/* ---- set-up, resume, the record --------------------------------------- */

static char *
settings_json (Study *s)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "measure");
  json_builder_add_int_value (b, s->opts->measure);
  json_builder_set_member_name (b, "kld");
  json_builder_add_string_value (b, "exact float KL(float ‖ quantized), mean over scored positions");
  json_builder_set_member_name (b, "positions");
  json_builder_add_string_value (b, "n_ctx/2 .. n_ctx-2 of each chunk, BOS first");
  json_builder_set_member_name (b, "per_expert");
  json_builder_add_boolean_value (b, s->per_expert);
  json_builder_set_member_name (b, "n_tensors");
  json_builder_add_int_value (b, s->n_tensors);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return qb_json_to_string (root);
}

static char *
candidates_text (const QbSensitivityOptions *o)
{
  GString *t = g_string_new (NULL);

  for (guint i = 0; i < o->n_candidates; i++)
    g_string_append_printf (t, "%s%s", i ? "," : "", o->candidates[i]->name);
  return g_string_free (t, FALSE);
}

static const char *
choose_proxy (Study *s)
{
  for (guint i = 0; s->opts->stats != NULL && i < s->n_tensors; i++)
    {
      guint64 n = 0;
      const QbTensor *t = qb_model_get_tensor (s->model, s->tensors[i]);
      if (t->role != QB_ROLE_TOKEN_EMBD
          && qb_activation_stats_get_gram (s->opts->stats, t->name, &n) != NULL)
        return "out_err";
    }
  return s->imatrix != NULL ? "wmse" : "mse";
}

static gboolean
mismatch (GError **error, const char *what)
{
  g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_MISMATCH,
               "cannot resume: the study had another %s", what);
  return FALSE;
}

/* The study was run per expert (its settings say so). */
static gboolean
stored_per_expert (const QbStudyRecord *rec)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (rec->settings_json == NULL
      || !json_parser_load_from_data (parser, rec->settings_json, -1, NULL))
    return FALSE;
  root = json_parser_get_root (parser);
  return root != NULL && JSON_NODE_HOLDS_OBJECT (root)
         && json_object_get_boolean_member_with_default (json_node_get_object (root),
                                                         "per_expert", FALSE);
}

/* Resuming: the same inputs, and what is already stored. */
static gboolean
begin_resume (Study *s, const char *candidates, GError **error)
{
  g_autoptr(QbStudyRecord) rec = qb_store_get_study (s->store, s->opts->resume_id, error);
  g_autoptr(GPtrArray) costs = NULL;

  if (rec == NULL)
    return FALSE;
  if (g_strcmp0 (rec->model_fingerprint, qb_model_get_fingerprint (s->model)) != 0)
    return mismatch (error, "model");
  if (g_strcmp0 (rec->method, s->method->name) != 0)
    return mismatch (error, "method");
  if (g_strcmp0 (rec->candidates, candidates) != 0)
    return mismatch (error, "candidate list");
  if (g_strcmp0 (rec->eval_tokens_hash, s->tokens_hash) != 0 || rec->eval_n_ctx != s->n_ctx)
    return mismatch (error, "evaluation text or chunks");
  if (rec->calibration_set_id != s->opts->calibration_set_id)
    return mismatch (error, "calibration set");
  if ((costs = qb_store_get_study_costs (s->store, rec->id, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (costs, i);
      g_hash_table_add (s->done, done_key (c->position, c->rung));
      if (isfinite (c->kld))
        s->p.measured++;
    }
  g_ptr_array_unref (costs);
  if ((costs = qb_store_get_study_expert_costs (s->store, rec->id, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (costs, i);
      g_hash_table_add (s->done, expert_key (c->position, c->rung, c->expert));
    }
  s->per_expert |= stored_per_expert (rec);
  s->id = rec->id;
  s->proxy = g_intern_string (rec->proxy);
  return qb_store_resume_study (s->store, s->id, error);
}

static gboolean
begin_new (Study *s, const char *candidates, GError **error)
{
  g_autoptr(QbModelRecord) model = qb_model_record_new_from_model (s->model);
  g_autoptr(QbStudyRecord) rec = qb_study_record_new ();

  rec->method = g_strdup (s->method->name);
  rec->candidates = g_strdup (candidates);
  rec->proxy = g_strdup (s->proxy);
  rec->calibration_set_id = s->opts->calibration_set_id;
  rec->eval_text_name = g_path_get_basename (s->opts->eval_text);
  rec->eval_text_hash = g_strdup (s->text_hash);
  rec->eval_tokens_hash = g_strdup (s->tokens_hash);
  rec->eval_n_ctx = s->n_ctx;
  rec->eval_n_chunks = s->n_chunks;
  rec->eval_first_token = 0;
  rec->base_ppl = s->base_ppl;
  rec->settings_json = settings_json (s);
  s->id = qb_store_begin_study (s->store, model, rec, error);
  return s->id != 0;
}

static gboolean
set_up (Study *s, GCancellable *cancellable, GError **error)
{
  const QbSensitivityOptions *o = s->opts;
  const QbLlamaParams *p;
  GArray *list = g_array_new (FALSE, FALSE, sizeof (guint));

  if (o->n_candidates == 0)
    {
      g_array_unref (list);
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID, "no candidate formats");
      return FALSE;
    }
  s->method = qb_method_find (o->method ? o->method : "rtn");
  if (s->method == NULL)
    {
      g_array_unref (list);
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID,
                   "unknown method “%s”", o->method);
      return FALSE;
    }
  for (guint i = 0; i < qb_model_get_n_tensors (s->model); i++)
    if (qb_sensitivity_is_quantizable (qb_model_get_tensor (s->model, i)))
      g_array_append_val (list, i);
  s->n_tensors = list->len;
  s->tensors = (guint *) (void *) g_array_free (list, FALSE);
  if (s->n_tensors == 0)
    {
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID,
                   "%s has no tensor the study can quantize", qb_model_get_path (s->model));
      return FALSE;
    }
  if ((s->llama = qb_llama_new (s->model, error)) == NULL)
    return FALSE;
  qb_llama_set_threads (s->llama, o->n_threads);
  s->workers = qb_workers_new (o->n_threads);
  if (o->stats != NULL)
    s->imatrix = qb_activation_stats_get_imatrix (o->stats, TRUE);
  if (s->method->needs_gram && o->stats == NULL)
    {
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID,
                   "method %s needs calibration statistics", s->method->name);
      return FALSE;
    }
  p = qb_llama_get_params (s->llama);
  s->n_vocab = p->n_vocab;
  s->n_embd = p->n_embd;
  s->n_layer = p->n_layer;
  if (!read_eval_tokens (s, cancellable, error) || !check_disjoint (s, error))
    return FALSE;
  s->logits = g_new (float, (gsize) (s->n_ctx - s->first) * s->n_vocab);
  s->pos_kld = g_new (double, s->n_scored);
  s->proxy = choose_proxy (s);
  s->p.total = s->n_tensors * o->n_candidates;
  s->per_expert = o->per_expert;
  return TRUE;
}

static void
study_clear (Study *s)
{
  g_clear_pointer (&s->llama, qb_llama_free);
  g_clear_pointer (&s->workers, qb_workers_free);
  g_clear_pointer (&s->imatrix, qb_imatrix_unref);
  g_clear_pointer (&s->done, g_hash_table_unref);
  g_free (s->tokens);
  g_free (s->hidden);
  g_free (s->base_logits);
  g_free (s->base_lse);
  g_free (s->logits);
  g_free (s->pos_kld);
  g_free (s->text_hash);
  g_free (s->tokens_hash);
  g_free (s->tensors);
}

/* Fits the stored study and ends it with status. */
static gboolean
finish (Study *s, QbExperimentStatus status, const char *message, double seconds, GError **error)
{
  double alpha = NAN, rho = NAN;

  if (status == QB_EXPERIMENT_DONE)
    {
      g_autoptr(QbSensitivityStudy) st = NULL;

      report (s, "fitting", NULL);
      st = qb_sensitivity_study_load (s->store, s->id, error);
      if (st == NULL)
        return FALSE;
      alpha = st->alpha;
      rho = st->loo_spearman;
    }
  return qb_store_finish_study (s->store, s->id, status, alpha, rho, s->base_ppl, seconds,
                                message, error);
}

gboolean
qb_sensitivity_run (QbModel *model, QbTokenizer *tok, QbStore *store,
                    const QbSensitivityOptions *opts, QbSensitivityProgressFunc progress,
                    gpointer progress_data, GCancellable *cancellable, gint64 *study_id,
                    GError **error)
{
  Study s = { 0 };
  g_autofree char *candidates = candidates_text (opts);
  g_autoptr(GError) local = NULL;
  gint64 start = g_get_monotonic_time ();
  gboolean ok;

  s.model = model;
  s.tok = tok;
  s.store = store;
  s.opts = opts;
  s.progress = progress;
  s.progress_data = progress_data;
  s.done = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (study_id != NULL)
    *study_id = 0;

  ok = set_up (&s, cancellable, error);
  if (ok)
    {
      report (&s, "float pass", NULL);
      ok = float_pass (&s, cancellable, error)
           && (opts->resume_id > 0 ? begin_resume (&s, candidates, error)
                                   : begin_new (&s, candidates, error));
    }
  if (!ok)
    {
      study_clear (&s);
      return FALSE;
    }
  if (study_id != NULL)
    *study_id = s.id;

  for (guint i = 0; ok && i < s.n_tensors; i++)
    ok = study_tensor (&s, s.tensors[i], cancellable, &local);
  report (&s, ok ? "fitting" : "stopped", NULL);

  {
    double seconds = (g_get_monotonic_time () - start) / 1e6;
    gboolean cancelled = g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    QbExperimentStatus status = ok ? QB_EXPERIMENT_DONE
                                   : cancelled ? QB_EXPERIMENT_CANCELLED : QB_EXPERIMENT_FAILED;
    /* The study's own record is finished even when the run failed. */
    g_autoptr(GError) finish_error = NULL;

    if (!finish (&s, status, local ? local->message : NULL, seconds, ok ? error : &finish_error))
      ok = FALSE;
  }
  study_clear (&s);
  if (local != NULL)
    g_propagate_error (error, g_steal_pointer (&local));
  return ok;
}
