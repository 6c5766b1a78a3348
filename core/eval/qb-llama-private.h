/* SPDX-License-Identifier: MIT */
/* qb-llama-private.h — the runtime's insides, shared by loading
 * (qb-llama.c) and the forward pass (qb-llama-forward.c). */
#pragma once

#include "qb-llama.h"
#include "qb-workers.h"

G_BEGIN_DECLS

/* One weight tensor as the forward pass reads it. */
typedef struct {
  const QbTensor *t;          /* NULL: the model has no such tensor */
  guint           index;      /* in the model */
  gint64          n_cols;     /* ne[0] */
  gint64          n_rows;
  /* A fused tensor (Phi-3's attn_qkv, ffn_up) or one expert of a 3-D
   * expert tensor is read as views of its rows: this one starts at row0
   * of the tensor. */
  gint64          row0;
  /* Engine bytes, when set: rows of row_bytes in format (then a per-tensor
   * tail), dequantized with params. */
  const QbFormat *format;
  GBytes         *bytes;
  guint64         row_bytes;
  QbQuantParams   params;
  /* Stored F32 rows that can be read in place (no copy). */
  const float    *f32;
} QbWeight;

/* A 1-D weight (norm, bias) kept as floats, refreshed when it changes. */
typedef struct {
  QbWeight  w;
  float    *values;
  float     offset;   /* added to every value: Gemma's Hugging Face norms store w − 1 */
} QbVector;

typedef struct {
  QbVector attn_norm, ffn_norm;
  QbVector bq, bk, bv;        /* Qwen2; absent otherwise */
  QbVector q_norm, k_norm;    /* Qwen3, Gemma 3: head_dim values */
  QbVector attn_post_norm, ffn_post_norm;   /* Gemma 2/3 */
  QbWeight wq, wk, wv, wo;
  QbWeight gate, up, down;
  /* A mixture of experts instead of gate/up/down: the router, the experts
   * (3-D: n_ff_exp rows per expert), the shared expert and its gate. */
  QbWeight gate_inp, gate_exps, up_exps, down_exps;
  QbWeight gate_shexp, up_shexp, down_shexp;
  QbVector gate_inp_shexp;
  QbVector exp_probs_b;       /* DeepSeek-V3's selection bias, or absent */
  /* Multi-head latent attention (DeepSeek): wq, or wq_a → q_a_norm → wq_b;
   * wkv_a → kv_a_norm → wkv_b; wk and wv absent. */
  QbWeight wq_a, wq_b, wkv_a, wkv_b;
  QbVector q_a_norm, kv_a_norm;
  gboolean dense;             /* a leading dense layer of a mixture (DeepSeek) */
  /* A Hugging Face checkpoint's experts, one matrix each: QB_EXPERT_* ×
   * n_expert weights read where they lie (gate_exps etc. then absent);
   * NULL for GGUF's 3-D tensors. */
  QbWeight *expert_mats;
  gboolean sliding;           /* attends to the last swa_window tokens only */
} QbLayer;

typedef enum { QB_EXPERT_GATE, QB_EXPERT_UP, QB_EXPERT_DOWN, QB_EXPERT_N_MATS } QbExpertMat;

/* Expert e's gate, up or down matrix: its own tensor, or its rows of the
 * 3-D tensor. */
QbWeight qb_layer_expert (const QbLayer *l, QbExpertMat which, guint e, guint n_expert);

/* Every matrix and vector of a layer, for walking them alike; absent ones
 * have t NULL. */
#define QB_LAYER_MATRICES(l) { &(l)->wq, &(l)->wk, &(l)->wv, &(l)->wo, &(l)->gate, &(l)->up, \
    &(l)->down, &(l)->gate_inp, &(l)->gate_exps, &(l)->up_exps, &(l)->down_exps, \
    &(l)->gate_shexp, &(l)->up_shexp, &(l)->down_shexp, &(l)->wq_a, &(l)->wq_b, &(l)->wkv_a, \
    &(l)->wkv_b }
#define QB_LAYER_VECTORS(l)  { &(l)->attn_norm, &(l)->ffn_norm, &(l)->bq, &(l)->bk, &(l)->bv, \
    &(l)->q_norm, &(l)->k_norm, &(l)->attn_post_norm, &(l)->ffn_post_norm, &(l)->gate_inp_shexp, \
    &(l)->exp_probs_b, &(l)->q_a_norm, &(l)->kv_a_norm }

#define QB_MOE_MAX_GROUPS 64   /* group-limited routing: most groups a model may have */

