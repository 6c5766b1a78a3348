/* SPDX-License-Identifier: MIT */
/* qb-eval.c — perplexity and KL divergence over chunks of a text.
 *
 * One chunk at a time: the float model's pass (when its log-probabilities
 * are not cached) writes its records to the cache, then the evaluated
 * model's pass is scored against them.  Scoring is spread over the
 * positions on the workers; every position's numbers are kept and summed
 * in order, so results do not depend on the thread count.  The per-token
 * arithmetic is llama.cpp's (perplexity.cpp), so figures compare directly.
 */
#include "qb-eval.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "qb-file.h"
#include "qb-json.h"
#include "qb-llama.h"
#include "qb-llama-device-private.h"
#include "qb-logprobs.h"
#include "qb-relay.h"

G_DEFINE_QUARK (qb-eval-error-quark, qb_eval_error)

#define CACHE_VERSION "quantbench-logprobs-1"

void
qb_eval_options_init (QbEvalOptions *opts)
{
  memset (opts, 0, sizeof *opts);
}

/* ---- per-position scores ---------------------------------------------- */

typedef struct {
  double   nll;
  double   nll_base;
  double   kld;
  float    dp;
  gboolean same_top;
} PosScore;

typedef struct {
  double  sum_nll, sum_nll2;
  double  sum_nll_base, sum_nll_base2, sum_nll_nll_base;
  double  sum_kld, sum_kld2;
  double  sum_dp, sum_dp2, sum_dp4;
  guint64 n_same_top;
  guint64 count;
  GArray *kld_values;   /* float, every scored position */
  GArray *dp_values;
} Stats;

/* What the evaluated model's logits say at one position, against a base
 * record when there is one (llama.cpp's kl_divergence log_softmax). */
static void
score_position (const float *logits, guint n_vocab, gint32 next, const guint16 *base,
                PosScore *out)
{
  float max = logits[0], scale, min_log_prob, p_log_base_max = 0;
  guint imax = 0, imax_base = 0;
  double sum_exp = 0, kld = 0;
  float lse, shift;

  for (guint i = 1; i < n_vocab; i++)
    if (logits[i] > max)
      {
        max = logits[i];
        imax = i;
      }
  for (guint i = 0; i < n_vocab; i++)
    sum_exp += expf (logits[i] - max);
  out->nll = (double) max + log (sum_exp) - (double) logits[next];
  if (base == NULL)
    return;

  lse = (float) log (sum_exp);
  memcpy (&scale, base, sizeof scale);
  memcpy (&min_log_prob, base + 2, sizeof min_log_prob);
  base += 4;
  out->nll_base = -(double) (scale * base[next] + min_log_prob);
  shift = max + lse;
  for (guint i = 0; i < n_vocab; i++)
    {
      float p_log_base = scale * base[i] + min_log_prob;
      if (i == 0 || p_log_base > p_log_base_max)
        {
          p_log_base_max = p_log_base;
          imax_base = i;
        }
      if (p_log_base > -16.0f)
        kld += expf (p_log_base) * (p_log_base - logits[i] + shift);
    }
  out->kld = kld;
  out->same_top = imax == imax_base;
  out->dp = expf ((float) -out->nll) - expf ((float) -out->nll_base);
}

static void
stats_add (Stats *s, const PosScore *p, gboolean with_base)
{
  s->sum_nll += p->nll;
  s->sum_nll2 += p->nll * p->nll;
  s->count++;
  if (!with_base)
    return;
  s->sum_nll_base += p->nll_base;
  s->sum_nll_base2 += p->nll_base * p->nll_base;
  s->sum_nll_nll_base += p->nll * p->nll_base;
  s->sum_kld += p->kld;
  s->sum_kld2 += p->kld * p->kld;
  s->sum_dp += p->dp;
  s->sum_dp2 += (double) p->dp * p->dp;
  s->sum_dp4 += (double) p->dp * p->dp * p->dp * p->dp;
  s->n_same_top += p->same_top;
  {
    float k = (float) p->kld;
    g_array_append_val (s->kld_values, k);
    g_array_append_val (s->dp_values, p->dp);
  }
}

/* ---- statistics as llama.cpp prints them ------------------------------ */

static void
mean_and_error (double sum, double sum2, guint64 count, double *mean, double *err)
{
  double m = count ? sum / count : 0, var = count ? sum2 / count - m * m : 0;

  *mean = m;
  *err = var > 0 && count > 10 ? sqrt (var / (count - 1)) : 0;
}

static double
covariance (double sa, double sb, double sab, guint64 count)
{
  if (count < 10)
    return 0;
  return (sab / count - (sa / count) * (sb / count)) / (count - 1);
}

