/* SPDX-License-Identifier: MIT */
/* qb-test-model.h — synthetic models for the engine tests, written as GGUF
 * through the project's own writer. */
#pragma once

#include <glib.h>

#include "qb-dtype.h"
#include "qb-model.h"

G_BEGIN_DECLS

typedef struct {
  guint    n_layer;
  guint    n_embd;
  guint    n_ff;
  guint    n_vocab;
  guint    n_head;
  guint    n_head_kv;
  gboolean tied;        /* no output.weight */
  QbDType  dtype;       /* of the matrices (F32 or F16); norms are F32 */
  guint32  seed;
} QbTestLlama;

/* Writes a LLaMA-shaped model (token_embd, per layer attn_norm, attn_q/k/v,
 * attn_output, ffn_norm, ffn_gate/up/down, then output_norm and output)
 * with Gaussian weights (std 0.02, a few outliers) to dir/name and
 * returns its path. */
char  *qb_test_write_llama (const char *dir, const char *name, const QbTestLlama *spec);

/* A model of spec written to a fresh temporary folder and opened: the
 * fixture of tests that quantize a whole model. */
typedef struct {
  char    *dir;
  char    *path;
  QbModel *model;
} QbTestModelFixture;

void   qb_test_model_fixture_open  (QbTestModelFixture *f, const QbTestLlama *spec);
void   qb_test_model_fixture_close (QbTestModelFixture *f);

/* Sets value `index` of an F32 or F16 tensor of the model file at path to
 * value (NaN, an infinity...), in place: the damaged download the
 * non-finite tests need. */
void   qb_test_poison_tensor (const char *path, const char *tensor, gint64 index, float value);

/* A safetensors file of F32 tensors, written in the order added: shapes
 * as Hugging Face gives them (outermost first, [rows, cols] for a
 * matrix). */
typedef struct _QbTestSafetensors QbTestSafetensors;

QbTestSafetensors *qb_test_safetensors_new   (void);
void               qb_test_safetensors_add   (QbTestSafetensors *st, const char *name,
                                              guint n_dims, const gint64 *shape,
                                              const float *values);
/* Writes path and frees st. */
void               qb_test_safetensors_write (QbTestSafetensors *st, const char *path);

/* Activation statistics of llama (2 threads) over n_chunks chunks of
 * n_ctx deterministic tokens (3..502), without the cache. (transfer full) */
struct _QbLlama;
struct _QbActivationStats;
struct _QbActivationStats *qb_test_activation_stats (struct _QbLlama *llama, guint n_ctx,
                                                     guint n_chunks);

/* Deterministic Gaussian values (Box-Muller over a 64-bit LCG). */
void   qb_test_gaussian    (guint64 *state, float *x, gsize n, float std);

G_END_DECLS
