/* SPDX-License-Identifier: MIT */
/* qb-plan-presets.c — presets that reproduce llama.cpp's quantization mixes.
 *
 * llama-quantize picks a base type from the file type and then bumps a few
 * roles by their position among the layers (llama_tensor_get_type in
 * llama.cpp's src/llama-quant.cpp, February 2025).  Each preset here is a
 * row of data describing those bumps for dense models:
 *
 *   output.weight (token_embd.weight when the output is tied): Q6_K unless
 *     the base is Q8_0; Q8_0 when its rows do not fit the base's block or
 *     for Falcon.
 *   attn_v, ffn_down, attn_output, attn_qkv: per-preset rules below, with
 *     llama.cpp's position tests (first k, first n/8 or n/16, and
 *     use_more_bits: the first and last eighth plus every third layer).
 *   attn_v of a 70B-class model (80 layers, grouped-query attention):
 *     Q3_K/Q4_K raised to Q5_K.
 *   Mixtures of experts: llama.cpp matches "ffn_down" anywhere in a name,
 *     so the routed experts (ffn_down_exps, or each expert's matrix of a
 *     Hugging Face checkpoint) and the shared expert (ffn_down_shexp) take
 *     the ffn_down rules, by the layer in their name when the model has
 *     more than one expert.  With exactly 8 experts (Mixtral): attn_v and
 *     attn_k Q8_0, and attn_output Q5_K for Q2_K, Q3_K_S, Q3_K_M, Q4_K_S,
 *     Q4_K_M, IQ4_NL and IQ4_XS (the base otherwise: the dense attn_output
 *     rules do not apply).
 * Tensors llama.cpp never quantizes (1-D, norms, MoE routers, positional
 * embeddings) are kept.  Not reproduced: the
 * IQ1/IQ2/IQ3 file types (their formats are not in the registry), and the
 * choices that depend on an importance matrix being present (Q4_0/Q5_0
 * ffn_down, IQ4 ffn_down): presets follow llama.cpp without one.  Rows that
 * do not fit a block fall back through the format registry's chain, which
 * matches llama.cpp's own fallback (Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0, Q2_K/Q3_K/IQ4_XS -> IQ4_NL, then F16).  One difference: a
 * 32-block type (Q4_0, Q8_0, ...) on rows that fit no block falls back to
 * F16 here, where llama-quantize refuses the model.
 *
 * How close: against llama-quantize (February 2025) on stories260K, the
 * tiny demo model and synthetic LLaMA models of 8, 12 and 16 layers (with
 * GQA 4 and 8, and tied embeddings), every preset picked the same type
 * for every tensor (7254 choices in 84 model and preset pairs), and
 * Q3_K_M, Q4_K_M and Q5_K_M exports were byte-identical to
 * llama-quantize's files, tensor by tensor.
 */
#include "qb-plan-private.h"

#include <string.h>

typedef enum {
  POS_NONE,          /* rule unused */
  POS_ALL,           /* every layer */
  POS_FIRST,         /* i < arg */
  POS_FIRST_FRAC,    /* i < n / arg */
  POS_MORE_BITS,     /* llama.cpp's use_more_bits(i, n) */
} QbPosKind;

typedef struct {
  QbPosKind   kind;
  int         arg;
  const char *then;        /* format when the position test passes */
  const char *otherwise;   /* when it fails; NULL: the base */
} QbPosRule;

typedef struct {
  const char *name;
  int         ftype;          /* llama.cpp's LLAMA_FTYPE_MOSTLY_* */
  const char *base;
  const char *summary;
  QbPosRule   attn_v;
  const char *attn_v_gqa4;    /* attn_v when n_head / n_head_kv >= 4 (overrides attn_v) */
  QbPosRule   ffn_down;
  const char *attn_output;
  const char *attn_qkv;
  gboolean    moe8_attn_output;  /* attn_output Q5_K in an 8-expert model */
} QbPreset;

