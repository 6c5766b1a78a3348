/* SPDX-License-Identifier: MIT */
/* qb-activation-stats.h — what a model's linear layers see on calibration
 * data: the importance matrix and, where a method needs it, XᵀX.
 *
 * The model is run over the calibration chunks (qb_llama_forward); the
 * activation hook sees the input X (tokens × columns) of every linear
 * layer.  Per distinct input (Q, K and V read one, gate and up another):
 *  - the per-column sums of squares Σ x² and the row count, as llama.cpp's
 *    imatrix tool sums them (every token of every chunk, the output matrix
 *    only on request as with --process-output).  Exported per weight, so
 *    Q, K and V each get an entry with the same values, as llama-imatrix
 *    writes them; importance = Σ x² / rows;
 *  - XᵀX in double (OpenBLAS dsyrk per chunk), for the inputs of the
 *    tensors asked for: n² · 8 bytes each (4096 columns: 128 MiB).  They
 *    are accumulated a few at a time, at most max_gram_bytes per pass over
 *    the calibration data (more passes when more are needed), written to
 *    the cache, and mapped back one at a time when a job asks.
 *
 * Cache: $XDG_CACHE_HOME/quantbench/calibration/stats/KEY/ with KEY the
 * SHA-256 of the model's fingerprint and the calibration set's hash:
 * imatrix.gguf (llama.cpp's GGUF imatrix layout, counts included) and one
 * gram-NAME.bin per input (qb-calibration-private.h's frame; payload u64 n,
 * u64 rows, n × n doubles).  Each file is written whole when its pass is
 * done (temporary name, fsync, rename), so a cancelled pass leaves nothing
 * half-written; statistics already cached are not computed again.
 *
 * What a 7B LLaMA (hidden 4096, FFN 11008, 32 layers) needs: the
 * importance matrix is 32 × (3 × 4096 + 11008) doubles, 6 MB.  XᵀX per
 * layer: 128 MiB each for the inputs of Q/K/V, of attn_output and of
 * gate/up, 924.5 MiB for ffn_down's: 1.28 GiB per layer, 41 GiB for every
 * linear layer (output included) — on disk, in the cache.  In memory at
 * once: max_gram_bytes (2 GiB by default: about 1.5 layers per pass, so
 * some 21 passes, each stopping after the last layer it needs, about 11
 * full passes' worth of forward work), one chunk's activations in double
 * for dsyrk (512 × 11008 × 8 B = 43 MiB) and the forward pass's own
 * working memory.  A pass that wants no output-matrix statistics stops
 * each chunk's forward pass after its last layer.
 *
 * Mixtures of experts: a 3-D expert tensor's input has one XᵀX per expert,
 * over the tokens routed to that expert only (gate and up: the FFN norm's
 * output of those tokens; down: that expert's own intermediate
 * activations), its rows the tokens the importance counts for it.  Each
 * expert's XᵀX is a unit of the passes (a pass still holds at most
 * max_gram_bytes) and a cache file of its own (gram-KEY.eN.bin).  In all
 * that is n_expert × n² doubles per expert input — Mixtral 8x7B: 8 × 128
 * MiB for gate/up and 8 × 1.53 GiB for down per layer, 444 GiB for 32
 * layers — so above max_expert_gram_bytes (16 GiB by default) none is
 * collected: a message and qb_activation_stats_get_expert_note say why,
 * and GPTQ rounds the expert tensors, each a listed fallback.  An expert
 * no calibration token reached has an XᵀX of zeros and 0 rows: GPTQ
 * rounds that expert's rows (as GPTQModel's fail-safe does) and the
 * tensor's result lists it.
 *
 * On the selected device (QB_DEVICE, --device; qb-device.h) the forward
 * pass accumulates Σ x² and XᵀX there (qb_llama_stats_begin: double
 * sums, CLBlast DSYRK on the inputs widened to double, as the CPU does
 * with OpenBLAS) and they come back once per pass, not per chunk; the
 * files and caches are the same.  A device that cannot (no fp64, not
 * enough memory, a mixture of experts — XᵀX per expert is collected on the
 * CPU —, a family the device pass lacks) or
 * that fails midway prints why, and the pass runs on the CPU from its
 * first chunk.
 *
 * qb_activation_stats_compute blocks: call it from a worker thread (GTask).
 * Progress comes on that thread; cancelling stops within one layer.
 */
