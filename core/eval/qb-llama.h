/* SPDX-License-Identifier: MIT */
/* qb-llama.h — the forward pass of LLaMA-family decoders (LLaMA 1/2/3,
 * Mistral, Qwen2, Qwen3, Gemma 2/3, Phi-3, SmolLM, TinyLlama; mixtures of
 * experts: Mixtral, Qwen2/3-MoE, DeepSeek-V2/V3 with its multi-head latent
 * attention), for evaluation and calibration.  What sets the families apart (Q/K norms,
 * post-norms, soft-capping, sliding windows, GeGLU, fused projections) is
 * the data of qb-family.h; this one pass reads it.
 *
 * A whole chunk of tokens goes through each layer at once: token embedding,
 * then per layer RMSNorm, Q/K/V projections (with Qwen2's biases when the
 * model has them), RoPE, grouped-query attention with a causal mask, the
 * output projection, RMSNorm, and the SwiGLU MLP; a final RMSNorm and the
 * output matrix (or the tied embedding) give the logits.
 *
 * Every weight is read in the form it is evaluated in: the model's own
 * stored type (a Q4_K GGUF is run as Q4_K), or bytes in any Quantbench
 * format handed over with qb_llama_set_weight() / qb_llama_use_job(), so
 * the evaluated model is exactly the quantized one.  Weights are
 * dequantized to float32 just before their matrix product, a block of rows
 * at a time on each worker thread (or a whole matrix, see QbDequantMode),
 * and multiplied with OpenBLAS sgemm.  Memory: the activations of one chunk
 * plus one block of dequantized rows (2 MiB) per thread; nothing grows with
 * the number of layers, and no float copy of a weight is kept.  For a
 * LLaMA-2-7B-shaped model and a 512-token chunk that is about 98 MB,
 * plus the caller's logits (33 MB for the 256
 * scored positions × 32000); QB_DEQUANT_MATRIX adds the largest matrix in
 * float32 (the 32000 × 4096 output: 524 MB).
 *
 * RoPE: GGUF LLaMA/Mistral files hold Q and K rows in the interleaved-pair
 * layout (convert_hf_to_gguf.py permutes them); Hugging Face checkpoints
 * and Qwen2 keep the rotate-half layout.  Rotating pairs (i, i + d/2) of
 * the unpermuted rows is the same computation as permuting the rows on load
 * and rotating (2i, 2i + 1), so safetensors models run unpermuted with the
 * half-split rotation (QB_ROPE_NEOX) instead of copying the weights.
 *
 * Calibration hook: an activation function sees the input of every linear
 * layer (rows × columns floats, one row per token) just before it is
 * multiplied, named by the weight tensor; Q, K and V share one input
 * buffer (and gate/up another), passed once per weight.
 *
 * A QbLlama is used from one thread at a time; it drives its own workers.
 * OpenBLAS's thread count is process-wide: a forward pass sets it (to 1 in
 * the default mode, where the workers are the parallelism) and restores it.
 */
#pragma once

#include <gio/gio.h>

#include "qb-family.h"
#include "qb-format.h"
#include "qb-job.h"
#include "qb-model.h"
#include "qb-workers.h"

G_BEGIN_DECLS

#define QB_LLAMA_ERROR (qb_llama_error_quark ())
GQuark qb_llama_error_quark (void);

typedef enum {
  QB_LLAMA_ERROR_UNSUPPORTED,   /* not a LLaMA-family decoder */
  QB_LLAMA_ERROR_INVALID,       /* missing tensor, wrong shape, bad hyper-parameter */
  QB_LLAMA_ERROR_INPUT,         /* bad tokens or lengths passed in */
} QbLlamaError;


typedef enum {
  QB_MOE_GATING_SOFTMAX,   /* probabilities: softmax over all experts */
  QB_MOE_GATING_SIGMOID,   /* each expert's sigmoid (DeepSeek-V3) */
} QbMoeGating;

