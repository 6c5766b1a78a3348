/* SPDX-License-Identifier: MIT */
/* qb-tensor-name.c — layer index and role from a tensor's name.
 *
 * GGUF names ("blk.3.attn_v.weight") and the Hugging Face families'
 * ("model.layers.3.self_attn.v_proj.weight", GPT-2's "h.3.attn.c_attn",
 * Meta's "layers.3.attention.wv", ...) all put the layer number after a
 * container word; what follows the number says the role.
 */
#include "qb-model.h"

#include <string.h>

static const char *const role_names[QB_ROLE_N_ROLES] = {
  [QB_ROLE_OTHER]       = "other",
  [QB_ROLE_TOKEN_EMBD]  = "token_embd",
  [QB_ROLE_OUTPUT]      = "output",
  [QB_ROLE_OUTPUT_NORM] = "output_norm",
  [QB_ROLE_ATTN_NORM]   = "attn_norm",
  [QB_ROLE_ATTN_Q]      = "attn_q",
  [QB_ROLE_ATTN_K]      = "attn_k",
  [QB_ROLE_ATTN_V]      = "attn_v",
  [QB_ROLE_ATTN_QKV]    = "attn_qkv",
  [QB_ROLE_ATTN_OUTPUT] = "attn_output",
  [QB_ROLE_FFN_NORM]    = "ffn_norm",
  [QB_ROLE_FFN_GATE]    = "ffn_gate",
  [QB_ROLE_FFN_UP]      = "ffn_up",
  [QB_ROLE_FFN_DOWN]    = "ffn_down",
  [QB_ROLE_ROPE_FREQS]  = "rope_freqs",
  [QB_ROLE_ATTN_Q_NORM] = "attn_q_norm",
  [QB_ROLE_ATTN_K_NORM] = "attn_k_norm",
  [QB_ROLE_ATTN_POST_NORM] = "post_attention_norm",
  [QB_ROLE_FFN_POST_NORM] = "post_ffw_norm",
  [QB_ROLE_FFN_GATE_INP]   = "ffn_gate_inp",
  [QB_ROLE_FFN_GATE_EXPS]  = "ffn_gate_exps",
  [QB_ROLE_FFN_UP_EXPS]    = "ffn_up_exps",
  [QB_ROLE_FFN_DOWN_EXPS]  = "ffn_down_exps",
  [QB_ROLE_FFN_GATE_SHEXP] = "ffn_gate_shexp",
  [QB_ROLE_FFN_UP_SHEXP]   = "ffn_up_shexp",
  [QB_ROLE_FFN_DOWN_SHEXP] = "ffn_down_shexp",
  [QB_ROLE_FFN_GATE_INP_SHEXP] = "ffn_gate_inp_shexp",
  [QB_ROLE_ATTN_Q_A]       = "attn_q_a",
  [QB_ROLE_ATTN_Q_A_NORM]  = "attn_q_a_norm",
  [QB_ROLE_ATTN_Q_B]       = "attn_q_b",
  [QB_ROLE_ATTN_KV_A_MQA]  = "attn_kv_a_mqa",
  [QB_ROLE_ATTN_KV_A_NORM] = "attn_kv_a_norm",
  [QB_ROLE_ATTN_KV_B]      = "attn_kv_b",
  [QB_ROLE_FFN_EXP_PROBS_B] = "exp_probs_b",
};

typedef struct
{
  const char   *name;
  QbTensorRole  role;
} RoleAlias;