static int
compare_floats (gconstpointer a, gconstpointer b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

static double
percentile (const float *v, gsize n, double fraction)
{
  double p = fraction * (n - 1);
  gsize ip = (gsize) p;

  if (fraction <= 0)
    return v[0];
  if (fraction >= 1)
    return v[n - 1];
  p -= ip;
  return (1 - p) * v[ip] + p * v[MIN (ip + 1, n - 1)];
}

static void
stats_finish (Stats *s, QbEvalResult *r)
{
  double log_ppl, log_ppl_err;

  mean_and_error (s->sum_nll, s->sum_nll2, s->count, &log_ppl, &log_ppl_err);
  r->n_scored = s->count;
  r->nll_mean = log_ppl;
  r->ppl = exp (log_ppl);
  /* llama-perplexity's ±: the standard error of the mean NLL, times PPL. */
  r->ppl_err = s->count > 1 ? r->ppl * sqrt (MAX (0, s->sum_nll2 / s->count - log_ppl * log_ppl)
                                             / (s->count - 1)) : 0;
  if (!r->has_kld || s->count == 0)
    return;

  {
    double base, base_err, cov, dp_mse, dp_mse_err;
    float *kld = (float *) (void *) s->kld_values->data;
    gsize n = s->kld_values->len;

    mean_and_error (s->sum_nll_base, s->sum_nll_base2, s->count, &base, &base_err);
    cov = covariance (s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, s->count);
    r->base_ppl = exp (base);
    r->base_ppl_err = r->base_ppl * base_err;
    r->ln_ppl_ratio = log_ppl - base;
    r->ln_ppl_ratio_err = sqrt (MAX (0, log_ppl_err * log_ppl_err + base_err * base_err - 2 * cov));
    r->ppl_ratio = exp (r->ln_ppl_ratio);
    r->ppl_ratio_err = r->ppl_ratio * r->ln_ppl_ratio_err;

    mean_and_error (s->sum_kld, s->sum_kld2, s->count, &r->kld_mean, &r->kld_mean_err);
    g_array_sort (s->kld_values, compare_floats);
    g_array_sort (s->dp_values, compare_floats);
    r->kld_median = n % 2 == 0 ? 0.5 * (kld[n / 2] + kld[n / 2 - 1]) : kld[n / 2];
    r->kld_p90 = percentile (kld, n, 0.90);
    r->kld_p95 = percentile (kld, n, 0.95);
    r->kld_p99 = percentile (kld, n, 0.99);
    r->kld_p999 = percentile (kld, n, 0.999);
    r->kld_max = kld[n - 1];

    r->same_top = (double) s->n_same_top / s->count;
    r->same_top_err = s->count > 1 ? sqrt (r->same_top * (1 - r->same_top) / (s->count - 1)) : 0;
    mean_and_error (s->sum_dp, s->sum_dp2, s->count, &r->dp_mean, &r->dp_mean_err);
    mean_and_error (s->sum_dp2, s->sum_dp4, s->count, &dp_mse, &dp_mse_err);
    r->dp_rms = sqrt (dp_mse);
    r->dp_rms_err = r->dp_rms > 0 ? 0.5 / r->dp_rms * dp_mse_err : 0;
  }
}

/* ---- one run ---------------------------------------------------------- */

typedef struct {
  QbLlama            *llama;
  QbLlama            *base;         /* computing the float model, or NULL */
  QbLogprobFile      *base_file;    /* reading base records, or NULL */
  QbLogprobWriter    *writer;       /* caching what base computes, or NULL */
  const gint32       *tokens;       /* n_chunks × n_ctx, original first tokens */
  gint32              bos;
  guint               n_ctx;
  guint               n_chunks;
  guint               n_vocab;
  guint               first;
  guint               n_scored;
  gsize               record_len;

  float              *logits;       /* (n_ctx - first) × n_vocab */
  guint16            *records;      /* base records of the current chunk */
  PosScore           *scores;       /* n_scored */
  QbLlamaScore       *device_scores;   /* n_scored, when a device scores */
  const guint16      *chunk_base;   /* the current chunk's base records, or NULL */
  const gint32       *chunk_tokens;

  Stats               stats;
  QbEvalProgressFunc  progress;
  gpointer            progress_data;
  guint               units_done;   /* forward passes finished */
  guint               units_total;
  gint64              eval_usec;
  gint64              base_usec;
} Run;

static void
encode_item (gint64 i, guint thread, gpointer data)
{
  Run *run = data;

  qb_logprobs_encode (run->logits + i * run->n_vocab, run->n_vocab,
                      run->chunk_tokens[run->first + i + 1], run->records + i * run->record_len);
}

static void
score_item (gint64 i, guint thread, gpointer data)
{
  Run *run = data;
  const guint16 *base = run->chunk_base ? run->chunk_base + i * run->record_len : NULL;

  score_position (run->logits + i * run->n_vocab, run->n_vocab,
                  run->chunk_tokens[run->first + i + 1], base, &run->scores[i]);
}

static void
report (Run *run, double layer_fraction)
{
  QbEvalProgress p = { "evaluating", 0, run->n_chunks, 0, 0, 0 };
  guint64 done_chunks = run->stats.count / MAX (run->n_scored, 1);

  if (run->progress == NULL)
    return;
  p.chunk = (guint) done_chunks;
  p.fraction = (run->units_done + layer_fraction) / MAX (run->units_total, 1);
  if (run->stats.count > 0)
    p.ppl = exp (run->stats.sum_nll / run->stats.count);
  if (run->eval_usec > 0)
    p.tokens_per_second = done_chunks * run->n_ctx / (run->eval_usec / 1e6);
  run->progress (&p, run->progress_data);
}

static void
layer_done (guint done, guint total, gpointer data)
{
  report (data, (double) done / total);
}

/* One pass over the chunk.  A device that runs it scores the positions
 * itself (against base, making records when asked: *scored) and keeps the
 * logits; on the CPU the logits come back. */
static gboolean
forward_chunk (Run *run, QbLlama *llama, const gint32 *chunk, const guint16 *base,
               guint16 *records, gboolean *scored, GCancellable *cancellable, GError **error)
{
  QbLlamaScoring scoring = { run->n_scored, run->chunk_tokens + run->first + 1, base, records,
                             (guint) run->record_len, run->device_scores, FALSE };
  gboolean ok;

  llama->scoring = &scoring;
  ok = qb_llama_forward (llama, chunk, run->n_ctx, run->first, run->logits,
                         layer_done, run, cancellable, error);
  llama->scoring = NULL;
  run->units_done += ok;
  *scored = ok && scoring.done;
  return ok;
}

/* A device's scores into the host's, as score_position gives them. */
static void
take_device_scores (Run *run, gboolean with_base)
{
  for (guint i = 0; i < run->n_scored; i++)
    {
      const QbLlamaScore *d = &run->device_scores[i];
      PosScore *p = &run->scores[i];

      p->nll = d->nll;
      if (!with_base)
        continue;
      p->nll_base = d->nll_base;
      p->kld = d->kld;
      p->same_top = d->top == d->top_base;
      p->dp = expf ((float) -p->nll) - expf ((float) -p->nll_base);
    }
}

/* NaN or infinite logits (weights holding NaN or infinities, or an
 * overflow) would give a NaN perplexity and a KL divergence of 0: stop. */
static gboolean
logits_not_finite (const char *which, float value, guint c, guint position, GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "the %s model's logits are not finite (%g in chunk %u at position %u): "
               "its weights hold NaN or infinities, or its activations overflow",
               which, value, c + 1, position);
  return FALSE;
}