typedef struct {
  guint        n_layer;
  guint        n_embd;
  guint        n_head;
  guint        n_head_kv;
  guint        head_dim;
  guint        n_ff;
  guint        n_vocab;
  guint        n_ctx_train;
  guint        n_rot;          /* rotated dimensions of each head */
  float        rms_eps;
  float        rope_base;
  float        rope_freq_scale; /* positions are multiplied by this (linear scaling) */
  /* LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini): above n_ctx_orig tokens
   * the long frequency divisors replace the short ones, and cos/sin are
   * scaled by rope_attn_factor (1 otherwise). */
  guint        n_ctx_orig;
  float        rope_attn_factor;
  /* YaRN (DeepSeek-V2/V3's long context, ggml's rope_yarn): rope_yarn 1,
   * each pair's frequency a blend of the interpolated one (×
   * rope_freq_scale) and the original, by a ramp between pairs
   * rope_yarn_corr[0] and [1] (from n_ctx_orig); 0: no YaRN.  The
   * attention scale carries YaRN's mscale², cos/sin are not scaled. */
  float        rope_yarn;
  float        rope_yarn_corr[2];
  QbRopeStyle  rope_style;
  gboolean     qkv_bias;
  gboolean     tied_output;    /* output matrix is token_embd */
  const QbFamily *family;      /* the family's optional pieces (qb-family.h) */
  float        attn_scale;     /* Q·K is multiplied by this (1/sqrt(head_dim) for most) */
  float        attn_softcap;   /* attention scores → cap·tanh(s/cap); 0: none */
  float        final_softcap;  /* the same for the output logits */
  guint        swa_window;     /* keys a sliding layer sees (itself included); 0: none */
  guint        swa_period;     /* QB_SWA_PERIOD's period */
  float        rope_base_local; /* RoPE base of sliding layers */
  /* Mixtures of experts (n_expert 0: a dense FFN).  Each token goes
   * through the n_expert_used experts of highest router probability
   * (softmax over all experts), weighted by those probabilities,
   * renormalised to sum 1 when moe_norm_topk (Mixtral, Qwen3-MoE; not
   * Qwen2-MoE), plus the shared expert (n_ff_shexp > 0) scaled by the
   * sigmoid of its gate. */
  guint        n_expert;
  guint        n_expert_used;
  guint        n_ff_exp;
  guint        n_ff_shexp;
  gboolean     moe_norm_topk;
  /* DeepSeek's routing (other mixtures: softmax, no bias, scale 1, one
   * group, no dense layers): the first n_layer_dense_lead layers have a
   * dense FFN; experts are chosen by probability plus the layer's
   * selection bias (exp_probs_b) when it has one, among the topk_group
   * groups (of n_expert / n_group consecutive experts) whose best
   * group_top biased scores sum highest; weighted by their unbiased
   * probabilities (renormalised when moe_norm_topk) times
   * expert_weights_scale. */
  QbMoeGating  moe_gating;
  float        expert_weights_scale;
  guint        n_layer_dense_lead;
  guint        n_group;
  guint        topk_group;
  guint        group_top;
  /* Multi-head latent attention (kv_lora_rank > 0, DeepSeek): head_dim
   * is each head's K size (the n_rot RoPE values last), head_dim_v its V
   * size (head_dim elsewhere); Q through a rank q_lora_rank pair when
   * that is not 0. */
  guint        head_dim_v;
  guint        q_lora_rank;
  guint        kv_lora_rank;
} QbLlamaParams;

typedef enum {
  QB_DEQUANT_ROWS,     /* each worker dequantizes a block of rows and multiplies it (default) */
  QB_DEQUANT_MATRIX,   /* workers dequantize the whole matrix, then one multi-threaded sgemm */
} QbDequantMode;

/* Sees x (n_rows × n_cols floats, row-major, one row per token) before it
 * is multiplied by the weight tensor `weight_index` of the model.  Runs on
 * the thread that called qb_llama_forward; x is valid during the call. */