/* What follows the layer number (without .weight/.bias). */
static const RoleAlias layer_roles[] = {
  /* GGUF */
  { "attn_norm", QB_ROLE_ATTN_NORM }, { "attn_q", QB_ROLE_ATTN_Q }, { "attn_k", QB_ROLE_ATTN_K },
  { "attn_v", QB_ROLE_ATTN_V }, { "attn_qkv", QB_ROLE_ATTN_QKV },
  { "attn_output", QB_ROLE_ATTN_OUTPUT }, { "ffn_norm", QB_ROLE_FFN_NORM },
  { "ffn_gate", QB_ROLE_FFN_GATE }, { "ffn_up", QB_ROLE_FFN_UP }, { "ffn_down", QB_ROLE_FFN_DOWN },
  { "attn_q_norm", QB_ROLE_ATTN_Q_NORM }, { "attn_k_norm", QB_ROLE_ATTN_K_NORM },
  { "post_attention_norm", QB_ROLE_ATTN_POST_NORM }, { "post_ffw_norm", QB_ROLE_FFN_POST_NORM },
  { "ffn_gate_inp", QB_ROLE_FFN_GATE_INP }, { "ffn_gate_exps", QB_ROLE_FFN_GATE_EXPS },
  { "ffn_up_exps", QB_ROLE_FFN_UP_EXPS }, { "ffn_down_exps", QB_ROLE_FFN_DOWN_EXPS },
  { "ffn_gate_shexp", QB_ROLE_FFN_GATE_SHEXP }, { "ffn_up_shexp", QB_ROLE_FFN_UP_SHEXP },
  { "ffn_down_shexp", QB_ROLE_FFN_DOWN_SHEXP },
  { "ffn_gate_inp_shexp", QB_ROLE_FFN_GATE_INP_SHEXP },
  { "attn_q_a", QB_ROLE_ATTN_Q_A }, { "attn_q_a_norm", QB_ROLE_ATTN_Q_A_NORM },
  { "attn_q_b", QB_ROLE_ATTN_Q_B }, { "attn_kv_a_mqa", QB_ROLE_ATTN_KV_A_MQA },
  { "attn_kv_a_norm", QB_ROLE_ATTN_KV_A_NORM }, { "attn_kv_b", QB_ROLE_ATTN_KV_B },
  { "exp_probs_b", QB_ROLE_FFN_EXP_PROBS_B },
  /* DeepSeek-V2/V3's Hugging Face names */
  { "self_attn.q_a_proj", QB_ROLE_ATTN_Q_A }, { "self_attn.q_a_layernorm", QB_ROLE_ATTN_Q_A_NORM },
  { "self_attn.q_b_proj", QB_ROLE_ATTN_Q_B },
  { "self_attn.kv_a_proj_with_mqa", QB_ROLE_ATTN_KV_A_MQA },
  { "self_attn.kv_a_layernorm", QB_ROLE_ATTN_KV_A_NORM },
  { "self_attn.kv_b_proj", QB_ROLE_ATTN_KV_B },
  { "mlp.gate.e_score_correction_bias", QB_ROLE_FFN_EXP_PROBS_B },
  /* Mixtral's Hugging Face names (the expert number replaced by "*") */
  { "block_sparse_moe.gate", QB_ROLE_FFN_GATE_INP },
  { "block_sparse_moe.experts.*.w1", QB_ROLE_FFN_GATE_EXPS },
  { "block_sparse_moe.experts.*.w2", QB_ROLE_FFN_DOWN_EXPS },
  { "block_sparse_moe.experts.*.w3", QB_ROLE_FFN_UP_EXPS },
  /* Qwen2-MoE, Qwen3-MoE (and DeepSeek's plural shared experts) */
  { "mlp.gate", QB_ROLE_FFN_GATE_INP }, { "mlp.experts.*.gate_proj", QB_ROLE_FFN_GATE_EXPS },
  { "mlp.experts.*.up_proj", QB_ROLE_FFN_UP_EXPS },
  { "mlp.experts.*.down_proj", QB_ROLE_FFN_DOWN_EXPS },
  { "mlp.shared_expert.gate_proj", QB_ROLE_FFN_GATE_SHEXP },
  { "mlp.shared_expert.up_proj", QB_ROLE_FFN_UP_SHEXP },
  { "mlp.shared_expert.down_proj", QB_ROLE_FFN_DOWN_SHEXP },
  { "mlp.shared_experts.gate_proj", QB_ROLE_FFN_GATE_SHEXP },
  { "mlp.shared_experts.up_proj", QB_ROLE_FFN_UP_SHEXP },
  { "mlp.shared_experts.down_proj", QB_ROLE_FFN_DOWN_SHEXP },
  { "mlp.shared_expert_gate", QB_ROLE_FFN_GATE_INP_SHEXP },
  /* LLaMA-style Hugging Face (Llama, Mistral, Qwen, Gemma, Phi-3, ...) */
  { "input_layernorm", QB_ROLE_ATTN_NORM }, { "post_attention_layernorm", QB_ROLE_FFN_NORM },
  { "self_attn.q_proj", QB_ROLE_ATTN_Q }, { "self_attn.k_proj", QB_ROLE_ATTN_K },
  { "self_attn.v_proj", QB_ROLE_ATTN_V }, { "self_attn.o_proj", QB_ROLE_ATTN_OUTPUT },
  { "self_attn.qkv_proj", QB_ROLE_ATTN_QKV }, { "mlp.gate_proj", QB_ROLE_FFN_GATE },
  { "mlp.up_proj", QB_ROLE_FFN_UP }, { "mlp.down_proj", QB_ROLE_FFN_DOWN },
  { "mlp.gate_up_proj", QB_ROLE_FFN_UP }, { "self_attn.q_norm", QB_ROLE_ATTN_Q_NORM },
  { "self_attn.k_norm", QB_ROLE_ATTN_K_NORM },
  /* Gemma 2/3 name the FFN's input norm "pre_feedforward" and use
   * "post_attention_layernorm" for the attention output's norm: QbModel
   * renames that role when it sees a pre_feedforward_layernorm. */
  { "pre_feedforward_layernorm", QB_ROLE_FFN_NORM },
  { "post_feedforward_layernorm", QB_ROLE_FFN_POST_NORM },
  { "self_attn.rotary_emb.inv_freq", QB_ROLE_ROPE_FREQS },
  /* GPT-2 */
  { "ln_1", QB_ROLE_ATTN_NORM }, { "ln_2", QB_ROLE_FFN_NORM }, { "attn.c_attn", QB_ROLE_ATTN_QKV },
  { "attn.c_proj", QB_ROLE_ATTN_OUTPUT }, { "mlp.c_fc", QB_ROLE_FFN_UP },
  { "mlp.c_proj", QB_ROLE_FFN_DOWN },
  /* GPT-NeoX, Falcon */
  { "attention.query_key_value", QB_ROLE_ATTN_QKV }, { "attention.dense", QB_ROLE_ATTN_OUTPUT },
  { "self_attention.query_key_value", QB_ROLE_ATTN_QKV },
  { "self_attention.dense", QB_ROLE_ATTN_OUTPUT }, { "mlp.dense_h_to_4h", QB_ROLE_FFN_UP },
  { "mlp.dense_4h_to_h", QB_ROLE_FFN_DOWN },
  /* Meta's original checkpoints */
  { "attention_norm", QB_ROLE_ATTN_NORM }, { "attention.wq", QB_ROLE_ATTN_Q },
  { "attention.wk", QB_ROLE_ATTN_K }, { "attention.wv", QB_ROLE_ATTN_V },
  { "attention.wo", QB_ROLE_ATTN_OUTPUT }, { "feed_forward.w1", QB_ROLE_FFN_GATE },
  { "feed_forward.w2", QB_ROLE_FFN_DOWN }, { "feed_forward.w3", QB_ROLE_FFN_UP },
};

