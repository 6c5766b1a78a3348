/* SPDX-License-Identifier: MIT */
/* qb-family.c — the family table.
 *
 * Each row was read off the published definitions: llama.cpp's graph
 * builders and hyper-parameter loading (src/llama.cpp, llama-model.cpp,
 * llama-arch.cpp of the Feb-2025 snapshot c392e50 for llama, mistral,
 * qwen2, phi3, gemma2; later llama.cpp and Hugging Face transformers'
 * modeling_qwen3.py / modeling_gemma3.py for qwen3 and gemma3), and its
 * converter (convert_hf_to_gguf.py: Gemma norm weights get + 1, LLaMA and
 * Mistral Q/K rows are permuted to interleaved pairs, the others are not).
 */
#include "qb-family.h"

#include <string.h>

static const QbFamily families[] = {
  /* With llama.expert_count, a Mixtral-style mixture: softmax router,
   * top-k renormalised (llama.cpp's build_llama). */
  { .arch = "llama", .hf_types = { "llama", "mixtral" }, .gguf_rope = QB_ROPE_NORM,
    .ffn = QB_FFN_SWIGLU, .snapshot_supported = TRUE, .moe_norm_topk = TRUE },
  { .arch = "mistral", .hf_types = { "mistral" }, .gguf_rope = QB_ROPE_NORM,
    .ffn = QB_FFN_SWIGLU, .snapshot_supported = TRUE },
  { .arch = "qwen2", .hf_types = { "qwen2" }, .gguf_rope = QB_ROPE_NEOX, .qkv_bias = TRUE,
    .ffn = QB_FFN_SWIGLU, .snapshot_supported = TRUE },
  /* Qwen2-MoE: Qwen2's attention; softmax router, top-k weights not
   * renormalised (norm_topk_prob false; llama.cpp's build_qwen2moe), and
   * a shared expert scaled by the sigmoid of its own gate. */
  { .arch = "qwen2moe", .hf_types = { "qwen2_moe" }, .gguf_rope = QB_ROPE_NEOX, .qkv_bias = TRUE,
    .ffn = QB_FFN_SWIGLU, .snapshot_supported = TRUE, .moe = TRUE, .shexp_gated = TRUE },
  /* Qwen3-MoE: Qwen3's attention (QK-norm, no biases), softmax router with
   * the top-k renormalised (norm_topk_prob true), no shared expert. */
  { .arch = "qwen3moe", .hf_types = { "qwen3_moe" }, .gguf_rope = QB_ROPE_NEOX, .qk_norm = TRUE,
    .ffn = QB_FFN_SWIGLU, .moe = TRUE, .moe_norm_topk = TRUE },
  /* DeepSeek-V2, V2-Lite, V3, R1 (llama.cpp's deepseek2): multi-head
   * latent attention, RoPE on interleaved pairs of each head's last n_rot
   * values (llama.cpp's rope type NORM; Hugging Face's modeling_deepseek
   * reorders the pairs before rotating, the same computation), leading
   * dense layers, then routed experts with ungated shared experts; the
   * routing (softmax for V2, sigmoid with a selection bias for V3) is read
   * from the file (llama.cpp's build_deepseek2 and llm_build_moe_ffn). */
  { .arch = "deepseek2", .hf_types = { "deepseek_v2", "deepseek_v3" }, .gguf_rope = QB_ROPE_NORM,
    .ffn = QB_FFN_SWIGLU, .snapshot_supported = TRUE, .moe = TRUE, .mla = TRUE,
    .moe_routing_keys = TRUE, .hf_rope_interleaved = TRUE },
  /* Qwen3: Qwen2 without the Q/K/V biases, with a per-head RMSNorm of Q and K. */
  { .arch = "qwen3", .hf_types = { "qwen3" }, .gguf_rope = QB_ROPE_NEOX, .qk_norm = TRUE,
    .ffn = QB_FFN_SWIGLU },
  /* Phi-3: fused QKV and gate-up; a sliding window on every layer when the
   * file gives one (phi3.attention.sliding_window, 0 for Phi-4). */
  { .arch = "phi3", .hf_types = { "phi3" }, .gguf_rope = QB_ROPE_NEOX, .ffn = QB_FFN_SWIGLU,
    .fused_qkv = TRUE, .fused_gate_up = TRUE, .swa = QB_SWA_ALL, .snapshot_supported = TRUE },
  /* Gemma 2: scaled embeddings, post-norms, GeGLU, soft-capped attention
   * and output logits, every other layer (the even ones) on a 4096 window. */
  { .arch = "gemma2", .hf_types = { "gemma2" }, .gguf_rope = QB_ROPE_NEOX, .post_norms = TRUE,
    .embd_scale = TRUE, .hf_norm_offset = TRUE, .ffn = QB_FFN_GEGLU, .tied_output = TRUE,
    .attn_softcap = 50.0f, .final_softcap = 30.0f, .swa = QB_SWA_EVEN, .swa_window = 4096,
    .wide_query_layers = 46, .snapshot_supported = TRUE },
  /* Gemma 3 (text): Gemma 2 with Q/K norms instead of soft-capping, five
   * local layers to one global, the local ones on RoPE base 10000. */
  { .arch = "gemma3", .hf_types = { "gemma3_text", "gemma3" }, .gguf_rope = QB_ROPE_NEOX,
    .qk_norm = TRUE, .post_norms = TRUE, .embd_scale = TRUE, .hf_norm_offset = TRUE,
    .ffn = QB_FFN_GEGLU, .tied_output = TRUE, .swa = QB_SWA_PERIOD, .swa_period = 6,
    .swa_window = 4096, .rope_base_local = 10000.0f, .wide_query_layers = 62 },
};

const QbFamily *
qb_family_lookup (const char *name)
{
  if (name == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (families); i++)
    {
      if (strcmp (families[i].arch, name) == 0)
        return &families[i];
      for (gsize j = 0; j < G_N_ELEMENTS (families[i].hf_types) && families[i].hf_types[j]; j++)
        if (strcmp (families[i].hf_types[j], name) == 0)
          return &families[i];
    }
  return NULL;
}

const char *
qb_family_names (void)
{
  static gsize names;

  if (g_once_init_enter (&names))
    {
      GString *s = g_string_new (NULL);
      for (gsize i = 0; i < G_N_ELEMENTS (families); i++)
        g_string_append_printf (s, "%s%s", i ? ", " : "", families[i].arch);
      g_once_init_leave (&names, (gsize) g_string_free (s, FALSE));
    }
  return (const char *) names;
}