/* The logits on the host, or as the device's scores counted them. */
static gboolean
check_logits (Run *run, gboolean scored, const char *which, guint c, GError **error)
{
  gsize n = (gsize) run->n_scored * run->n_vocab;

  if (scored)
    {
      for (guint i = 0; i < run->n_scored; i++)
        if (run->device_scores[i].n_bad > 0)
          return logits_not_finite (which, run->device_scores[i].bad, c, run->first + i, error);
      return TRUE;
    }
  for (gsize i = 0; i < n; i++)
    if (!isfinite (run->logits[i]))
      return logits_not_finite (which, run->logits[i], c, run->first + (guint) (i / run->n_vocab), error);
  return TRUE;
}

static gboolean
run_chunk (Run *run, guint c, GCancellable *cancellable, GError **error)
{
  g_autofree gint32 *chunk = g_memdup2 (run->tokens + (gsize) c * run->n_ctx,
                                        sizeof (gint32) * run->n_ctx);
  gint64 start;
  gboolean scored;

  if (run->bos >= 0)
    chunk[0] = run->bos;
  run->chunk_tokens = run->tokens + (gsize) c * run->n_ctx;
  run->chunk_base = run->base_file ? qb_logprob_file_get_chunk (run->base_file, c) : NULL;

  if (run->base != NULL)
    {
      start = g_get_monotonic_time ();
      if (!forward_chunk (run, run->base, chunk, NULL, run->records, &scored, cancellable, error) ||
          !check_logits (run, scored, "original", c, error))
        return FALSE;
      if (!scored)
        qb_workers_run (qb_llama_get_workers (run->llama), run->n_scored, encode_item, run);
      run->chunk_base = run->records;
      run->base_usec += g_get_monotonic_time () - start;
      if (run->writer != NULL && !qb_logprob_writer_add_chunk (run->writer, run->records, error))
        return FALSE;
    }

  start = g_get_monotonic_time ();
  if (!forward_chunk (run, run->llama, chunk, run->chunk_base, NULL, &scored, cancellable, error) ||
      !check_logits (run, scored, run->base || run->chunk_base ? "quantized" : "evaluated", c, error))
    return FALSE;
  if (scored)
    take_device_scores (run, run->chunk_base != NULL);
  else
    qb_workers_run (qb_llama_get_workers (run->llama), run->n_scored, score_item, run);
  run->eval_usec += g_get_monotonic_time () - start;
  for (guint i = 0; i < run->n_scored; i++)
    stats_add (&run->stats, &run->scores[i], run->chunk_base != NULL);
  report (run, 0);
  return TRUE;
}