/* The last dotted component(s) of a tensor outside the blocks. */
static const RoleAlias global_roles[] = {
  { "token_embd", QB_ROLE_TOKEN_EMBD }, { "embed_tokens", QB_ROLE_TOKEN_EMBD },
  { "tok_embeddings", QB_ROLE_TOKEN_EMBD }, { "wte", QB_ROLE_TOKEN_EMBD },
  { "word_embeddings", QB_ROLE_TOKEN_EMBD }, { "embed_in", QB_ROLE_TOKEN_EMBD },
  { "output", QB_ROLE_OUTPUT }, { "lm_head", QB_ROLE_OUTPUT }, { "embed_out", QB_ROLE_OUTPUT },
  { "output_norm", QB_ROLE_OUTPUT_NORM }, { "model.norm", QB_ROLE_OUTPUT_NORM },
  { "ln_f", QB_ROLE_OUTPUT_NORM }, { "final_layer_norm", QB_ROLE_OUTPUT_NORM },
  { "final_layernorm", QB_ROLE_OUTPUT_NORM }, { "rope_freqs", QB_ROLE_ROPE_FREQS },
};

/* Words that hold the repeated blocks. */
static const char *const layer_containers[] = { "blk", "layers", "h", "layer", "blocks", "block" };

const char *
qb_tensor_role_name (QbTensorRole role)
{
  if ((guint) role >= QB_ROLE_N_ROLES)
    return "other";
  return role_names[role];
}

QbTensorRole
qb_tensor_role_from_name (const char *name)
{
  for (guint r = 0; name && r < QB_ROLE_N_ROLES; r++)
    if (strcmp (role_names[r], name) == 0)
      return (QbTensorRole) r;
  return QB_ROLE_OTHER;
}