typedef void (*QbActivationFunc) (const char  *weight_name,
                                  guint        weight_index,
                                  const float *x,
                                  gint64       n_rows,
                                  gint64       n_cols,
                                  gpointer     user_data);

typedef struct _QbLlama QbLlama;

/* Checks the architecture, every tensor's presence and shape, and reads
 * the norms.  Keeps a reference on model. (transfer full) */
QbLlama             *qb_llama_new               (QbModel        *model,
                                                 GError        **error);
void                 qb_llama_free              (QbLlama        *llama);
const QbLlamaParams *qb_llama_get_params        (QbLlama        *llama);
/* (transfer none) */
QbModel             *qb_llama_get_model         (QbLlama        *llama);

/* 0: one per CPU. */
void                 qb_llama_set_threads       (QbLlama        *llama,
                                                 guint           n_threads);
guint                qb_llama_get_threads       (QbLlama        *llama);
/* The workers the forward pass runs on, for the caller's own parallel
 * work between passes (scoring a chunk's logits). (transfer none) */
QbWorkers           *qb_llama_get_workers       (QbLlama        *llama);
void                 qb_llama_set_dequant_mode  (QbLlama        *llama,
                                                 QbDequantMode   mode);

/* Runs the tensor as these bytes (the layout qb_job_get_tensor_data gives:
 * rows of the format's row bytes, then the per-tensor scale of per-tensor
 * formats), dequantized with params (format and tensor_absmax, as
 * qb_job_get_dequant_params gives them).  The size is checked.  bytes NULL:
 * back to the stored values. */
gboolean             qb_llama_set_weight        (QbLlama        *llama,
                                                 guint           tensor_index,
                                                 GBytes         *bytes,
                                                 const QbQuantParams *params,
                                                 GError        **error);
/* Takes every tensor a job quantized (run with keep_data), with its
 * dequantization parameters; the tensors the plan kept stay in their stored
 * type.  Fails, naming the tensor, when one the plan quantizes has no data
 * (the job was cancelled or ran without keep_data).  *n_taken (may be
 * NULL): the tensors taken. */
gboolean             qb_llama_use_job           (QbLlama        *llama,
                                                 QbJob          *job,
                                                 guint          *n_taken,
                                                 GError        **error);
/* The format a tensor is evaluated in: NULL when it runs in its stored type. */
const QbFormat      *qb_llama_get_weight_format (QbLlama        *llama,
                                                 guint           tensor_index);

/* Rounds the input of every matrix product as llama.cpp's CPU kernels do
 * before multiplying it by the weight (ggml's vec_dot_type): to blocks of
 * 32 8-bit values for Q4_0..Q8_0 and IQ4_NL weights, of 256 for K- and
 * i-quants, to half precision for F16 weights (and for formats llama.cpp
 * lacks, which are exported as F16).  Off by default: Quantbench measures
 * what the weights do; on, its perplexity reproduces llama-perplexity's
 * on the exported file (the activation rounding alone moves a sensitive
 * model's perplexity by a percent). */
void                 qb_llama_set_ggml_activations (QbLlama     *llama,
                                                 gboolean        on);

void                 qb_llama_set_activation_func (QbLlama      *llama,
                                                 QbActivationFunc func,
                                                 gpointer        user_data);
/* During an activation callback for a 3-D expert tensor: the expert whose
 * tokens x holds (only the tokens routed to it); -1 for other tensors. */
int                  qb_llama_get_activation_expert (QbLlama    *llama);