#pragma once

#include <gio/gio.h>

#include "qb-calibration.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-plan.h"

G_BEGIN_DECLS

/* XᵀX held at once by default: passes stay within this. */
#define QB_STATS_DEFAULT_GRAM_BYTES (G_GUINT64_CONSTANT (2) << 30)
/* XᵀX per expert in all (on disk, or in memory without a cache) by
 * default: above it none is collected. */
#define QB_STATS_DEFAULT_EXPERT_GRAM_BYTES (G_GUINT64_CONSTANT (16) << 30)

typedef struct {
  const char * const *gram_tensors;   /* tensors whose input XᵀX is wanted, NULL-terminated; may be NULL */
  gboolean            gram_all;       /* XᵀX of every linear layer's input */
  guint64             max_gram_bytes; /* XᵀX held at once; 0: QB_STATS_DEFAULT_GRAM_BYTES */
  guint64             max_expert_gram_bytes; /* XᵀX per expert in all; 0: QB_STATS_DEFAULT_EXPERT_GRAM_BYTES */
  const char         *cache_dir;      /* NULL: $XDG_CACHE_HOME/quantbench/calibration */
  gboolean            no_cache;       /* compute everything, keep XᵀX in memory */
} QbStatsOptions;

typedef struct {
  guint   pass;          /* 0-based */
  guint   n_passes;
  guint   chunk;         /* chunks done in this pass */
  guint   n_chunks;
  double  fraction;      /* of the whole computation */
} QbStatsProgress;

typedef void (*QbStatsProgressFunc) (const QbStatsProgress *progress, gpointer user_data);

typedef struct _QbActivationStats QbActivationStats;

void                qb_stats_options_init            (QbStatsOptions     *opts);

/* Runs llama (its stored weights, or whatever was set on it) over calib. (transfer full) */
QbActivationStats  *qb_activation_stats_compute      (QbLlama            *llama,
                                                      QbCalibration      *calib,
                                                      const QbStatsOptions *opts,
                                                      QbStatsProgressFunc progress,
                                                      gpointer            progress_data,
                                                      GCancellable       *cancellable,
                                                      GError            **error);
void                qb_activation_stats_free         (QbActivationStats  *stats);

/* The importance matrix, one entry per weight of the repeated blocks, plus
 * output.weight when include_output; dataset facts from the calibration
 * set.  A new reference. (transfer full) */
QbImatrix          *qb_activation_stats_get_imatrix  (QbActivationStats  *stats,
                                                      gboolean            include_output);
/* XᵀX of the tensor's input (n × n, both triangles), or NULL when it was
 * not computed (or its cache file is gone or damaged).  Valid until the
 * next call or the end of stats. */
const double       *qb_activation_stats_get_gram     (QbActivationStats  *stats,
                                                      const char         *tensor_name,
                                                      guint64            *n_samples);
/* The same for one expert of a 3-D expert tensor (expert 0 of a dense
 * one): XᵀX over the tokens routed to that expert, *n_samples of them (0
 * for an expert no calibration token reached: a matrix of zeros).  The
 * pointers of one tensor's experts stay valid together, until another
 * tensor is asked for or the end of stats. */
const double       *qb_activation_stats_get_expert_gram (QbActivationStats *stats,
                                                      const char         *tensor_name,
                                                      guint               expert,
                                                      guint64            *n_samples);