static QbTensorRole
lookup (const RoleAlias *table, gsize n, const char *name, gsize len)
{
  for (gsize i = 0; i < n; i++)
    if (strlen (table[i].name) == len && memcmp (table[i].name, name, len) == 0)
      return table[i].role;
  return QB_ROLE_OTHER;
}

gboolean
qb_tensor_role_is_expert (QbTensorRole role)
{
  return role == QB_ROLE_FFN_GATE_EXPS || role == QB_ROLE_FFN_UP_EXPS
         || role == QB_ROLE_FFN_DOWN_EXPS;
}

/* Where "experts.N." starts its number in name[0..len), and the number;
 * -1 when there is none. */
static int
find_expert (const char *name, gsize len, gsize *digits, gsize *n_digits)
{
  static const char word[] = "experts.";
  const gsize wl = sizeof word - 1;

  for (gsize i = 0; i + wl < len; i++)
    {
      gsize j = i + wl;
      gint64 e = 0;

      if ((i > 0 && name[i - 1] != '.') || memcmp (name + i, word, wl) != 0
          || !g_ascii_isdigit (name[j]))
        continue;
      while (j < len && g_ascii_isdigit (name[j]) && e < 1000000)
        e = e * 10 + (name[j++] - '0');
      if (e < 1000000 && j < len && name[j] == '.')
        {
          *digits = i + wl;
          *n_digits = j - *digits;
          return (int) e;
        }
    }
  return -1;
}

int
qb_tensor_name_expert (const char *name)
{
  gsize digits, n_digits;

  return find_expert (name, strlen (name), &digits, &n_digits);
}

/* A layer role, the expert number (if any) read as "*". */
static QbTensorRole
lookup_layer_role (const char *rest, gsize len)
{
  gsize digits, n_digits;
  g_autofree char *key = NULL;

  if (find_expert (rest, len, &digits, &n_digits) < 0)
    return lookup (layer_roles, G_N_ELEMENTS (layer_roles), rest, len);
  key = g_strdup_printf ("%.*s*%.*s", (int) digits, rest, (int) (len - digits - n_digits),
                         rest + digits + n_digits);
  return lookup (layer_roles, G_N_ELEMENTS (layer_roles), key, strlen (key));
}

static gboolean
is_container (const char *s, gsize len)
{
  for (gsize i = 0; i < G_N_ELEMENTS (layer_containers); i++)
    if (strlen (layer_containers[i]) == len && memcmp (layer_containers[i], s, len) == 0)
      return TRUE;
  return FALSE;
}

/* Finds ".N." (or "N." at the start) after a container word: returns the
 * layer and where the rest of the name starts, or -1. */
static int
find_layer (const char *name, gsize len, gsize *rest)
{
  gsize word = 0;

  for (gsize i = 0; i <= len; i++)
    {
      if (i < len && name[i] != '.')
        continue;
      /* name[word..i) is one component */
      if (i + 1 < len && g_ascii_isdigit (name[i + 1]) && is_container (name + word, i - word))
        {
          gsize j = i + 1;
          gint64 layer = 0;

          while (j < len && g_ascii_isdigit (name[j]) && layer < 1000000)
            layer = layer * 10 + (name[j++] - '0');
          if (layer < 1000000 && (j == len || name[j] == '.'))
            {
              *rest = j < len ? j + 1 : len;
              return (int) layer;
            }
        }
      word = i + 1;
    }
  return -1;
}

void
qb_tensor_name_parse (const char *name, int *layer_out, QbTensorRole *role_out, gboolean *is_bias_out)
{
  gsize len = strlen (name), rest = 0;
  gboolean is_bias = FALSE;
  QbTensorRole role = QB_ROLE_OTHER;
  int layer;

  if (g_str_has_suffix (name, ".weight"))
    len -= strlen (".weight");
  else if (g_str_has_suffix (name, ".bias"))
    {
      len -= strlen (".bias");
      is_bias = TRUE;
    }

  layer = find_layer (name, len, &rest);
  if (layer >= 0)
    role = lookup_layer_role (name + rest, len - rest);
  else
    {
      /* Try ever shorter dotted tails: "language_model.model.norm" -> "model.norm". */
      for (gsize start = 0; start < len && role == QB_ROLE_OTHER; start++)
        if (start == 0 || name[start - 1] == '.')
          role = lookup (global_roles, G_N_ELEMENTS (global_roles), name + start, len - start);
    }

  if (layer_out)
    *layer_out = layer;
  if (role_out)
    *role_out = role;
  if (is_bias_out)
    *is_bias_out = is_bias;
}
