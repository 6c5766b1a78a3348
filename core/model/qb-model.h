/* SPDX-License-Identifier: MIT */
/* qb-model.h — a model file (GGUF, or safetensors single/sharded), memory
 * mapped, with its architecture facts and tensor list.
 *
 * Shapes use ggml's order everywhere: ne[0] is the length of one row (the
 * input dimension of a linear layer), ne[1] the number of rows (output
 * channels).  safetensors shapes [out, in] are reversed on load.
 */
#pragma once

#include <gio/gio.h>

#include "qb-dtype.h"
#include "qb-gguf.h"

G_BEGIN_DECLS

#define QB_MODEL_ERROR (qb_model_error_quark ())
GQuark qb_model_error_quark (void);

typedef enum {
  QB_MODEL_ERROR_FORMAT,       /* not a model file Quantbench knows */
  QB_MODEL_ERROR_INVALID,      /* damaged or inconsistent */
  QB_MODEL_ERROR_UNREADABLE,   /* a tensor type Quantbench cannot convert */
  QB_MODEL_ERROR_IO,
} QbModelError;

typedef enum {
  QB_MODEL_FILE_GGUF,
  QB_MODEL_FILE_SAFETENSORS,
} QbModelFileKind;

/* What a tensor does, parsed from its name (GGUF or Hugging Face style). */
typedef enum {
  QB_ROLE_OTHER,
  QB_ROLE_TOKEN_EMBD,
  QB_ROLE_OUTPUT,          /* lm_head */
  QB_ROLE_OUTPUT_NORM,
  QB_ROLE_ATTN_NORM,
  QB_ROLE_ATTN_Q,
  QB_ROLE_ATTN_K,
  QB_ROLE_ATTN_V,
  QB_ROLE_ATTN_QKV,
  QB_ROLE_ATTN_OUTPUT,
  QB_ROLE_FFN_NORM,
  QB_ROLE_FFN_GATE,
  QB_ROLE_FFN_UP,
  QB_ROLE_FFN_DOWN,
  QB_ROLE_ROPE_FREQS,
  QB_ROLE_ATTN_Q_NORM,     /* per-head RMSNorm of Q (Qwen3, Gemma 3) */
  QB_ROLE_ATTN_K_NORM,
  QB_ROLE_ATTN_POST_NORM,  /* norm of the attention output before the residual (Gemma 2/3) */
  QB_ROLE_FFN_POST_NORM,   /* norm of the FFN output before the residual (Gemma 2/3) */
  /* Mixtures of experts: the router, the routed experts (GGUF: one 3-D
   * tensor per layer, ne = [in, out, n_expert]; safetensors: one matrix
   * per expert), the shared expert and its gate (Qwen-MoE). */
  QB_ROLE_FFN_GATE_INP,
  QB_ROLE_FFN_GATE_EXPS,
  QB_ROLE_FFN_UP_EXPS,
  QB_ROLE_FFN_DOWN_EXPS,
  QB_ROLE_FFN_GATE_SHEXP,
  QB_ROLE_FFN_UP_SHEXP,
  QB_ROLE_FFN_DOWN_SHEXP,
  QB_ROLE_FFN_GATE_INP_SHEXP,
  /* DeepSeek's multi-head latent attention: Q through a low-rank pair
   * (attn_q_a, its norm, attn_q_b) or attn_q, the compressed KV with the
   * shared RoPE key (attn_kv_a_mqa), its norm, the expansion to each
   * head's K and V (attn_kv_b); and the router's expert-selection bias
   * (exp_probs_b, DeepSeek-V3's e_score_correction_bias). */
  QB_ROLE_ATTN_Q_A,
  QB_ROLE_ATTN_Q_A_NORM,
  QB_ROLE_ATTN_Q_B,
  QB_ROLE_ATTN_KV_A_MQA,
  QB_ROLE_ATTN_KV_A_NORM,
  QB_ROLE_ATTN_KV_B,
  QB_ROLE_FFN_EXP_PROBS_B,
  QB_ROLE_N_ROLES
} QbTensorRole;

const char   *qb_tensor_role_name      (QbTensorRole role);   /* "attn_v", ... */
QbTensorRole  qb_tensor_role_from_name (const char  *name);   /* inverse; OTHER when unknown */
/* Parses "blk.3.attn_v.weight" or "model.layers.3.self_attn.v_proj.weight":
 * layer 3, role ATTN_V, is_bias FALSE.  layer is -1 for tensors outside the
 * repeated blocks. */
void          qb_tensor_name_parse     (const char  *name,
                                        int         *layer,
                                        QbTensorRole *role,
                                        gboolean    *is_bias);
/* The expert of a per-expert safetensors matrix
 * ("model.layers.3.block_sparse_moe.experts.5.w1.weight": 5), else -1. */