/* Every expert's XᵀX of a 3-D expert tensor with rows of n_cols into
 * grams and n_samples (max entries each): the number of experts, or 0
 * when any is missing (or the tensor has more than max experts). */
guint               qb_activation_stats_get_expert_grams (QbActivationStats *stats,
                                                      const char         *tensor_name,
                                                      gint64              n_cols,
                                                      const double      **grams,
                                                      guint64            *n_samples,
                                                      guint               max);
/* Why no XᵀX per expert was collected (above max_expert_gram_bytes), or
 * NULL. */
const char         *qb_activation_stats_get_expert_note (QbActivationStats *stats);
/* Forward passes over chunks this computation ran (0 when all came from
 * the cache) and passes over the calibration set. */
guint               qb_activation_stats_get_n_forward (QbActivationStats *stats);
guint               qb_activation_stats_get_n_passes (QbActivationStats  *stats);
/* The cache folder of these statistics (NULL with no_cache). */
const char         *qb_activation_stats_get_cache_dir (QbActivationStats *stats);
/* The calibration set the statistics were measured on (owned by stats):
 * qb_calibration_to_record gives its experiment-store record. (transfer none) */
QbCalibration      *qb_activation_stats_get_calibration (QbActivationStats *stats);

/* Gives the job the importance matrix and XᵀX (stats must outlive the run). */
void                qb_activation_stats_attach       (QbActivationStats  *stats,
                                                      QbJob              *job,
                                                      gboolean            include_output);

/* Everything a run needs, from the texts: the model's tokenizer, the
 * calibration set, and the statistics the plan's methods need (XᵀX of the
 * tensors whose method needs it; plan NULL: importance only), measured on
 * the model's stored weights with n_threads (0: all cores).  Blocks: call
 * from a worker thread. (transfer full) */
QbActivationStats  *qb_activation_stats_compute_for_plan (QbModel                 *model,
                                                      QbPlan                     *plan,
                                                      const char * const         *paths,
                                                      const QbCalibrationOptions *calib_opts,
                                                      guint                       n_threads,
                                                      QbStatsProgressFunc         progress,
                                                      gpointer                    progress_data,
                                                      GCancellable               *cancellable,
                                                      GError                    **error);

/* Called once the calibration set is ready, before the first pass, with
 * the options the passes will use (to say what is about to run). */
typedef void (*QbStatsReadyFunc) (QbCalibration        *calib,
                                  const QbStatsOptions *opts,
                                  gpointer              data);

/* The same, with options to start from (base: NULL for the defaults; its
 * gram_tensors, cache_dir and no_cache are replaced by the plan's and
 * calib_opts'), and ready called before the passes; data goes to both
 * callbacks. (transfer full) */
QbActivationStats  *qb_activation_stats_compute_for_plan_full (QbModel              *model,
                                                      QbPlan                     *plan,
                                                      const char * const         *paths,
                                                      const QbCalibrationOptions *calib_opts,
                                                      const QbStatsOptions       *base,
                                                      guint                       n_threads,
                                                      QbStatsReadyFunc            ready,
                                                      QbStatsProgressFunc         progress,
                                                      gpointer                    data,
                                                      GCancellable               *cancellable,
                                                      GError                    **error);

/* Tensors whose resolved method needs XᵀX under the plan (NULL-terminated;
 * empty when none), for QbStatsOptions.gram_tensors. (transfer full) */
GStrv               qb_activation_stats_gram_tensors (QbPlan             *plan,
                                                      QbModel            *model,
                                                      GError            **error);
/* Bytes of XᵀX for these tensors' distinct inputs (n² · 8 each, times
 * the experts for an expert tensor's input); the largest single XᵀX in
 * *largest and the per-expert ones' share in *experts (either may be
 * NULL). */
guint64             qb_activation_stats_gram_bytes   (QbModel            *model,
                                                      const char * const *tensors,
                                                      guint64            *largest,
                                                      guint64            *experts);

G_END_DECLS