static gboolean
run_chunks (Run *run, GCancellable *cancellable, QbEvalResult *result, GError **error)
{
  gboolean ok = TRUE;

  run->n_vocab = qb_llama_get_params (run->llama)->n_vocab;
  run->first = run->n_ctx / 2;
  run->n_scored = qb_logprobs_n_scored (run->n_ctx);
  run->record_len = qb_logprobs_record_len (run->n_vocab);
  run->logits = g_new (float, (gsize) (run->n_ctx - run->first) * run->n_vocab);
  run->scores = g_new0 (PosScore, run->n_scored);
  run->device_scores = g_new0 (QbLlamaScore, run->n_scored);
  if (run->base != NULL)
    run->records = g_new (guint16, (gsize) run->n_scored * run->record_len);
  run->stats.kld_values = g_array_new (FALSE, FALSE, sizeof (float));
  run->stats.dp_values = g_array_new (FALSE, FALSE, sizeof (float));
  run->units_total = run->n_chunks * (run->base ? 2 : 1);
  result->has_kld = run->base != NULL || run->base_file != NULL;

  for (guint c = 0; ok && c < run->n_chunks; c++)
    ok = run_chunk (run, c, cancellable, error);
  if (ok && run->writer != NULL)
    ok = qb_logprob_writer_finish (run->writer, error);

  if (ok)
    {
      result->n_ctx = run->n_ctx;
      result->n_chunks = run->n_chunks;
      stats_finish (&run->stats, result);
      result->seconds = run->eval_usec / 1e6;
      result->base_seconds = run->base_usec / 1e6;
      result->tokens_per_second = result->seconds > 0
                                  ? (double) run->n_chunks * run->n_ctx / result->seconds : 0;
      g_strlcpy (result->device, qb_llama_device_label (run->llama), sizeof result->device);
    }
  g_free (run->logits);
  g_free (run->scores);
  g_free (run->device_scores);
  g_free (run->records);
  g_array_unref (run->stats.kld_values);
  g_array_unref (run->stats.dp_values);
  return ok;
}

static gboolean
check_length (gsize n_tokens, guint n_ctx, guint *n_chunks, GError **error)
{
  guint max;

  if (n_ctx < 4)
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_TEXT, "a context of %u tokens is too short", n_ctx);
      return FALSE;
    }
  if (n_tokens < 2 * (gsize) n_ctx)
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_TEXT,
                   "the text has %" G_GSIZE_FORMAT " tokens; a context of %u needs at least %u",
                   n_tokens, n_ctx, 2 * n_ctx);
      return FALSE;
    }
  max = (guint) MIN (n_tokens / n_ctx, G_MAXUINT);
  *n_chunks = *n_chunks == 0 ? max : MIN (*n_chunks, max);
  return TRUE;
}

gboolean
qb_eval_tokens (QbLlama *llama, const gint32 *tokens, gsize n_tokens, gint32 bos, guint n_ctx,
                guint n_chunks, GCancellable *cancellable, QbEvalResult *result, GError **error)
{
  Run run = { 0 };

  memset (result, 0, sizeof *result);
  if (!check_length (n_tokens, n_ctx, &n_chunks, error))
    return FALSE;
  run.llama = llama;
  run.tokens = tokens;
  run.bos = bos;
  run.n_ctx = n_ctx;
  run.n_chunks = n_chunks;
  result->n_text_tokens = n_tokens;
  return run_chunks (&run, cancellable, result, error);
}

/* ---- the text and the cache ------------------------------------------- */

char *
qb_eval_cache_path (const char *cache_dir, const char *model_fingerprint,
                    const char *tokenizer_fingerprint, const char *text_sha256, guint n_ctx)
{
  g_autofree char *key = g_strdup_printf ("%s\n%s\n%s\n%s\n%u", CACHE_VERSION, model_fingerprint,
                                          tokenizer_fingerprint, text_sha256, n_ctx);
  g_autofree char *digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, key, -1);
  g_autofree char *name = g_strdup_printf ("%s.logits", digest);
  g_autofree char *dir = cache_dir ? g_strdup (cache_dir)
                                   : g_build_filename (g_get_user_cache_dir (), "quantbench",
                                                       "logprobs", NULL);
  return g_build_filename (dir, name, NULL);
}