/* Activation statistics gathered by the pass on the selected device,
 * where they stay until read: calibration without a hook, whose inputs
 * would otherwise come back to the host for every product of every chunk
 * (qb-llama-accum.c).  Per distinct input of the linear layers: Σ x² per
 * column (when sums) and the rows, in double, and XᵀX (double, upper
 * triangle, through CLBlast's DSYRK) for the inputs gram asks for.
 * input_of gives for each tensor of the model the input it reads
 * (0..n_inputs-1) or -1; tensors sharing an input (Q, K, V) count it once
 * per pass, as the activation hook's users do.  While statistics are set,
 * a pass runs on the device or fails (QB_DEVICE_ERROR: the caller goes
 * back to the hook on the CPU), never silently on the CPU; it stops after
 * layer last_layer, and runs the output matrix only when output is set. */
typedef struct {
  guint           n_inputs;
  const gint     *input_of;    /* n_tensors entries */
  const gint64   *n_cols;      /* n_inputs */
  const gboolean *gram;        /* n_inputs */
  gboolean        sums;
  guint           last_layer;
  gboolean        output;
} QbLlamaStatsSpec;

/* FALSE (error set) when no device is selected (QB_DEVICE_ERROR_NOT_FOUND)
 * or it cannot hold them (no fp64, not enough memory, a build failure). */
gboolean             qb_llama_stats_begin       (QbLlama        *llama,
                                                 const QbLlamaStatsSpec *spec,
                                                 GError        **error);
/* Reads input's statistics back: sum2 (n_cols, may be NULL), gram (n_cols²,
 * may be NULL: the upper triangle is written), rows. */
gboolean             qb_llama_stats_read        (QbLlama        *llama,
                                                 guint           input,
                                                 double         *sum2,
                                                 double         *gram,
                                                 guint64        *rows,
                                                 GError        **error);
/* Frees the device's statistics; passes run as usual again. */
void                 qb_llama_stats_end         (QbLlama        *llama);

/* Called with units of the pass done of total, on the calling thread:
 * after each layer (the output matrix counts as one) and, at long contexts
 * — where attention, quadratic, is most of the pass and runs in several
 * slabs — also within a layer, after its first products and each slab.
 * done/total is the fraction. */
typedef void (*QbLlamaProgressFunc) (guint done, guint total, gpointer user_data);

/* Evaluates tokens[0..n_tokens) at positions 0..n_tokens-1 from an empty
 * context and writes the logits of positions first_output..n_tokens-1
 * into logits ((n_tokens - first_output) × n_vocab floats).  Cancelling
 * stops at the next unit of progress (within a layer) with
 * G_IO_ERROR_CANCELLED. */
gboolean             qb_llama_forward           (QbLlama        *llama,
                                                 const gint32   *tokens,
                                                 guint           n_tokens,
                                                 guint           first_output,
                                                 float          *logits,
                                                 QbLlamaProgressFunc progress,
                                                 gpointer        progress_data,
                                                 GCancellable   *cancellable,
                                                 GError        **error);

/* Resuming a pass part-way, for measuring one changed weight without
 * running the layers before it (the sensitivity study).  The residual
 * stream entering layer L is n_tokens × n_embd floats; layer n_layer
 * means the input of the final norm.
 *
 * qb_llama_forward_keep: qb_llama_forward that also copies the stream
 * entering every layer into hidden ((n_layer + 1) × n_tokens × n_embd
 * floats, layer by layer).  qb_llama_forward_from: runs layers
 * first_layer.. from such a stream (hidden: the stream entering
 * first_layer) and writes logits as qb_llama_forward does; with the same
 * weights it gives the same logits as the whole pass. */
gboolean             qb_llama_forward_keep      (QbLlama        *llama,
                                                 const gint32   *tokens,
                                                 guint           n_tokens,
                                                 guint           first_output,
                                                 float          *logits,
                                                 float          *hidden,
                                                 GCancellable   *cancellable,
                                                 GError        **error);
gboolean             qb_llama_forward_from      (QbLlama        *llama,
                                                 guint           first_layer,
                                                 const float    *hidden,
                                                 guint           n_tokens,
                                                 guint           first_output,
                                                 float          *logits,
                                                 GCancellable   *cancellable,
                                                 GError        **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbLlama, qb_llama_free)

G_END_DECLS