/* Buffers of one forward pass, kept between calls and grown on demand. */
typedef struct {
  guint   n_tokens;            /* capacity in tokens */
  float  *x, *xn, *q, *k, *v, *att, *gate, *up;
  float  *rope;                /* n_tokens × n_rot: cos, sin per pair */
  /* Mixtures of experts: router logits (n_tokens × n_expert), the chosen
   * experts and their weights (n_tokens × n_expert_used), one expert's
   * tokens gathered, its output, the layer's FFN output, the shared
   * expert's gate. */
  float  *moe_logits, *moe_weight, *moe_x, *moe_y, *moe_out, *moe_shgate;
  gint32 *moe_expert, *moe_tokens;
  float  *moe_token_weight;
  float  *moe_select;          /* n_expert: one token's biased, group-masked scores */
  float  *mla_qa, *mla_kva, *mla_kv;  /* multi-head latent attention's intermediates */
  gint32 *moe_offsets;         /* n_expert + 1: each expert's share of moe_tokens */
  float  *rope_local;          /* the same for sliding layers with their own base, or NULL */
  float **thread_buf;          /* per thread: dequantized rows */
  gsize   thread_buf_floats;
  float **thread_scores;       /* per thread: attention scores of a query block */
  gsize   thread_scores_floats;
  float  *matrix;              /* QB_DEQUANT_MATRIX: one whole matrix */
  gsize   matrix_floats;
  guint   n_threads;
} QbScratch;

typedef struct _QbLlamaDevice QbLlamaDevice;   /* qb-llama-device-private.h */
typedef struct _QbLlamaScoring QbLlamaScoring; /* qb-llama-device-private.h */
typedef struct _QbLlamaAccum QbLlamaAccum;     /* qb-llama-accum-private.h */

struct _QbLlama {
  QbModel          *model;
  QbLlamaParams     p;
  QbWeight          tok_embd;
  QbWeight          output;     /* a copy of tok_embd's description when tied */
  QbVector          output_norm;
  float            *rope_factors;   /* n_rot / 2 frequency divisors, or NULL */
  float            *rope_factors_long; /* LongRoPE's above p.n_ctx_orig tokens, or NULL */
  QbLayer          *layers;

  guint             n_threads;
  QbWorkers        *workers;
  QbDequantMode     mode;
  gboolean          ggml_activations;   /* qb_llama_set_ggml_activations */
  QbActivationFunc  act_func;
  gpointer          act_data;
  int               act_expert; /* the expert act_func is seeing the tokens of, or -1 */
  QbScratch         s;
  QbLlamaDevice    *device;     /* weights on the default device, or NULL */
  QbLlamaScoring   *scoring;    /* set around a pass by qb-eval.c, else NULL */
  QbLlamaAccum     *accum;      /* activation statistics on the device, or NULL */
  gboolean          device_told; /* said once why the device declined this model */
  gboolean          family_override;  /* qb_llama_new_as: unused tensors are ignored */
  /* YaRN while loading: its betas (the correction range) and DeepSeek's
   * attention mscale, attn_factor · (1 + log_mul · ln (1 / freq_scale)). */
  float             yarn_beta_fast, yarn_beta_slow, yarn_log_mul, yarn_attn;
};

/* Rows [row, row + n) of w as floats: a pointer into the weight when it can
 * be read in place, else dequantized into buf (n × n_cols floats). */
const float *qb_weight_rows     (QbLlama        *llama,
                                 const QbWeight *w,
                                 gint64          row,
                                 gint64          n,
                                 float          *buf,
                                 GError        **error);

void         qb_scratch_clear   (QbScratch      *s);

/* Routes T tokens: probs (T × n_expert router logits) become the gating
 * probabilities; experts and weights (T × n_expert_used) receive each
 * token's choice, best first (ties to the lower index), as
 * QbLlamaParams describes.  bias: n_expert values or NULL; select:
 * n_expert floats of scratch. */
void         qb_moe_route       (const QbLlamaParams *p,
                                 const float    *bias,
                                 float          *probs,
                                 guint           T,
                                 gint32         *experts,
                                 float          *weights,
                                 float          *select);

/* qb_llama_new running the model as another family's pass, whatever its
 * architecture says; tensors that family does not use are ignored.  For
 * tests: a family with one piece switched off. */
QbLlama     *qb_llama_new_as    (QbModel        *model,
                                 const QbFamily *family,
                                 GError        **error);

G_END_DECLS