static guint
default_ctx (QbLlama *llama, const QbEvalOptions *opts)
{
  guint train = qb_llama_get_params (llama)->n_ctx_train;

  if (opts->n_ctx > 0)
    return opts->n_ctx;
  return train > 0 && train < QB_EVAL_DEFAULT_CTX ? train : QB_EVAL_DEFAULT_CTX;
}

/* A usable cache file: same context and vocabulary, enough chunks, and the
 * tokens we have (when we have them). */
static QbLogprobFile *
open_cache (const char *path, guint n_ctx, guint n_vocab, guint n_chunks, GArray *tokens)
{
  g_autoptr(QbLogprobFile) f = NULL;
  gsize n;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  f = qb_logprob_file_open (path, NULL);
  if (f == NULL || qb_logprob_file_get_n_ctx (f) != n_ctx
      || qb_logprob_file_get_n_vocab (f) != n_vocab || qb_logprob_file_get_n_chunks (f) < n_chunks
      || n_chunks == 0)
    return NULL;
  n = (gsize) n_ctx * n_chunks;
  if (tokens != NULL && (tokens->len < n
                         || memcmp (tokens->data, qb_logprob_file_get_tokens (f), n * sizeof (gint32)) != 0))
    return NULL;
  return g_steal_pointer (&f);
}

static GArray *
tokenize_text (QbTokenizer *tok, const char *path, const char *text, gsize len,
               QbEvalProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
               GError **error)
{
  QbEvalProgress p = { "tokenizing", 0, 0, 0, 0, 0 };
  g_autoptr(GError) local = NULL;
  GArray *tokens;

  if (progress != NULL)
    progress (&p, progress_data);
  tokens = qb_tokenizer_encode (tok, text, len, TRUE, FALSE, cancellable, &local);
  if (tokens == NULL)
    {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_propagate_error (error, g_steal_pointer (&local));
      else
        g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_TEXT, "%s: %s", path, local->message);
    }
  return tokens;
}

/* Compares with a llama.cpp logits file: its tokens, context and chunks. */
static gboolean
setup_base_file (Run *run, const QbEvalOptions *opts, GError **error)
{
  QbLogprobFile *f = qb_logprob_file_open (opts->kld_base, error);

  if (f == NULL)
    return FALSE;
  run->base_file = f;
  if (qb_logprob_file_get_n_vocab (f) != qb_llama_get_params (run->llama)->n_vocab
      || (opts->n_ctx != 0 && opts->n_ctx != qb_logprob_file_get_n_ctx (f)))
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_MISMATCH,
                   "%s was computed with n_ctx %u and %u tokens in the vocabulary; "
                   "this evaluation has n_ctx %u and %u", opts->kld_base,
                   qb_logprob_file_get_n_ctx (f), qb_logprob_file_get_n_vocab (f),
                   opts->n_ctx ? opts->n_ctx : qb_logprob_file_get_n_ctx (f), qb_llama_get_params (run->llama)->n_vocab);
      return FALSE;
    }
  run->n_ctx = qb_logprob_file_get_n_ctx (f);
  run->n_chunks = opts->n_chunks ? MIN (opts->n_chunks, qb_logprob_file_get_n_chunks (f))
                                 : qb_logprob_file_get_n_chunks (f);
  run->tokens = qb_logprob_file_get_tokens (f);
  return TRUE;
}

static gboolean
read_text (const char *path, char **text, gsize *len, char **sha, GError **error)
{
  g_autoptr(GError) local = NULL;

  /* A text is read whole: a FIFO or a folder is refused, not waited on. */
  if (!qb_file_read (path, (gsize) 1 << 32, text, len, &local))
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_TEXT, "%s", local->message);
      return FALSE;
    }
  *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) *text, *len);
  return TRUE;
}

/* Finds or prepares the float model's log-probabilities; sets run->tokens
 * (from the cache when it answers the request without tokenizing). */
