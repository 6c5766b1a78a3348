/* SPDX-License-Identifier: MIT */
/* qb-demo-model.h — a built-in generator of LLaMA-architecture GGUF models
 * with realistic-looking weights, for first runs, tests and benchmarks.
 *
 * The weights are random but shaped like trained ones: heavy-tailed values
 * (a Gaussian-like core mixed with a wide Laplace tail), a few outlier
 * input channels shared across layers (as trained transformers have in
 * their hidden dimension), per-layer scale variation, RMS-norm weights
 * near 1.  A SentencePiece-style vocabulary with byte fallback makes the
 * file loadable by llama.cpp (which will produce gibberish with it).
 *
 * Everything is a pure function of the spec: the same seed gives the same
 * bytes, whatever the thread count.  Tensors are generated in row chunks
 * and streamed into the file, so memory stays small at any size.
 */
#pragma once

#include <gio/gio.h>

#include "qb-dtype.h"
#include "qb-workers.h"

G_BEGIN_DECLS

/* Bumped whenever the generator's output changes (cache file names use it). */
#define QB_DEMO_MODEL_VERSION 1

typedef struct {
  gint64      n_params;  /* target size; 0 for the tiny default (~3.4M) */
  QbDType     dtype;     /* QB_DTYPE_F16 or QB_DTYPE_F32 for the matrices (norms are F32) */
  guint64     seed;
  /* The family: NULL or "llama" (dense), or a mixture of experts as
   * llama.cpp lays it out (one 3-D tensor per layer and projection):
   * "mixtral" (general.architecture "llama" with experts: softmax router,
   * top-k renormalised), "qwen2moe" (Q/K/V biases, a shared expert with a
   * sigmoid gate, top-k not renormalised), "qwen3moe" (QK-norm, top-k
   * renormalised, no shared expert); or a dense family of qb-family.h
   * ("mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3") with its
   * own tensors (Qwen2 biases, Q/K norms, Gemma's post-norms, Phi-3's
   * fused attn_qkv and gate-up ffn_up, no output matrix where the family
   * ties it) and the metadata llama.cpp reads for it.  In those dense
   * families a tensor's values depend on its role and layer only, so two
   * families of one size and seed share every tensor they both have; their
   * logits spread over about 3 nats (perplexity reacts to any error), and
   * Gemma 2's caps (attention 4, output 15) and the sliding window
   * (n_ctx / 8) act at short contexts. */
  const char *arch;
  guint       n_layer;   /* 0: from n_params */
  guint       n_expert;  /* 0: the family's default (8) */
  guint       n_expert_used;  /* 0: the family's default (2) */
  /* Phi-3 only: LongRoPE as Phi-3 128k / Phi-3.5 carry it after
   * convert_hf_to_gguf — rope_factors_short/long tensors, an original
   * context of n_ctx / 8 (so an evaluation longer than that takes the
   * long factors) and the attention factor derived from the extension. */
  gboolean    longrope;
  /* deepseek2 only (multi-head latent attention with a low-rank Q, one
   * leading dense layer, then experts with one shared expert): V3-style
   * routing — sigmoid gating with a selection bias (exp_probs_b), top-k
   * renormalised, weights × 2.5 — instead of V2's softmax (not
   * renormalised, × 1); and group-limited routing when n_group > 1
   * (expert_group_count, expert_group_used_count: later llama.cpp's keys,
   * which its Feb-2025 snapshot ignores). */
  gboolean    sigmoid;
  guint       n_group;
  guint       topk_group;
  /* deepseek2 only: YaRN RoPE scaling as DeepSeek-V2/V3 carry it (factor
   * 4 over an original context of n_ctx / 4, log multiplier 0.0707). */
  gboolean    yarn;
} QbDemoModelSpec;

typedef struct {
  guint n_layer;
  guint n_embd;
  guint n_ff;
  guint n_head;
  guint n_head_kv;
  guint n_vocab;
  guint n_ctx;
  gboolean tied;         /* no output matrix (Gemma) */
  /* Mixtures of experts; 0 for a dense model. */
  guint n_expert;
  guint n_expert_used;
  guint n_ff_exp;        /* an expert's FFN width */
  guint n_ff_shexp;      /* the shared expert's; 0: none */
  /* DeepSeek's multi-head latent attention and leading dense layers; 0
   * elsewhere. */
  guint q_lora_rank;
  guint kv_lora_rank;
  guint head_k;          /* K head size: head_nope + n_rot */
  guint head_v;
  guint n_rot;
  guint n_dense_lead;
} QbDemoModelDims;

/* The tiny default: F16, seed 1. */
void      qb_demo_model_spec_init     (QbDemoModelSpec        *spec);
/* Dimensions for a target parameter count (0: the tiny default).  Every
 * matrix row is a multiple of 256 values, so every ggml format applies. */
void      qb_demo_model_choose_dims   (gint64                  n_params,
                                       QbDemoModelDims        *dims);
/* The same for a dense family of qb-family.h (NULL: llama).  Gemma 2
 * always has 26 layers (llama.cpp's snapshot runs only its 26/42/46-layer
 * sizes), Gemma 3 at least 6 (one global layer in six). */
void      qb_demo_model_choose_dims_for (const char           *arch,
                                       gint64                  n_params,
                                       QbDemoModelDims        *dims);
gint64    qb_demo_model_count_params  (const QbDemoModelDims  *dims);
/* The dimensions the spec's model gets: its size, family and overrides. */
void      qb_demo_model_spec_dims     (const QbDemoModelSpec  *spec,
                                       QbDemoModelDims        *dims);
/* TRUE for the families qb_demo_model_write() knows. */
gboolean  qb_demo_model_arch_known    (const char             *arch);
/* "370M", "1B", "1.5B", "500K", "5000000"; FALSE when not a size. */
gboolean  qb_demo_model_parse_size    (const char             *text,
                                       gint64                 *n_params);

/* Writes the model to path atomically.  workers may be NULL (one thread
 * per CPU is used). */
gboolean  qb_demo_model_write         (const QbDemoModelSpec  *spec,
                                       const char             *path,
                                       QbWorkers              *workers,
                                       GCancellable           *cancellable,
                                       GError                **error);

/* The tiny default model in the user's cache folder
 * ($XDG_CACHE_HOME/quantbench/), generated on first use (a fraction of a
 * second, most of it fsync: call it off the UI thread).  Concurrent first
 * uses each write their own temporary file; the last rename wins. (transfer full) */
char     *qb_demo_model_get_default   (GCancellable           *cancellable,
                                       GError                **error);

G_END_DECLS
