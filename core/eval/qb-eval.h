/* SPDX-License-Identifier: MIT */
/* qb-eval.h — perplexity and KL divergence, with llama.cpp's protocol.
 *
 * Perplexity (llama-perplexity): the whole text is tokenized once with
 * BOS; it is cut into consecutive chunks of n_ctx tokens; the first token of
 * each chunk is replaced by BOS (when the vocabulary adds one); each chunk
 * is evaluated from an empty context; only positions n_ctx/2 .. n_ctx-2
 * are scored (each predicting the next token); PPL = exp(mean NLL), with
 * llama.cpp's ± (the standard error of the mean NLL, times PPL).
 *
 * KL divergence (llama-perplexity --kl-divergence): the same positions are
 * compared with a base model's log-probabilities — the float model (the
 * same QbModel without any quantized weights), or a llama.cpp logits file.
 * The float model's log-probabilities are computed once per (model,
 * tokenizer, text, n_ctx) and cached under the user's cache directory in
 * llama.cpp's own logits format (see qb-logprobs.h for its precision); a
 * cache made for more chunks serves fewer.  Statistics are llama.cpp's:
 * mean KLD with its ±, median and percentiles of the per-token KLD, "same
 * top p" (top-1 agreement), mean and RMS of Δp (the change in probability
 * of the correct token), and the PPL ratio with its ±.
 *
 * qb_eval_run blocks; call it from a worker thread.  Progress comes on that
 * thread, also within a chunk (per layer, and per slab of a layer's
 * attention: a long context moves); cancelling stops within a layer of one
 * chunk, and a cache file being written is then removed.
 */
#pragma once

#include <gio/gio.h>

#include "qb-experiment.h"
#include "qb-llama.h"
#include "qb-plan.h"
#include "qb-tokenizer.h"

G_BEGIN_DECLS

#define QB_EVAL_ERROR (qb_eval_error_quark ())
GQuark qb_eval_error_quark (void);

typedef enum {
  QB_EVAL_ERROR_TEXT,        /* text unreadable or too short for the context */
  QB_EVAL_ERROR_MISMATCH,    /* a base file that does not fit the model */
} QbEvalError;

#define QB_EVAL_DEFAULT_CTX 512

typedef struct {
  guint        n_ctx;       /* tokens per chunk; 0: 512, or the model's training context if shorter */
  guint        n_chunks;    /* 0: every whole chunk of the text */
  gboolean     kld;         /* compare with the float model */
  const char  *kld_base;    /* compare with this llama.cpp logits file instead (its tokens are evaluated) */
  const char  *cache_dir;   /* NULL: $XDG_CACHE_HOME/quantbench/logprobs */
  gboolean     no_cache;    /* neither read nor write the cache */
} QbEvalOptions;

typedef struct {
  const char *stage;              /* "tokenizing", "evaluating" */
  guint       chunk;              /* chunks done */
  guint       n_chunks;
  double      fraction;           /* of the whole run, 0..1 */
  double      ppl;                /* so far (0 before the first chunk) */
  double      tokens_per_second;  /* of the evaluated model, so far */
} QbEvalProgress;

typedef void (*QbEvalProgressFunc) (const QbEvalProgress *progress, gpointer user_data);

typedef struct {
  guint    n_ctx;
  guint    n_chunks;
  guint64  n_text_tokens;      /* of the whole text (0 when not tokenized: tokens from a base file or the cache) */
  char     text_sha256[65];    /* of the text file's bytes ("" with a base file) */
  guint64  n_scored;

  double   ppl, ppl_err;
  double   nll_mean;

  gboolean has_kld;
  gboolean base_from_cache;    /* the float model's log-probabilities were read, not computed */
  double   base_ppl, base_ppl_err;
  double   ln_ppl_ratio, ln_ppl_ratio_err;
  double   ppl_ratio, ppl_ratio_err;
  double   kld_mean, kld_mean_err;
  double   kld_median, kld_p90, kld_p95, kld_p99, kld_p999, kld_max;
  double   same_top, same_top_err;     /* fraction, 0..1 */
  double   dp_mean, dp_mean_err;       /* Δp of the correct token, as a fraction */
  double   dp_rms, dp_rms_err;

  double   seconds;            /* the evaluated model's forward passes and scoring */
  double   base_seconds;       /* computing the float model (0 when cached) */
  double   tokens_per_second;  /* n_chunks × n_ctx / seconds */
  char     device[128];        /* what ran the evaluated model: "cpu" or "opencl:N (name)" */
} QbEvalResult;

void      qb_eval_options_init (QbEvalOptions *opts);

/* Evaluates llama on the text file, tokenized with tok. */
gboolean  qb_eval_run          (QbLlama              *llama,
                                QbTokenizer          *tok,
                                const char           *text_path,
                                const QbEvalOptions  *opts,
                                QbEvalProgressFunc    progress,
                                gpointer              progress_data,
                                GCancellable         *cancellable,
                                QbEvalResult         *result,
                                GError              **error);

/* Perplexity of llama over tokens already at hand (no cache, no KLD). */
gboolean  qb_eval_tokens       (QbLlama              *llama,
                                const gint32         *tokens,
                                gsize                 n_tokens,
                                gint32                bos,      /* -1: keep the first token */
                                guint                 n_ctx,
                                guint                 n_chunks, /* 0: all */
                                GCancellable         *cancellable,
                                QbEvalResult         *result,
                                GError              **error);

/* Where the float model's log-probabilities for these keys are cached. (transfer full) */
char     *qb_eval_cache_path   (const char           *cache_dir,
                                const char           *model_fingerprint,
                                const char           *tokenizer_fingerprint,
                                const char           *text_sha256,
                                guint                 n_ctx);

/* qb_eval_run on a worker thread, for the UI.  llama and tok must stay
 * alive until callback runs; opts (and its strings) are copied.  progress
 * is called in the calling thread's main context (the thread-default one),
 * at most every 50 ms and once with the final state. */
void      qb_eval_run_async    (QbLlama              *llama,
                                QbTokenizer          *tok,
                                const char           *text_path,
                                const QbEvalOptions  *opts,
                                QbEvalProgressFunc    progress,
                                gpointer              progress_data,
                                GCancellable         *cancellable,
                                GAsyncReadyCallback   callback,
                                gpointer              user_data);
gboolean  qb_eval_run_finish   (GAsyncResult         *res,
                                QbEvalResult         *result,
                                GError              **error);

/* The result as a JSON object (for --json and for storing with an
 * experiment), and back; from_json fails on JSON without "ppl". (transfer full) */
char     *qb_eval_result_to_json   (const QbEvalResult *result);
gboolean  qb_eval_result_from_json (const char         *json,
                                    QbEvalResult       *result,
                                    GError            **error);

/* The record qb_store_set_evaluation stores for a result on text_path
 * (the text's file name is kept for display, its hash identifies it). (transfer full) */
QbEvaluation *qb_eval_result_to_evaluation (const QbEvalResult *result,
                                            const char         *text_path);

/* The plan of a stored experiment (qb_store_get_experiment), to run it
 * again on model; fails when the experiment was run on another model. (transfer full) */
QbPlan       *qb_eval_plan_of_experiment   (const QbExperiment *experiment,
                                            QbModel            *model,
                                            GError            **error);

G_END_DECLS