static gboolean
setup_float_base (Run *run, QbTokenizer *tok, const char *text_path, const QbEvalOptions *opts,
                  GArray **tokens, QbEvalProgressFunc progress, gpointer progress_data,
                  GCancellable *cancellable, QbEvalResult *result, GError **error)
{
  g_autofree char *text = NULL, *sha = NULL, *tok_fp = NULL, *path = NULL, *dir = NULL;
  gsize len = 0;

  if (!read_text (text_path, &text, &len, &sha, error))
    return FALSE;
  g_strlcpy (result->text_sha256, sha, sizeof result->text_sha256);
  tok_fp = qb_tokenizer_fingerprint (tok);
  path = qb_eval_cache_path (opts->cache_dir, qb_model_get_fingerprint (qb_llama_get_model (run->llama)),
                             tok_fp, sha, run->n_ctx);
  if (opts->kld && !opts->no_cache && opts->n_chunks > 0)
    run->base_file = open_cache (path, run->n_ctx, qb_llama_get_params (run->llama)->n_vocab, opts->n_chunks, NULL);

  if (run->base_file == NULL)
    {
      *tokens = tokenize_text (tok, text_path, text, len, progress, progress_data, cancellable, error);
      if (*tokens == NULL)
        return FALSE;
      result->n_text_tokens = (*tokens)->len;
      run->n_chunks = opts->n_chunks;
      if (!check_length ((*tokens)->len, run->n_ctx, &run->n_chunks, error))
        return FALSE;
      run->tokens = (const gint32 *) (void *) (*tokens)->data;
      if (opts->kld && !opts->no_cache)
        run->base_file = open_cache (path, run->n_ctx, qb_llama_get_params (run->llama)->n_vocab, run->n_chunks, *tokens);
    }
  else
    {
      run->n_chunks = opts->n_chunks;
      run->tokens = qb_logprob_file_get_tokens (run->base_file);
    }
  result->base_from_cache = run->base_file != NULL;
  if (!opts->kld || run->base_file != NULL)
    return TRUE;

  run->base = qb_llama_new (qb_llama_get_model (run->llama), error);
  if (run->base == NULL)
    return FALSE;
  qb_llama_set_threads (run->base, qb_llama_get_threads (run->llama));
  if (opts->no_cache)
    return TRUE;
  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    return TRUE;   /* no cache this time; the evaluation itself can go on */
  run->writer = qb_logprob_writer_new (path, run->n_ctx, qb_llama_get_params (run->llama)->n_vocab, run->n_chunks,
                                       run->tokens, NULL);
  return TRUE;
}

gboolean
qb_eval_run (QbLlama *llama, QbTokenizer *tok, const char *text_path, const QbEvalOptions *opts,
             QbEvalProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
             QbEvalResult *result, GError **error)
{
  g_autoptr(GArray) tokens = NULL;
  Run run = { 0 };
  gboolean ok;

  memset (result, 0, sizeof *result);
  run.llama = llama;
  run.bos = qb_tokenizer_get_add_bos (tok) ? qb_tokenizer_get_bos (tok) : -1;
  run.n_ctx = default_ctx (llama, opts);
  run.progress = progress;
  run.progress_data = progress_data;

  if (opts->kld_base != NULL)
    ok = setup_base_file (&run, opts, error);
  else
    ok = setup_float_base (&run, tok, text_path, opts, &tokens, progress, progress_data,
                           cancellable, result, error);
  if (ok)
    ok = run_chunks (&run, cancellable, result, error);

  g_clear_pointer (&run.writer, qb_logprob_writer_free);
  g_clear_pointer (&run.base_file, qb_logprob_file_free);
  g_clear_pointer (&run.base, qb_llama_free);
  return ok;
}

/* ---- JSON ------------------------------------------------------------- */

char *
qb_eval_result_to_json (const QbEvalResult *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "n_ctx");
  json_builder_add_int_value (b, r->n_ctx);
  json_builder_set_member_name (b, "n_chunks");
  json_builder_add_int_value (b, r->n_chunks);
  json_builder_set_member_name (b, "n_scored");
  json_builder_add_int_value (b, (gint64) r->n_scored);
  json_builder_set_member_name (b, "text_sha256");
  json_builder_add_string_value (b, r->text_sha256);
  qb_json_builder_add_number (b, "ppl", r->ppl);
  qb_json_builder_add_number (b, "ppl_err", r->ppl_err);
  qb_json_builder_add_number (b, "seconds", r->seconds);
  qb_json_builder_add_number (b, "tokens_per_second", r->tokens_per_second);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, r->device[0] ? r->device : "cpu");
  if (r->has_kld)
    {
      json_builder_set_member_name (b, "kld");
      json_builder_begin_object (b);
      qb_json_builder_add_number (b, "base_ppl", r->base_ppl);
      qb_json_builder_add_number (b, "base_ppl_err", r->base_ppl_err);
      qb_json_builder_add_number (b, "ppl_ratio", r->ppl_ratio);
      qb_json_builder_add_number (b, "ppl_ratio_err", r->ppl_ratio_err);
      qb_json_builder_add_number (b, "ln_ppl_ratio", r->ln_ppl_ratio);
      qb_json_builder_add_number (b, "ln_ppl_ratio_err", r->ln_ppl_ratio_err);
      qb_json_builder_add_number (b, "mean", r->kld_mean);
      qb_json_builder_add_number (b, "mean_err", r->kld_mean_err);
      qb_json_builder_add_number (b, "median", r->kld_median);
      qb_json_builder_add_number (b, "p90", r->kld_p90);
      qb_json_builder_add_number (b, "p95", r->kld_p95);
      qb_json_builder_add_number (b, "p99", r->kld_p99);
      qb_json_builder_add_number (b, "p99_9", r->kld_p999);
      qb_json_builder_add_number (b, "max", r->kld_max);
      qb_json_builder_add_number (b, "same_top", r->same_top);
      qb_json_builder_add_number (b, "same_top_err", r->same_top_err);
      qb_json_builder_add_number (b, "dp_mean", r->dp_mean);
      qb_json_builder_add_number (b, "dp_mean_err", r->dp_mean_err);
      qb_json_builder_add_number (b, "dp_rms", r->dp_rms);
      qb_json_builder_add_number (b, "dp_rms_err", r->dp_rms_err);
      json_builder_set_member_name (b, "base_from_cache");
      json_builder_add_boolean_value (b, r->base_from_cache);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  /* qb-json writes every double as valid JSON (json-glib 1.6 may not). */
  return qb_json_to_string (root);
}