#define NO_RULE { POS_NONE, 0, NULL, NULL }

static const QbPreset presets[] = {
  { "Q2_K", 10, "Q2_K", "llama.cpp Q2_K: Q2_K, attn_v Q3_K (Q4_K with GQA >= 4), ffn_down and attn_output Q3_K, output Q6_K",
    { POS_ALL, 0, "Q3_K", NULL }, "Q4_K", { POS_ALL, 0, "Q3_K", NULL }, "Q3_K", NULL, TRUE },
  { "Q3_K_S", 11, "Q3_K", "llama.cpp Q3_K_S: Q3_K everywhere, output Q6_K",
    NO_RULE, NULL, NO_RULE, NULL, NULL, TRUE },
  { "Q3_K_M", 12, "Q3_K", "llama.cpp Q3_K_M: Q3_K; attn_v Q5_K in the first 2 layers else Q4_K; "
                          "ffn_down Q5_K in the first 1/16 else Q4_K; attn_output Q4_K; output Q6_K",
    { POS_FIRST, 2, "Q5_K", "Q4_K" }, NULL, { POS_FIRST_FRAC, 16, "Q5_K", "Q4_K" }, "Q4_K", "Q4_K", TRUE },
  { "Q3_K_L", 13, "Q3_K", "llama.cpp Q3_K_L: Q3_K; attn_v, ffn_down and attn_output Q5_K; output Q6_K",
    { POS_ALL, 0, "Q5_K", NULL }, NULL, { POS_ALL, 0, "Q5_K", NULL }, "Q5_K", "Q4_K" },
  { "Q4_K_S", 14, "Q4_K", "llama.cpp Q4_K_S: Q4_K; attn_v Q5_K in the first 4 layers, ffn_down Q5_K in the first 1/8; output Q6_K",
    { POS_FIRST, 4, "Q5_K", NULL }, NULL, { POS_FIRST_FRAC, 8, "Q5_K", NULL }, NULL, NULL, TRUE },
  { "Q4_K_M", 15, "Q4_K", "llama.cpp Q4_K_M: Q4_K; attn_v and ffn_down Q6_K in the first and last eighth "
                          "and every third layer; output Q6_K",
    { POS_MORE_BITS, 0, "Q6_K", NULL }, NULL, { POS_MORE_BITS, 0, "Q6_K", NULL }, NULL, "Q5_K", TRUE },
  { "Q5_K_S", 16, "Q5_K", "llama.cpp Q5_K_S: Q5_K everywhere, output Q6_K",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "Q5_K_M", 17, "Q5_K", "llama.cpp Q5_K_M: Q5_K; attn_v and ffn_down Q6_K in the first and last eighth "
                          "and every third layer; output Q6_K",
    { POS_MORE_BITS, 0, "Q6_K", NULL }, NULL, { POS_MORE_BITS, 0, "Q6_K", NULL }, NULL, "Q6_K" },
  { "Q6_K", 18, "Q6_K", "llama.cpp Q6_K: Q6_K everywhere",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "Q8_0", 7, "Q8_0", "llama.cpp Q8_0: Q8_0 everywhere",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "Q4_0", 2, "Q4_0", "llama.cpp Q4_0: Q4_0, output Q6_K",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "Q4_1", 3, "Q4_1", "llama.cpp Q4_1: Q4_1, output Q6_K",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "Q5_0", 8, "Q5_0", "llama.cpp Q5_0: Q5_0, output Q6_K",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "Q5_1", 9, "Q5_1", "llama.cpp Q5_1: Q5_1, output Q6_K",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "IQ4_NL", 25, "IQ4_NL", "llama.cpp IQ4_NL: IQ4_NL; attn_v Q5_K with GQA >= 4, "
                            "ffn_down Q5_K in the first 1/8 (no imatrix); output Q6_K",
    NO_RULE, "Q5_K", { POS_FIRST_FRAC, 8, "Q5_K", NULL }, NULL, NULL, TRUE },
  { "IQ4_XS", 30, "IQ4_XS", "llama.cpp IQ4_XS: IQ4_XS; attn_v Q5_K with GQA >= 4, "
                            "ffn_down Q5_K in the first 1/8 (no imatrix); output Q6_K",
    NO_RULE, "Q5_K", { POS_FIRST_FRAC, 8, "Q5_K", NULL }, NULL, NULL, TRUE },
  { "F16", 1, "F16", "llama.cpp F16: F16 everywhere but 1-D tensors",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
  { "BF16", 32, "BF16", "llama.cpp BF16: BF16 everywhere but 1-D tensors",
    NO_RULE, NULL, NO_RULE, NULL, NULL },
};

static const char * const preset_names[] = {
  "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M",
  "Q6_K", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS", "F16", "BF16",
  NULL
};

G_STATIC_ASSERT (G_N_ELEMENTS (preset_names) == G_N_ELEMENTS (presets) + 1);

static const QbPreset *
find_preset (const char *name)
{
  if (name == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (presets); i++)
    if (g_ascii_strcasecmp (presets[i].name, name) == 0)
      return &presets[i];
  return NULL;
}

const char * const *
qb_plan_list_presets (void)
{
  return preset_names;
}

const char *
qb_plan_preset_summary (const char *preset)
{
  const QbPreset *p = find_preset (preset);
  return p ? p->summary : NULL;
}

gboolean
qb_preset_exists (const char *preset)
{
  return find_preset (preset) != NULL;
}

const char *
qb_preset_canonical_name (const char *preset)
{
  const QbPreset *p = find_preset (preset);
  return p ? p->name : NULL;
}

int
qb_preset_llama_ftype (const char *preset)
{
  const QbPreset *p = find_preset (preset);
  return p ? p->ftype : -1;
}

int
qb_llama_ftype_for_format (const char *format)
{
  static const struct { const char *format; int ftype; } table[] = {
    { "F32", 0 }, { "F16", 1 }, { "Q4_0", 2 }, { "Q4_1", 3 }, { "Q8_0", 7 },
    { "Q5_0", 8 }, { "Q5_1", 9 }, { "Q2_K", 10 }, { "Q3_K", 12 },
    { "Q4_K", 15 }, { "Q5_K", 17 }, { "Q6_K", 18 }, { "IQ4_NL", 25 },
    { "IQ4_XS", 30 }, { "BF16", 32 },
  };

  for (gsize i = 0; format && i < G_N_ELEMENTS (table); i++)
    if (g_ascii_strcasecmp (table[i].format, format) == 0)
      return table[i].ftype;
  return -1;
}

/* ---- per-model context ---------------------------------------------- */

struct _QbPresetContext {
  const QbPreset *preset;
  QbModel        *model;
  gboolean        has_output;    /* a separate output matrix */
  gboolean        falcon;
  gboolean        large_gqa;     /* 70B-class: 80 layers with GQA */
  guint           n_gqa;
  guint           n_expert;
  int             n_attn_v;      /* llama.cpp's n_attention_wv */
  int             n_layer;
  int            *attn_v_rank;   /* per tensor: i_attention_wv, or -1 */
  int            *ffn_down_rank; /* per tensor: i_ffn_down, or -1 */
};

static int
effective_dims (const QbTensor *t)
{
  int n = 4;

  while (n > 1 && t->ne[n - 1] == 1)
    n--;
  return n;
}

static gboolean
is_attn_v (const QbTensor *t)
{
  return t->role == QB_ROLE_ATTN_V && !t->is_bias;
}

/* llama.cpp's name.find ("ffn_down"): the dense FFN, the routed experts
 * and the shared expert alike. */
static gboolean
is_ffn_down (const QbTensor *t)
{
  return (t->role == QB_ROLE_FFN_DOWN || t->role == QB_ROLE_FFN_DOWN_EXPS
          || t->role == QB_ROLE_FFN_DOWN_SHEXP) && !t->is_bias;
}

/* llama.cpp visits tensors ordered by layer, then by name. */
static int
compare_layer_name (gconstpointer a, gconstpointer b, gpointer data)
{
  QbModel *model = data;
  const QbTensor *ta = qb_model_get_tensor (model, *(const guint *) a);
  const QbTensor *tb = qb_model_get_tensor (model, *(const guint *) b);

  if (ta->layer != tb->layer)
    return ta->layer < tb->layer ? -1 : 1;
  return strcmp (ta->name, tb->name);
}

static void
rank_tensors (QbPresetContext *pc, gboolean (*pick) (const QbTensor *), int *rank, int *count)
{
  guint n = qb_model_get_n_tensors (pc->model);
  g_autofree guint *order = g_new (guint, MAX (n, 1));
  guint m = 0;

  for (guint i = 0; i < n; i++)
    {
      rank[i] = -1;
      if (pick (qb_model_get_tensor (pc->model, i)))
        order[m++] = i;
    }
  g_qsort_with_data (order, (gint) m, sizeof (guint), compare_layer_name, pc->model);
  for (guint k = 0; k < m; k++)
    rank[order[k]] = (int) k;
  if (count)
    *count = (int) m;
}

QbPresetContext *
qb_preset_context_new (const char *preset, QbModel *model)
{
  const QbArchInfo *arch = qb_model_get_arch (model);
  QbPresetContext *pc;
  guint n = qb_model_get_n_tensors (model);
  guint n_head_kv;
  int n_ffn_down = 0;

  g_return_val_if_fail (find_preset (preset) != NULL, NULL);
  pc = g_new0 (QbPresetContext, 1);
  pc->preset = find_preset (preset);
  pc->model = g_object_ref (model);
  pc->attn_v_rank = g_new (int, MAX (n, 1));
  pc->ffn_down_rank = g_new (int, MAX (n, 1));

  for (guint i = 0; i < n; i++)
    if (qb_model_get_tensor (model, i)->role == QB_ROLE_OUTPUT)
      pc->has_output = TRUE;
  pc->falcon = g_strcmp0 (arch->family, "falcon") == 0;
  n_head_kv = arch->n_head_kv ? arch->n_head_kv : arch->n_head;
  pc->n_gqa = n_head_kv ? arch->n_head / n_head_kv : 0;
  pc->large_gqa = arch->n_layer == 80 && arch->n_head != n_head_kv;
  pc->n_expert = arch->n_expert;

  rank_tensors (pc, is_attn_v, pc->attn_v_rank, &pc->n_attn_v);
  /* n_attention_wv also counts fused QKV tensors. */
  for (guint i = 0; i < n; i++)
    if (qb_model_get_tensor (model, i)->role == QB_ROLE_ATTN_QKV)
      pc->n_attn_v++;
  rank_tensors (pc, is_ffn_down, pc->ffn_down_rank, &n_ffn_down);
  pc->n_layer = arch->n_layer ? (int) arch->n_layer : n_ffn_down;
  return pc;
}

void
qb_preset_context_free (QbPresetContext *pc)
{
  if (pc == NULL)
    return;
  g_object_unref (pc->model);
  g_free (pc->attn_v_rank);
  g_free (pc->ffn_down_rank);
  g_free (pc);
}

static gboolean
use_more_bits (int i, int n)
{
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static const char *
apply_pos_rule (const QbPosRule *rule, int i, int n, const char *current)
{
  gboolean pass = FALSE;

  switch (rule->kind)
    {
    case POS_NONE:
      return current;
    case POS_ALL:
      pass = TRUE;
      break;
    case POS_FIRST:
      pass = i < rule->arg;
      break;
    case POS_FIRST_FRAC:
      pass = i < n / rule->arg;
      break;
    case POS_MORE_BITS:
      pass = use_more_bits (i, n);
      break;
    }
  if (pass)
    return rule->then;
  return rule->otherwise ? rule->otherwise : current;
}

/* Tensors llama-quantize copies as they are. */
static gboolean
llama_keeps (const QbTensor *t)
{
  static const char * const never[] = {
    "_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
    "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
  };

  if (!g_str_has_suffix (t->name, "weight") || effective_dims (t) < 2)
    return TRUE;
  if (strcmp (t->name, "position_embd.weight") == 0 || strcmp (t->name, "token_types.weight") == 0)
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (never); i++)
    if (strstr (t->name, never[i]) != NULL)
      return TRUE;
  return FALSE;
}

static guint
block_of (const char *format)
{
  const QbFormat *f = qb_format_find (format);
  return f && f->block_size ? f->block_size : 1;
}

const char *
qb_preset_choose (QbPresetContext *pc, guint index)
{
  const QbPreset *p = pc->preset;
  const QbTensor *t = qb_model_get_tensor (pc->model, index);
  const char *type = p->base;
  gboolean is_output = t->role == QB_ROLE_OUTPUT
                       || (!pc->has_output && t->role == QB_ROLE_TOKEN_EMBD);

  if (llama_keeps (t))
    return QB_FORMAT_KEEP;
  /* Float file types are not "quantized": no per-role choices. */
  if (qb_llama_ftype_for_format (p->base) == 1 || qb_llama_ftype_for_format (p->base) == 32)
    return type;

  if (is_output)
    {
      if (pc->falcon || t->ne[0] % block_of (p->base) != 0)
        type = "Q8_0";
      else if (strcmp (p->base, "Q8_0") != 0)
        type = "Q6_K";
    }
  else if (is_attn_v (t))
    {
      type = apply_pos_rule (&p->attn_v, pc->attn_v_rank[index], pc->n_attn_v, type);
      if (p->attn_v_gqa4 && pc->n_gqa >= 4)
        type = p->attn_v_gqa4;
      if (pc->large_gqa && (strcmp (type, "Q3_K") == 0 || strcmp (type, "Q4_K") == 0))
        type = "Q5_K";
      if (pc->n_expert == 8)
        type = "Q8_0";
    }
  else if (t->role == QB_ROLE_ATTN_K && !t->is_bias && pc->n_expert == 8)
    type = "Q8_0";
  else if (is_ffn_down (t))
    {
      /* With several experts llama.cpp reads the layer from the name (a
       * layer has more than one ffn_down then). */
      int i = pc->n_expert > 1 && t->layer >= 0 ? t->layer : pc->ffn_down_rank[index];
      if (pc->falcon && strcmp (p->name, "Q4_K_M") == 0)
        type = i < pc->n_layer / 16 ? "Q6_K" : use_more_bits (i, pc->n_layer) ? "Q5_K" : "Q4_K";
      else if (pc->falcon && strcmp (p->name, "Q3_K_M") == 0)
        type = i < pc->n_layer / 16 ? "Q5_K" : use_more_bits (i, pc->n_layer) ? "Q4_K" : "Q3_K";
      else if (pc->falcon && strcmp (p->name, "Q3_K_L") == 0)
        type = "Q4_K";
      else if (pc->falcon && strcmp (p->name, "Q4_K_S") == 0)
        type = p->base;
      else
        type = apply_pos_rule (&p->ffn_down, i, pc->n_layer, type);
    }
  else if (t->role == QB_ROLE_ATTN_OUTPUT && !t->is_bias && !pc->falcon && pc->n_expert == 8)
    type = p->moe8_attn_output ? "Q5_K" : type;
  else if (t->role == QB_ROLE_ATTN_OUTPUT && !t->is_bias && p->attn_output)
    {
      if (!pc->falcon)
        type = p->attn_output;
      else if (strcmp (p->name, "Q3_K_L") == 0)
        type = "Q4_K";
    }
  else if (t->role == QB_ROLE_ATTN_QKV && !t->is_bias && p->attn_qkv)
    type = p->attn_qkv;
  return type;
}