int           qb_tensor_name_expert    (const char  *name);
/* TRUE for the routed experts' roles (ffn_{gate,up,down}_exps). */
gboolean      qb_tensor_role_is_expert (QbTensorRole role);

typedef struct {
  char         *name;
  guint         n_dims;
  gint64        ne[4];          /* ggml order; unused dims are 1 */
  QbDType       dtype;
  gint64        n_params;
  guint64       n_bytes;
  int           layer;          /* -1: not in a repeated block */
  QbTensorRole  role;
  gboolean      is_bias;
  int           expert;         /* one expert's matrix of a per-expert layout; else -1 */
  gconstpointer data;           /* in the mapping; n_bytes long */
} QbTensor;

/* Architecture facts; 0 where the file does not say. */
typedef struct {
  char    *family;           /* "llama", "qwen2", ... ("unknown" when not said) */
  char    *name;             /* general.name or the folder name; may be NULL */
  guint    n_layer;
  guint    n_embd;
  guint    n_head;
  guint    n_head_kv;
  guint    n_ff;
  guint    n_vocab;
  guint    n_ctx;
  guint    head_dim;         /* n_embd / n_head unless the file says otherwise */
  double   rms_eps;
  double   rope_freq_base;
  gboolean tied_embeddings;  /* no separate output matrix */
  /* Mixtures of experts (0 for a dense model): */
  guint    n_expert;         /* routed experts per layer */
  guint    n_expert_used;    /* experts each token goes through (top-k) */
  guint    n_ff_exp;         /* an expert's FFN width (n_ff when not said) */
  guint    n_ff_shexp;       /* the shared expert's FFN width; 0: none */
} QbArchInfo;

#define QB_TYPE_MODEL (qb_model_get_type ())
G_DECLARE_FINAL_TYPE (QbModel, qb_model, QB, MODEL, GObject)

/* Opens a .gguf, a .safetensors, a model.safetensors.index.json, or a folder
 * holding one of those (plus config.json). (transfer full) */
QbModel          *qb_model_open              (const char   *path,
                                              GError      **error);
const char       *qb_model_get_path          (QbModel      *model);
QbModelFileKind   qb_model_get_file_kind     (QbModel      *model);
const QbArchInfo *qb_model_get_arch          (QbModel      *model);
guint             qb_model_get_n_tensors     (QbModel      *model);
const QbTensor   *qb_model_get_tensor        (QbModel      *model,
                                              guint         index);
const QbTensor   *qb_model_find_tensor       (QbModel      *model,
                                              const char   *name,
                                              guint        *index);
gint64            qb_model_get_n_params      (QbModel      *model);
guint64           qb_model_get_n_bytes       (QbModel      *model);   /* tensor data */
guint64           qb_model_get_file_size     (QbModel      *model);   /* all files */
/* The parsed GGUF for GGUF models (metadata, tokenizer); NULL otherwise. (transfer none) */
QbGguf           *qb_model_get_gguf          (QbModel      *model);
/* config.json / tokenizer.json beside a safetensors model, parsed; NULL when absent.
 * (transfer none) */
struct _JsonObject *qb_model_get_hf_config   (QbModel      *model);
/* A stable fingerprint of the header and tensor table (hex SHA-256). */
const char       *qb_model_get_fingerprint   (QbModel      *model);

/* Reads values [first, first+n) of a tensor (flattened; both a multiple of
 * the block size) as float32 into dst.  For streaming over tensors whose
 * rows are long or few. */
gboolean          qb_model_read_range        (QbModel      *model,
                                              guint         index,
                                              gint64        first,
                                              gint64        n,
                                              float        *dst,
                                              GError      **error);
/* Reads rows [row, row+n_rows) of a tensor as float32 into dst
 * (n_rows * ne[0] floats).  Rows are counted over all dims above 0.
 * Fails with QB_MODEL_ERROR_UNREADABLE for types without a converter. */
gboolean          qb_model_read_rows         (QbModel      *model,
                                              guint         index,
                                              gint64        row,
                                              gint64        n_rows,
                                              float        *dst,
                                              GError      **error);

/* TRUE the first time it is asked for a tensor of this model, FALSE after:
 * the first pass over a tensor maps its pages in bulk (a page fault per
 * page costs more than reading it), later passes find them mapped and
 * skip that (walking mapped pages again costs a sixth of a pass).
 * Thread-safe. */
gboolean          qb_model_claim_first_read  (QbModel      *model,
                                              guint         index);

static inline gint64
qb_tensor_n_rows (const QbTensor *t)
{
  return t->ne[0] > 0 ? t->n_params / t->ne[0] : 0;
}

/* The experts a tensor holds, each a row set of its own: ne[2] of a 3-D
 * tensor (GGUF's ffn_*_exps), else 1. */
static inline gint64
qb_tensor_n_experts (const QbTensor *t)
{
  return t->n_dims == 3 && t->ne[2] > 1 ? t->ne[2] : 1;
}

G_END_DECLS