static double
get_number (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : 0;
}

gboolean
qb_eval_result_from_json (const char *json, QbEvalResult *r, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o, *k;

  memset (r, 0, sizeof *r);
  if (!qb_json_parser_load (parser, json, -1, QB_JSON_MAX_NESTING, "evaluation", error))
    return FALSE;
  o = JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))
      ? json_node_get_object (json_parser_get_root (parser)) : NULL;
  if (o == NULL || !json_object_has_member (o, "ppl"))
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_MISMATCH, "not an evaluation result (no \"ppl\")");
      return FALSE;
    }
  r->n_ctx = (guint) get_number (o, "n_ctx");
  r->n_chunks = (guint) get_number (o, "n_chunks");
  r->n_scored = (guint64) get_number (o, "n_scored");
  g_strlcpy (r->text_sha256, json_object_get_string_member_with_default (o, "text_sha256", ""),
             sizeof r->text_sha256);
  r->ppl = get_number (o, "ppl");
  r->ppl_err = get_number (o, "ppl_err");
  r->nll_mean = r->ppl > 0 ? log (r->ppl) : 0;
  r->seconds = get_number (o, "seconds");
  r->tokens_per_second = get_number (o, "tokens_per_second");
  g_strlcpy (r->device, json_object_get_string_member_with_default (o, "device", "cpu"), sizeof r->device);
  k = json_object_has_member (o, "kld") ? json_object_get_object_member (o, "kld") : NULL;
  if (k == NULL)
    return TRUE;
  r->has_kld = TRUE;
  r->base_ppl = get_number (k, "base_ppl");
  r->base_ppl_err = get_number (k, "base_ppl_err");
  r->ppl_ratio = get_number (k, "ppl_ratio");
  r->ppl_ratio_err = get_number (k, "ppl_ratio_err");
  r->ln_ppl_ratio = get_number (k, "ln_ppl_ratio");
  r->ln_ppl_ratio_err = get_number (k, "ln_ppl_ratio_err");
  r->kld_mean = get_number (k, "mean");
  r->kld_mean_err = get_number (k, "mean_err");
  r->kld_median = get_number (k, "median");
  r->kld_p90 = get_number (k, "p90");
  r->kld_p95 = get_number (k, "p95");
  r->kld_p99 = get_number (k, "p99");
  r->kld_p999 = get_number (k, "p99_9");
  r->kld_max = get_number (k, "max");
  r->same_top = get_number (k, "same_top");
  r->same_top_err = get_number (k, "same_top_err");
  r->dp_mean = get_number (k, "dp_mean");
  r->dp_mean_err = get_number (k, "dp_mean_err");
  r->dp_rms = get_number (k, "dp_rms");
  r->dp_rms_err = get_number (k, "dp_rms_err");
  r->base_from_cache = json_object_get_boolean_member_with_default (k, "base_from_cache", FALSE);
  return TRUE;
}

/* ---- on a worker thread ----------------------------------------------- */

typedef struct {
  QbLlama            *llama;
  QbTokenizer        *tok;
  char               *text_path;
  char               *kld_base;
  char               *cache_dir;
  QbEvalOptions       opts;
  QbEvalProgressFunc  progress;
  gpointer            progress_data;
  GMainContext       *context;
  GMutex              lock;
  QbEvalProgress      latest;
  QbRelay            *relay;      /* latest to the caller's context */
  QbEvalResult        result;
} AsyncData;

