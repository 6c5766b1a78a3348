/* SPDX-License-Identifier: MIT */
/* qb-family.h — what sets each decoder family apart, as data.
 *
 * The forward pass (eval/qb-llama-forward.c) is written once; each family is a
 * row of the table in qb-family.c (read also by the demo-model
 * generator and by inspect) saying which of the optional
 * pieces it has: Q/K norms, post-norms, soft-capping, sliding-window
 * layers and their pattern, a second RoPE base for local layers, the
 * embedding scale, the gate activation, fused projections, and how its
 * files store Q/K rows and norm weights.  Hyper-parameters that vary
 * within a family (the window, the caps, the RoPE base) are read from the
 * file under the keys below, with the family's defaults when it does not
 * say.
 *
 * GGUF keys, after the "<arch>." prefix: attention.sliding_window,
 * attn_logit_softcapping, final_logit_softcapping, rope.freq_base,
 * attention.layer_norm_rms_epsilon.  config.json keys: sliding_window,
 * attn_logit_softcapping, final_logit_softcapping, rope_theta,
 * rope_local_base_freq, query_pre_attn_scalar, sliding_window_pattern or
 * layer_types, rms_norm_eps, partial_rotary_factor.
 *
 * DeepSeek (GGUF, after the prefix): attention.q_lora_rank,
 * attention.kv_lora_rank, attention.key_length, attention.value_length,
 * rope.dimension_count, leading_dense_block_count, expert_shared_count,
 * expert_weights_scale, expert_weights_norm, expert_gating_func (1 softmax,
 * 2 sigmoid), expert_group_count, expert_group_used_count (later llama.cpp's
 * names; the Feb-2025 snapshot has no group-limited routing).  config.json:
 * q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim,
 * v_head_dim, first_k_dense_replace, moe_layer_freq, n_shared_experts,
 * moe_intermediate_size, n_routed_experts, num_experts_per_tok,
 * routed_scaling_factor, norm_topk_prob, scoring_func, topk_method,
 * n_group, topk_group.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  QB_ROPE_NORM,   /* pairs (2i, 2i+1): GGUF LLaMA/Mistral */
  QB_ROPE_NEOX,   /* pairs (i, i + n_rot/2): Qwen2, Gemma, Phi-3, Hugging Face layout */
} QbRopeStyle;

typedef enum {
  QB_FFN_SWIGLU,  /* silu(gate) · up */
  QB_FFN_GEGLU,   /* gelu_tanh(gate) · up (Gemma) */
} QbFfnActivation;

typedef enum {
  QB_SWA_NONE,     /* every layer sees every earlier token */
  QB_SWA_ALL,      /* every layer slides, when the file gives a window (Phi-3) */
  QB_SWA_EVEN,     /* layers 0, 2, 4, ... slide, the odd ones are global (Gemma 2) */
  QB_SWA_PERIOD,   /* layer i is global when (i + 1) % swa_period == 0 (Gemma 3: 5 local : 1 global) */
} QbSwaPattern;

typedef struct {
  const char      *arch;               /* GGUF general.architecture */
  const char      *hf_types[3];        /* config.json model_type values */
  QbRopeStyle      gguf_rope;          /* Q/K row layout in GGUF files (Hugging Face: always NEOX) */
  gboolean         qkv_bias;           /* checkpoints carry Q/K/V biases (read when present in any family) */
  gboolean         qk_norm;            /* RMSNorm over each Q and K head before RoPE */
  gboolean         post_norms;         /* RMSNorm of the attention and FFN outputs before each residual add */
  gboolean         embd_scale;         /* embeddings × sqrt(n_embd) */
  gboolean         hf_norm_offset;     /* Hugging Face stores w − 1 and computes x·(1 + w); GGUF stores w */
  QbFfnActivation  ffn;
  gboolean         fused_qkv;          /* attn_qkv holds the Q, K, V rows (Phi-3) */
  gboolean         fused_gate_up;      /* ffn_up holds the gate rows, then the up rows (Phi-3) */
  gboolean         tied_output;        /* the family's checkpoints reuse token_embd as the output */
  float            attn_softcap;       /* default attention logit cap (0: none) */
  float            final_softcap;      /* default final logit cap (0: none) */
  QbSwaPattern     swa;
  guint            swa_period;         /* QB_SWA_PERIOD */
  guint            swa_window;         /* default window (0: none unless the file says) */
  float            rope_base_local;    /* RoPE base of sliding layers (0: the global one) */
  /* Gemma's 27B models scale queries by n_embd / n_head rather than the
   * head size, and GGUF has no key for it: llama.cpp tells them by their
   * layer count.  0: always the head size. */
  guint            wide_query_layers;
  gboolean         snapshot_supported; /* llama.cpp's Feb-2025 snapshot (c392e50) runs it */
  /* Mixtures of experts: the family always has experts (a llama model has
   * them when its metadata gives an expert count), and renormalises each
   * token's top-k router probabilities to sum 1. */
  gboolean         moe;
  gboolean         moe_norm_topk;
  gboolean         shexp_gated;        /* the shared expert is scaled by sigmoid(x · its gate) (Qwen2-MoE) */
  /* DeepSeek-V2/V3.  Multi-head latent attention: Q from attn_q or the
   * low-rank pair attn_q_a → RMSNorm → attn_q_b; attn_kv_a_mqa gives a
   * compressed KV (RMSNorm, then attn_kv_b expands it to each head's K
   * without RoPE and its V) and one RoPE key shared by the heads; RoPE
   * turns only the last n_rot values of each head's Q and K.  Its sizes
   * come from the file (q/kv_lora_rank, key/value length, the RoPE
   * dimension). */
  gboolean         mla;
  /* Routing read from the file rather than fixed by the family: softmax
   * or sigmoid gating, the selection bias (exp_probs_b), top-k
   * renormalisation, the weight scale, group-limited selection and the
   * leading dense layers. */
  gboolean         moe_routing_keys;
  gboolean         hf_rope_interleaved; /* Hugging Face checkpoints rotate pairs (2i, 2i + 1) too */
} QbFamily;

/* The family of a GGUF architecture or a config.json model_type; NULL when
 * the forward pass does not know it. */
const QbFamily *qb_family_lookup (const char *arch_or_model_type);
/* "llama, mistral, qwen2, ..." (transfer none) */
const char          *qb_family_names  (void);

G_END_DECLS
