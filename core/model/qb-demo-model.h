/* SPDX-License-Identifier: MIT */
/* qb-demo-model.h — a built-in generator of decoder GGUF models (LLaMA by
 * default; any family of qb-family.h) with realistic-looking weights, for
 * first runs, tests and benchmarks.
 *
 * The weights are random but shaped like trained ones: heavy-tailed values
 * (a Gaussian-like core mixed with a wide Laplace tail), a few outlier
 * input channels shared across layers (as trained transformers have in
 * their hidden dimension), per-layer scale variation, RMS-norm weights
 * near 1.  A SentencePiece-style vocabulary with byte fallback makes the
 * file loadable by llama.cpp (which will produce gibberish with it).
 *
 * Other families get their own tensors (Qwen2 biases, Q/K norms, Gemma's
 * post-norms, Phi-3's fused attn_qkv and gate-up ffn_up, no output matrix
 * where the family ties it) and the metadata llama.cpp reads for that
 * architecture.  A tensor's values depend on its role and layer, not on
 * the family: two families of the same size and seed share every tensor
 * they both have (a qwen3 model is a qwen2 model's weights plus Q/K norms
 * minus the biases).  Their output logits are scaled to a spread of about
 * 3 nats, so that perplexity reacts to any error in the pass; Gemma 2's
 * soft-caps (attention 4, output 15) and the sliding window (n_ctx / 8)
 * are set so they act at short contexts.
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
  const char *arch;      /* a family of qb-family.h; NULL: "llama" */
  guint       n_layer;   /* 0: as the size and family choose */
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
} QbDemoModelDims;

/* The tiny default: F16, seed 1. */
void      qb_demo_model_spec_init     (QbDemoModelSpec        *spec);
/* Dimensions for a target parameter count (0: the tiny default).  Every
 * matrix row is a multiple of 256 values, so every ggml format applies. */
void      qb_demo_model_choose_dims   (gint64                  n_params,
                                       QbDemoModelDims        *dims);
/* The same for a family (NULL: llama).  Gemma 2 always has 26 layers
 * (llama.cpp's snapshot runs only its 26/42/46-layer sizes), Gemma 3 at
 * least 6 (one global layer in six). */
void      qb_demo_model_choose_dims_for (const char           *arch,
                                       gint64                  n_params,
                                       QbDemoModelDims        *dims);
/* The families the generator writes (qb-family.h's table). */
gboolean  qb_demo_model_arch_known    (const char             *arch);
gint64    qb_demo_model_count_params  (const QbDemoModelDims  *dims);
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