static void
async_data_free (gpointer p)
{
  AsyncData *d = p;

  qb_tokenizer_unref (d->tok);
  g_free (d->text_path);
  g_free (d->kld_base);
  g_free (d->cache_dir);
  qb_relay_free (d->relay);
  g_main_context_unref (d->context);
  g_mutex_clear (&d->lock);
  g_free (d);
}

static gboolean
deliver_progress (gpointer data)
{
  GTask *task = data;
  AsyncData *d = g_task_get_task_data (task);
  QbEvalProgress p;

  g_mutex_lock (&d->lock);
  p = d->latest;
  g_mutex_unlock (&d->lock);
  if (!g_task_get_completed (task))
    d->progress (&p, d->progress_data);
  return G_SOURCE_REMOVE;
}

/* Keeps the latest progress; the caller's context sees it at most every
 * 50 ms. */
static void
async_progress (const QbEvalProgress *p, gpointer data)
{
  AsyncData *d = g_task_get_task_data (data);

  g_mutex_lock (&d->lock);
  d->latest = *p;
  g_mutex_unlock (&d->lock);
  qb_relay_schedule (d->relay);
}

static void
eval_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  AsyncData *d = data;
  GError *error = NULL;

  if (qb_eval_run (d->llama, d->tok, d->text_path, &d->opts, d->progress ? async_progress : NULL,
                   task, cancellable, &d->result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
qb_eval_run_async (QbLlama *llama, QbTokenizer *tok, const char *text_path,
                   const QbEvalOptions *opts, QbEvalProgressFunc progress, gpointer progress_data,
                   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  AsyncData *d = g_new0 (AsyncData, 1);

  d->llama = llama;
  d->tok = qb_tokenizer_ref (tok);
  d->text_path = g_strdup (text_path);
  d->kld_base = g_strdup (opts->kld_base);
  d->cache_dir = g_strdup (opts->cache_dir);
  d->opts = *opts;
  d->opts.kld_base = d->kld_base;
  d->opts.cache_dir = d->cache_dir;
  d->progress = progress;
  d->progress_data = progress_data;
  d->context = g_main_context_ref_thread_default ();
  g_mutex_init (&d->lock);
  d->relay = qb_relay_new (d->context, 50, "[quantbench] evaluation progress", deliver_progress,
                           task, g_object_ref, g_object_unref);
  g_task_set_source_tag (task, qb_eval_run_async);
  g_task_set_task_data (task, d, async_data_free);
  g_task_run_in_thread (task, eval_thread);
}

gboolean
qb_eval_run_finish (GAsyncResult *res, QbEvalResult *result, GError **error)
{
  GTask *task = G_TASK (res);

  g_return_val_if_fail (g_task_get_source_tag (task) == qb_eval_run_async, FALSE);
  if (!g_task_propagate_boolean (task, error))
    return FALSE;
  *result = ((AsyncData *) g_task_get_task_data (task))->result;
  return TRUE;
}

QbEvaluation *
qb_eval_result_to_evaluation (const QbEvalResult *r,
                              const char         *text_path)
{
  QbEvaluation *e = qb_evaluation_new ();

  e->text_name = g_path_get_basename (text_path);
  e->text_hash = g_strdup (r->text_sha256);
  e->n_ctx = r->n_ctx;
  e->n_chunks = r->n_chunks;
  e->n_tokens = r->n_scored;
  e->perplexity = r->ppl;
  e->perplexity_err = r->ppl_err;
  e->seconds = r->seconds;
  e->device = g_strdup (r->device[0] ? r->device : "cpu");
  if (!r->has_kld)
    return e;
  e->base_perplexity = r->base_ppl;
  e->kld_mean = r->kld_mean;
  e->kld_median = r->kld_median;
  e->kld_p90 = r->kld_p90;
  e->kld_p95 = r->kld_p95;
  e->kld_p99 = r->kld_p99;
  e->kld_max = r->kld_max;
  e->top1_agreement = r->same_top;
  e->dp_mean = r->dp_mean;
  e->dp_rms = r->dp_rms;
  return e;
}

QbPlan *
qb_eval_plan_of_experiment (const QbExperiment *experiment,
                            QbModel            *model,
                            GError            **error)
{
  if (g_strcmp0 (experiment->model_fingerprint, qb_model_get_fingerprint (model)) != 0)
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_MISMATCH,
                   "experiment %" G_GINT64_FORMAT " (“%s”) was run on another model (%s)",
                   experiment->id, experiment->name,
                   experiment->model_name ? experiment->model_name : "?");
      return NULL;
    }
  if (experiment->plan_json == NULL)
    {
      g_set_error (error, QB_EVAL_ERROR, QB_EVAL_ERROR_MISMATCH,
                   "experiment %" G_GINT64_FORMAT " has no plan", experiment->id);
      return NULL;
    }
  return qb_plan_new_from_json (experiment->plan_json, error);
}
