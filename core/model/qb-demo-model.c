/* SPDX-License-Identifier: MIT */
/* qb-demo-model.c — the demo model generator.
 *
 * Each tensor is cut into chunks of whole rows; a chunk's values come from
 * its own random stream, seeded by (seed, tensor, first row), so the file
 * does not depend on which thread made which chunk.
 */
#include "qb-demo-model.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "qb-family.h"
#include "qb-gguf.h"

#define CHUNK_VALUES 65536

/* ---- sizes ------------------------------------------------------------ */

void
qb_demo_model_spec_init (QbDemoModelSpec *spec)
{
  *spec = (QbDemoModelSpec) { .n_params = 0, .dtype = QB_DTYPE_F16, .seed = 1 };
}

static guint
round_up (guint v, guint m)
{
  return (v + m - 1) / m * m;
}

/* Shape rules shared by every size: 64-wide heads (128 from 2560 up),
 * grouped-query attention with 4 query heads per KV head where that
 * divides, a SwiGLU FFN of about 8/3 the width, rounded to 256. */
static void
dims_for_width (guint n_embd, gint64 n_params, QbDemoModelDims *d)
{
  guint head_dim = n_embd >= 2560 ? 128 : 64;

  memset (d, 0, sizeof *d);
  d->n_embd = n_embd;
  d->n_head = n_embd / head_dim;
  d->n_head_kv = d->n_head % 4 == 0 ? d->n_head / 4 : d->n_head;
  d->n_ff = round_up (n_embd * 8 / 3, 256);
  d->n_vocab = n_params >= 100000000 ? 32000 : n_params >= 20000000 ? 8192 : 512;
  d->n_ctx = n_params >= 100000000 ? 2048 : 512;
  d->n_layer = 1;
}

/* Biases and QK-norm weights (a few thousand values) are left out. */
gint64
qb_demo_model_count_params (const QbDemoModelDims *d)
{
  gint64 e = d->n_embd, kv = (gint64) d->n_embd / d->n_head * d->n_head_kv;
  gint64 per_layer = 2 * e * e + 2 * e * kv + 2 * e, moe;
  gint64 h = d->n_head, qr = d->q_lora_rank, kvr = d->kv_lora_rank;

  if (d->kv_lora_rank > 0)
    per_layer = 2 * e + (qr > 0 ? e * qr + qr + qr * h * d->head_k : e * h * d->head_k)
                + e * (kvr + d->n_rot) + kvr + kvr * h * (d->head_k - d->n_rot + d->head_v)
                + h * d->head_v * e;
  moe = e * d->n_expert + 3 * e * d->n_ff_exp * d->n_expert
        + (d->n_ff_shexp > 0 ? 3 * e * d->n_ff_shexp + e : 0);
  if (d->n_expert == 0)
    per_layer += 3 * e * d->n_ff;
  else
    per_layer += moe;
  return (d->tied ? 1 : 2) * (gint64) d->n_vocab * e + e + per_layer * d->n_layer
         + (d->n_expert > 0 ? (3 * e * d->n_ff - moe) * MIN (d->n_dense_lead, d->n_layer) : 0);
}

static const char *const known_archs[] = { "llama", "mixtral", "qwen2moe", "qwen3moe", "deepseek2" };

gboolean
qb_demo_model_arch_known (const char *arch)
{
  for (gsize i = 0; i < G_N_ELEMENTS (known_archs); i++)
    if (g_strcmp0 (arch, known_archs[i]) == 0)
      return TRUE;
  /* The dense families of qb-family.h, by their GGUF names. */
  return arch == NULL || (qb_family_lookup (arch) != NULL
                          && strcmp (qb_family_lookup (arch)->arch, arch) == 0);
}

static gboolean
arch_is (const QbDemoModelSpec *spec, const char *arch)
{
  return g_strcmp0 (spec->arch, arch) == 0;
}

static gboolean
arch_is_moe (const QbDemoModelSpec *spec)
{
  return arch_is (spec, "mixtral") || arch_is (spec, "qwen2moe") || arch_is (spec, "qwen3moe")
         || arch_is (spec, "deepseek2");
}

/* The layer count whose DeepSeek model comes closest to n_params (the
 * dense sizes' count would give about twice the parameters); never 27,
 * which llama.cpp takes for V2-Lite (no low-rank Q). */
static void
deepseek_fit_layers (gint64 n_params, QbDemoModelDims *d)
{
  QbDemoModelDims t = *d;
  gint64 two, three;

  t.n_layer = 2;
  two = qb_demo_model_count_params (&t);
  t.n_layer = 3;
  three = qb_demo_model_count_params (&t);
  d->n_layer = (guint) CLAMP ((n_params - two + (three - two) / 2) / (three - two) + 2, 2, 1000);
  if (d->n_layer == 27)
    d->n_layer = 26;
}

/* A mixture of experts of the same width: n_expert experts of a third of
 * the dense FFN (at least 256, so every format fits), a shared expert as
 * wide as the dense FFN for Qwen2-MoE. */
void
qb_demo_model_spec_dims (const QbDemoModelSpec *spec, QbDemoModelDims *d)
{
  qb_demo_model_choose_dims_for (spec->arch, spec->n_params, d);
  if (spec->n_layer > 0)
    d->n_layer = spec->n_layer;
  if (!arch_is_moe (spec))
    return;
  d->n_expert = spec->n_expert > 0 ? spec->n_expert : 8;
  d->n_expert_used = MIN (spec->n_expert_used > 0 ? spec->n_expert_used : 2, d->n_expert);
  d->n_ff_exp = MAX (256, d->n_ff / 3 / 256 * 256);
  d->n_ff_shexp = arch_is (spec, "qwen2moe") ? d->n_ff : 0;
  if (arch_is (spec, "mixtral"))          /* llama.feed_forward_length is the expert's */
    d->n_ff = d->n_ff_exp;
  if (arch_is (spec, "deepseek2"))
    {
      /* DeepSeek-V2-Lite's proportions: K heads of 1.5 head sizes (a
       * third of them rotated), V heads of one, a compressed KV of a
       * quarter and a low-rank Q of three quarters of the width (at
       * least 256, so every format fits); one dense layer first, one
       * shared expert as wide as a routed one; every head its own KV. */
      guint hd = d->n_embd / d->n_head;

      d->n_head_kv = d->n_head;
      d->head_k = hd + hd / 2;
      d->head_v = hd;
      d->n_rot = hd / 2;
      d->kv_lora_rank = MAX (256, d->n_embd / 4 / 256 * 256);
      d->n_dense_lead = MIN (1, d->n_layer);
      d->n_ff_shexp = d->n_ff_exp;
      d->q_lora_rank = MAX (256, d->n_embd * 3 / 4 / 256 * 256);
      if (spec->n_params > 0 && spec->n_layer == 0)
        deepseek_fit_layers (spec->n_params, d);
      /* llama.cpp takes a 27-layer deepseek2 for V2-Lite, whose Q has no
       * low-rank pair. */
      if (d->n_layer == 27)
        d->q_lora_rank = 0;
    }
}

void
qb_demo_model_choose_dims (gint64 n_params, QbDemoModelDims *dims)
{
  static const guint widths[] = { 256, 512, 768, 1024, 1536, 2048, 2560, 3072, 4096, 5120, 8192 };
  double best = G_MAXDOUBLE;

  /* The tiny default: four layers, rows of 256 and 768 values. */
  *dims = (QbDemoModelDims) { .n_layer = 4, .n_embd = 256, .n_ff = 768, .n_head = 4,
                              .n_head_kv = 2, .n_vocab = 512, .n_ctx = 512 };
  if (n_params <= qb_demo_model_count_params (dims))
    return;

  /* Otherwise the width whose layer count comes closest to the usual
   * proportion of about 64 hidden units per layer. */
  for (gsize i = 0; i < G_N_ELEMENTS (widths); i++)
    {
      QbDemoModelDims d;
      gint64 fixed, per_layer, layers;
      double score;

      dims_for_width (widths[i], n_params, &d);
      d.n_layer = 0;
      fixed = qb_demo_model_count_params (&d);
      d.n_layer = 1;
      per_layer = qb_demo_model_count_params (&d) - fixed;
      layers = (n_params - fixed + per_layer / 2) / per_layer;
      if (layers < 2)
        continue;
      d.n_layer = (guint) MIN (layers, 1000);
      score = fabs (log ((double) d.n_embd / (64.0 * d.n_layer)));
      if (score < best)
        {
          best = score;
          *dims = d;
        }
    }
}

void
qb_demo_model_choose_dims_for (const char *arch, gint64 n_params, QbDemoModelDims *dims)
{
  const QbFamily *f = qb_family_lookup (arch ? arch : "llama");
  /* llama.cpp's snapshot aborts on Gemma 2 sizes it does not know. */
  guint fixed_layers = f != NULL && strcmp (f->arch, "gemma2") == 0 ? 26 : 0;
  guint min_layers = f != NULL && f->swa == QB_SWA_PERIOD ? f->swa_period : 0;
  gboolean tied = f != NULL && f->tied_output;

  qb_demo_model_choose_dims (n_params, dims);
  dims->tied = tied;
  dims->n_layer = MAX (dims->n_layer, min_layers);
  if (fixed_layers == 0 || dims->n_layer == fixed_layers)
    return;
  dims->n_layer = fixed_layers;
  if (n_params > qb_demo_model_count_params (dims))
    {
      static const guint widths[] = { 256, 512, 768, 1024, 1536, 2048, 2560, 3072, 4096 };
      double best = G_MAXDOUBLE;

      for (gsize i = 0; i < G_N_ELEMENTS (widths); i++)
        {
          QbDemoModelDims d;
          double score;

          dims_for_width (widths[i], n_params, &d);
          d.n_layer = fixed_layers;
          d.tied = tied;
          score = fabs (log ((double) qb_demo_model_count_params (&d) / n_params));
          if (score < best)
            {
              best = score;
              *dims = d;
            }
        }
    }
}

gboolean
qb_demo_model_parse_size (const char *text, gint64 *n_params)
{
  char *end = NULL;
  double v, scale = 1;

  if (text == NULL || !g_ascii_isdigit (*text))
    return FALSE;
  v = g_ascii_strtod (text, &end);
  switch (g_ascii_toupper (*end))
    {
    case 'K': scale = 1e3; end++; break;
    case 'M': scale = 1e6; end++; break;
    case 'B': case 'G': scale = 1e9; end++; break;
    default: break;
    }
  if (*end != '\0' || !(v * scale >= 0) || v * scale > 1e13)
    return FALSE;
  *n_params = (gint64) (v * scale);
  return TRUE;
}

/* ---- vocabulary ------------------------------------------------------- */

static const char *const common_words[] = {
  "the", "and", "to", "a", "of", "was", "he", "she", "it", "in", "that", "her", "his", "they",
  "with", "said", "for", "on", "you", "had", "is", "but", "so", "day", "one", "at", "big",
  "little", "not", "were", "very", "be", "saw", "time", "up", "there", "all", "friends",
  "happy", "what", "play", "upon", "once", "girl", "boy", "named", "mom", "went", "do", "have",
  "are", "from", "wanted", "like", "this", "can", "out", "we", "could", "go", "an", "by", "as",
  "new", "help", "this", "would", "will", "their", "them", "about", "into", "more", "make",
  "model", "weight", "quant", "bench", "layer", "tensor", "hello", "world",
};

#define SPIECE_SPACE "\xe2\x96\x81"      /* U+2581, SentencePiece's word boundary */

enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6 };

typedef struct
{
  GPtrArray  *tokens;     /* char*, owned */
  GHashTable *seen;
  GArray     *scores;     /* float */
  GArray     *types;      /* gint32 */
  guint       limit;
} Vocab;

static void
vocab_add (Vocab *v, char *token, gint32 type)
{
  float score;

  if (v->tokens->len >= v->limit || g_hash_table_contains (v->seen, token))
    {
      g_free (token);
      return;
    }
  g_hash_table_add (v->seen, token);
  score = type == TOKEN_NORMAL ? -(float) v->tokens->len : 0.0f;
  g_ptr_array_add (v->tokens, token);
  g_array_append_val (v->scores, score);
  g_array_append_val (v->types, type);
}

/* <unk> <s> </s>, the 256 byte tokens, then pieces from most to least
 * likely: the boundary marker, single characters, common words, then
 * letter pairs and triples with and without the boundary marker. */
static void
build_vocab (Vocab *v, guint n_vocab, const char *arch)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";

  v->tokens = g_ptr_array_new_with_free_func (g_free);
  v->seen = g_hash_table_new (g_str_hash, g_str_equal);
  v->scores = g_array_new (FALSE, FALSE, sizeof (float));
  v->types = g_array_new (FALSE, FALSE, sizeof (gint32));
  v->limit = n_vocab;

  vocab_add (v, g_strdup ("<unk>"), TOKEN_UNKNOWN);
  vocab_add (v, g_strdup ("<s>"), TOKEN_CONTROL);
  vocab_add (v, g_strdup ("</s>"), TOKEN_CONTROL);
  /* llama.cpp sets attributes on Phi-3's <|endoftext|> (it looks the
   * token up when the model's name says Phi-3). */
  if (g_strcmp0 (arch, "phi3") == 0)
    vocab_add (v, g_strdup ("<|endoftext|>"), TOKEN_CONTROL);
  for (guint b = 0; b < 256; b++)
    vocab_add (v, g_strdup_printf ("<0x%02X>", b), TOKEN_BYTE);
  vocab_add (v, g_strdup (SPIECE_SPACE), TOKEN_NORMAL);
  for (const char *c = chars; *c; c++)
    vocab_add (v, g_strndup (c, 1), TOKEN_NORMAL);
  for (gsize i = 0; i < G_N_ELEMENTS (common_words); i++)
    vocab_add (v, g_strconcat (SPIECE_SPACE, common_words[i], NULL), TOKEN_NORMAL);
  for (int len = 2; len <= 4 && v->tokens->len < n_vocab; len++)
    for (int space = 1; space >= 0; space--)
      {
        guint count = 1;
        for (int k = 0; k < len; k++)
          count *= 26;
        for (guint i = 0; i < count && v->tokens->len < n_vocab; i++)
          {
            char piece[8];
            guint x = i;
            for (int k = len - 1; k >= 0; k--, x /= 26)
              piece[k] = (char) ('a' + x % 26);
            piece[len] = '\0';
            vocab_add (v, space ? g_strconcat (SPIECE_SPACE, piece, NULL) : g_strdup (piece),
                       TOKEN_NORMAL);
          }
      }
}

static void
vocab_clear (Vocab *v)
{
  g_hash_table_unref (v->seen);
  g_ptr_array_unref (v->tokens);
  g_array_unref (v->scores);
  g_array_unref (v->types);
}

/* ---- random values ---------------------------------------------------- */

static inline guint64
splitmix64 (guint64 *state)
{
  guint64 z = (*state += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static inline double
uniform01 (guint64 *state)
{
  return ((double) (splitmix64 (state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Unit-variance heavy-tailed value: 95% a near-Gaussian (sum of four
 * uniforms), 5% a Laplace of deviation 3.  Excess kurtosis about 1.4,
 * before outlier channels add more. */
static inline float
heavy_tailed (guint64 *state)
{
  guint64 r = splitmix64 (state);

  if ((r & 0xff) < 13)
    {
      double mag = -log (uniform01 (state)) * (3.0 / G_SQRT2);
      return (float) ((r & 0x100) ? mag : -mag) * 0.845f;
    }
  {
    guint64 a = (r >> 8) & 0x3fff, b = (r >> 22) & 0x3fff, c = (r >> 36) & 0x3fff, d = (r >> 50) & 0x3fff;
    double s = (double) (a + b + c + d) * (1.0 / 16384.0) - 2.0 + 2.0 / 16384.0;
    return (float) (s * 1.7320508075688772) * 0.845f;
  }
}

/* ---- the tensor plan --------------------------------------------------- */

typedef enum { KIND_EMBD, KIND_OUTPUT, KIND_NORM, KIND_Q, KIND_K, KIND_V, KIND_O,
               KIND_GATE, KIND_UP, KIND_DOWN, KIND_BIAS, KIND_ROUTER, KIND_SHEXP_GATE,
               KIND_QKV, KIND_GATE_UP, KIND_ROPE_FACTORS } Kind;

typedef struct
{
  char    name[48];
  Kind    kind;
  int     layer;
  gint64  ne[3];
  gint64  n_rows;          /* ne[1] * ne[2] */
  guint   n_dims;
  QbDType dtype;
  double  sigma;           /* scale of the values (the norms' spread) */
  double  gain;            /* norms: values around this (1 but for a dense family's output norm) */
  guint64 stream;          /* seeds the values: the tensor's index, or (role, layer) in the
                              dense families (see plan_dense) */
} PlannedTensor;

typedef struct
{
  guint   tensor;
  gint64  row;
  gint64  n_rows;
} Chunk;

typedef struct
{
  QbDemoModelSpec  spec;
  const QbFamily  *family;           /* a dense family other than llama, or NULL */
  QbDemoModelDims  dims;
  GArray          *tensors;          /* PlannedTensor */
  GArray          *chunks;           /* Chunk */
  float           *hidden_scale;     /* n_embd: outlier channels of the hidden state */
  float           *ffn_scale;        /* n_ff: the same inside the FFN */
  QbGgufWriter    *writer;
  float          **buffers;          /* per thread: floats of one chunk */
  guint8         **bytes;            /* per thread: the chunk encoded */
  GCancellable    *cancellable;
  GMutex           error_lock;
  GError          *error;
} Gen;

/* A tensor of ne0 × ne1 × ne2 (ne1, ne2 0 for fewer dimensions); names
 * end in .weight unless they say otherwise. */
static PlannedTensor *
plan_add3 (Gen *g, Kind kind, int layer, const char *name, gint64 ne0, gint64 ne1, gint64 ne2,
           double sigma)
{
  PlannedTensor t = { .kind = kind, .layer = layer, .ne = { ne0, MAX (ne1, 1), MAX (ne2, 1) },
                      .sigma = sigma, .gain = 1.0, .stream = g->tensors->len };
  const char *suffix = strchr (name, '.') ? "" : ".weight";

  if (layer >= 0)
    g_snprintf (t.name, sizeof t.name, "blk.%d.%s%s", layer, name, suffix);
  else
    g_snprintf (t.name, sizeof t.name, "%s%s", name, suffix);
  t.n_dims = ne2 > 0 ? 3 : ne1 > 0 ? 2 : 1;
  t.n_rows = t.ne[1] * t.ne[2];
  t.dtype = t.n_dims == 1 || kind == KIND_ROUTER ? QB_DTYPE_F32 : g->spec.dtype;
  g_array_append_val (g->tensors, t);
  return &g_array_index (g->tensors, PlannedTensor, g->tensors->len - 1);
}

static void
plan_add (Gen *g, Kind kind, int layer, const char *name, gint64 ne0, gint64 ne1, double sigma)
{
  plan_add3 (g, kind, layer, name, ne0, ne1, 0, sigma);
}

/* The FFN of a mixture of experts: the router (F32, as convert_hf_to_gguf
 * keeps it), the experts as 3-D tensors, the shared expert and its gate. */
static void
plan_moe_ffn (Gen *g, guint l, double s)
{
  const QbDemoModelDims *d = &g->dims;
  double e = d->n_embd;

  plan_add (g, KIND_ROUTER, l, "ffn_gate_inp", d->n_embd, d->n_expert, 6.0 / sqrt (e));
  plan_add3 (g, KIND_GATE, l, "ffn_gate_exps", d->n_embd, d->n_ff_exp, d->n_expert, s / sqrt (e));
  plan_add3 (g, KIND_UP, l, "ffn_up_exps", d->n_embd, d->n_ff_exp, d->n_expert, s / sqrt (e));
  plan_add3 (g, KIND_DOWN, l, "ffn_down_exps", d->n_ff_exp, d->n_embd, d->n_expert,
             0.7 * s / sqrt ((double) d->n_ff_exp));
  if (g->spec.sigmoid)
    plan_add (g, KIND_BIAS, l, "exp_probs_b.bias", d->n_expert, 0, 0.1);
  if (d->n_ff_shexp == 0)
    return;
  if (!arch_is (&g->spec, "deepseek2"))   /* DeepSeek's shared experts have no gate */
    plan_add (g, KIND_SHEXP_GATE, l, "ffn_gate_inp_shexp", d->n_embd, 0, 1.0 / sqrt (e));
  plan_add (g, KIND_GATE, l, "ffn_gate_shexp", d->n_embd, d->n_ff_shexp, s / sqrt (e));
  plan_add (g, KIND_UP, l, "ffn_up_shexp", d->n_embd, d->n_ff_shexp, s / sqrt (e));
  plan_add (g, KIND_DOWN, l, "ffn_down_shexp", d->n_ff_shexp, d->n_embd,
            0.7 * s / sqrt ((double) d->n_ff_shexp));
}

/* DeepSeek's multi-head latent attention (llama.cpp's names and shapes):
 * a low-rank Q (or attn_q for a 27-layer model), the compressed KV with
 * the shared RoPE key, its expansion to each head's K and V.  The
 * products of normed ranks have no outlier columns (KIND_O's). */
static void
plan_latent_attention (Gen *g, guint l, double s)
{
  const QbDemoModelDims *d = &g->dims;
  double e = d->n_embd;
  gint64 h = d->n_head, qr = d->q_lora_rank, kvr = d->kv_lora_rank;

  if (qr > 0)
    {
      plan_add (g, KIND_Q, l, "attn_q_a", d->n_embd, qr, s / sqrt (e));
      plan_add (g, KIND_NORM, l, "attn_q_a_norm", qr, 0, 0.05);
      plan_add (g, KIND_O, l, "attn_q_b", qr, h * d->head_k, s / sqrt ((double) qr));
    }
  else
    plan_add (g, KIND_Q, l, "attn_q", d->n_embd, h * d->head_k, s / sqrt (e));
  plan_add (g, KIND_K, l, "attn_kv_a_mqa", d->n_embd, kvr + d->n_rot, s / sqrt (e));
  plan_add (g, KIND_NORM, l, "attn_kv_a_norm", kvr, 0, 0.05);
  plan_add (g, KIND_O, l, "attn_kv_b", kvr, h * (d->head_k - d->n_rot + d->head_v),
            s / sqrt ((double) kvr));
  plan_add (g, KIND_O, l, "attn_output", h * d->head_v, d->n_embd,
            0.7 * s / sqrt ((double) (h * d->head_v)));
}

/* A few channels of the hidden state carry much larger values in trained
 * models, the same channels in every layer; the FFN has its own few. */
static float *
outlier_scales (guint n, guint64 seed)
{
  float *s = g_new (float, n);
  guint64 state = seed;
  guint n_outliers = MAX (2, n / 256);

  for (guint i = 0; i < n; i++)
    s[i] = 1.0f;
  for (guint k = 0; k < n_outliers; k++)
    s[splitmix64 (&state) % n] = (float) (3.0 + 3.0 * uniform01 (&state));
  return s;
}

/* ---- the dense families of qb-family.h -------------------------------- */

/* A tensor the LLaMA plan has, seeded as slot 0..8 of its layer (-1:
 * outside) in that plan, so that every family of one size and seed shares
 * it. */
static PlannedTensor *
plan_slot (Gen *g, Kind kind, int layer, int slot, const char *name, gint64 ne0, gint64 ne1,
           double sigma)
{
  PlannedTensor *t = plan_add3 (g, kind, layer, name, ne0, ne1, 0, sigma);

  t->stream = layer < 0 ? (guint64) slot : 1 + (guint64) layer * 9 + (guint64) slot;
  return t;
}

/* A tensor only some families have: its own stream per (extra, layer). */
static PlannedTensor *
plan_extra (Gen *g, Kind kind, int layer, int extra, const char *name, gint64 ne0, gint64 ne1,
            double sigma)
{
  PlannedTensor *t = plan_add3 (g, kind, layer, name, ne0, ne1, 0, sigma);

  t->stream = (G_GUINT64_CONSTANT (1) << 20) + (guint64) (layer + 1) * 16 + (guint64) extra;
  return t;
}

static void
plan_dense_layer (Gen *g, guint l, double s)
{
  const QbDemoModelDims *d = &g->dims;
  const QbFamily *f = g->family;
  double e = d->n_embd;
  gint64 kv = (gint64) d->n_embd / d->n_head * d->n_head_kv, hd = d->n_embd / d->n_head;

  plan_slot (g, KIND_NORM, l, 0, "attn_norm", d->n_embd, 0, 0.05);
  if (f->fused_qkv)
    plan_extra (g, KIND_QKV, l, 0, "attn_qkv", d->n_embd, d->n_embd + 2 * kv, s / sqrt (e));
  else
    {
      plan_slot (g, KIND_Q, l, 1, "attn_q", d->n_embd, d->n_embd, s / sqrt (e));
      plan_slot (g, KIND_K, l, 2, "attn_k", d->n_embd, kv, s / sqrt (e));
      plan_slot (g, KIND_V, l, 3, "attn_v", d->n_embd, kv, 0.7 * s / sqrt (e));
    }
  if (f->qkv_bias)
    {
      plan_extra (g, KIND_BIAS, l, 1, "attn_q.bias", d->n_embd, 0, 0.1);
      plan_extra (g, KIND_BIAS, l, 2, "attn_k.bias", kv, 0, 0.1);
      plan_extra (g, KIND_BIAS, l, 3, "attn_v.bias", kv, 0, 0.1);
    }
  if (f->qk_norm)
    {
      plan_extra (g, KIND_NORM, l, 4, "attn_q_norm", hd, 0, 0.2);
      plan_extra (g, KIND_NORM, l, 5, "attn_k_norm", hd, 0, 0.2);
    }
  plan_slot (g, KIND_O, l, 4, "attn_output", d->n_embd, d->n_embd, 0.7 * s / sqrt (e));
  if (f->post_norms)
    plan_extra (g, KIND_NORM, l, 6, "post_attention_norm", d->n_embd, 0, 0.05);
  plan_slot (g, KIND_NORM, l, 5, "ffn_norm", d->n_embd, 0, 0.05);
  if (f->fused_gate_up)
    plan_extra (g, KIND_GATE_UP, l, 7, "ffn_up", d->n_embd, 2 * (gint64) d->n_ff, s / sqrt (e));
  else
    {
      plan_slot (g, KIND_GATE, l, 6, "ffn_gate", d->n_embd, d->n_ff, s / sqrt (e));
      plan_slot (g, KIND_UP, l, 7, "ffn_up", d->n_embd, d->n_ff, s / sqrt (e));
    }
  plan_slot (g, KIND_DOWN, l, 8, "ffn_down", d->n_ff, d->n_embd, 0.7 * s / sqrt ((double) d->n_ff));
  if (f->post_norms)
    plan_extra (g, KIND_NORM, l, 8, "post_ffw_norm", d->n_embd, 0, 0.05);
}

/* Logits of about 3 nats' spread (the output norm's gain), so that
 * perplexity shows errors in the pass. */
static void
plan_dense (Gen *g, double *layer_scales)
{
  const QbDemoModelDims *d = &g->dims;
  double e = d->n_embd, out_sigma = d->tied ? 0.02 : 0.5 / sqrt (e);
  PlannedTensor *norm;

  plan_slot (g, KIND_EMBD, -1, 0, "token_embd", d->n_embd, d->n_vocab, 0.02);
  for (guint l = 0; l < d->n_layer; l++)
    plan_dense_layer (g, l, layer_scales[l]);
  norm = plan_slot (g, KIND_NORM, -1, 1 + 9 * (int) d->n_layer, "output_norm", d->n_embd, 0, 0.1);
  norm->gain = 3.0 / (sqrt (e) * out_sigma);
  if (!d->tied)
    plan_slot (g, KIND_OUTPUT, -1, 2 + 9 * (int) d->n_layer, "output", d->n_embd, d->n_vocab, out_sigma);
}

static void
plan_model (Gen *g)
{
  const QbDemoModelDims *d = &g->dims;
  double e = d->n_embd, kv = (double) d->n_embd / d->n_head * d->n_head_kv;
  guint64 state = g->spec.seed ^ G_GUINT64_CONSTANT (0x5eed);
  double phase = 6.283 * uniform01 (&state);

  g_autofree double *scales = g_new (double, MAX (d->n_layer, 1));

  /* Layer scales wander, and the first and last layers run larger. */
  for (guint l = 0; l < d->n_layer; l++)
    {
      scales[l] = (1.0 + 0.2 * sin (1.3 * l + phase)) * (1.0 + 0.1 * uniform01 (&state));
      if (l == 0 || l + 1 == d->n_layer)
        scales[l] *= 1.25;
    }
  if (g->family != NULL)
    plan_dense (g, scales);
  if (g->family != NULL && g->spec.longrope)
    {
      /* Divisors that grow towards the low frequencies, as real ones do:
       * short ones near 1, long ones up to about 1 + sigma (real long ones
       * reach the tens). */
      guint n = d->n_embd / d->n_head / 2;
      plan_extra (g, KIND_ROPE_FACTORS, -1, 9, "rope_factors_short", n, 0, 0.3);
      plan_extra (g, KIND_ROPE_FACTORS, -1, 10, "rope_factors_long", n, 0, 40.0);
    }
  if (g->family == NULL)
    plan_add (g, KIND_EMBD, -1, "token_embd", d->n_embd, d->n_vocab, 0.02);
  for (guint l = 0; l < d->n_layer && g->family == NULL; l++)
    {
      double s = scales[l];
      plan_add (g, KIND_NORM, l, "attn_norm", d->n_embd, 0, 0.05);
      if (d->kv_lora_rank > 0)
        {
          plan_latent_attention (g, l, s);
          goto ffn;
        }
      plan_add (g, KIND_Q, l, "attn_q", d->n_embd, d->n_embd, s / sqrt (e));
      plan_add (g, KIND_K, l, "attn_k", d->n_embd, (gint64) kv, s / sqrt (e));
      plan_add (g, KIND_V, l, "attn_v", d->n_embd, (gint64) kv, 0.7 * s / sqrt (e));
      if (arch_is (&g->spec, "qwen2moe"))
        {
          plan_add (g, KIND_BIAS, l, "attn_q.bias", d->n_embd, 0, 0.1);
          plan_add (g, KIND_BIAS, l, "attn_k.bias", (gint64) kv, 0, 0.1);
          plan_add (g, KIND_BIAS, l, "attn_v.bias", (gint64) kv, 0, 0.1);
        }
      if (arch_is (&g->spec, "qwen3moe"))
        {
          plan_add (g, KIND_NORM, l, "attn_q_norm", d->n_embd / d->n_head, 0, 0.05);
          plan_add (g, KIND_NORM, l, "attn_k_norm", d->n_embd / d->n_head, 0, 0.05);
        }
      plan_add (g, KIND_O, l, "attn_output", d->n_embd, d->n_embd, 0.7 * s / sqrt (e));
    ffn:
      plan_add (g, KIND_NORM, l, "ffn_norm", d->n_embd, 0, 0.05);
      if (d->n_expert > 0 && l >= d->n_dense_lead)
        {
          plan_moe_ffn (g, l, s);
          continue;
        }
      plan_add (g, KIND_GATE, l, "ffn_gate", d->n_embd, d->n_ff, s / sqrt (e));
      plan_add (g, KIND_UP, l, "ffn_up", d->n_embd, d->n_ff, s / sqrt (e));
      plan_add (g, KIND_DOWN, l, "ffn_down", d->n_ff, d->n_embd, 0.7 * s / sqrt ((double) d->n_ff));
    }
  if (g->family == NULL)
    {
      plan_add (g, KIND_NORM, -1, "output_norm", d->n_embd, 0, 0.1);
      plan_add (g, KIND_OUTPUT, -1, "output", d->n_embd, d->n_vocab, 0.5 / sqrt (e));
    }

  for (guint i = 0; i < g->tensors->len; i++)
    {
      const PlannedTensor *t = &g_array_index (g->tensors, PlannedTensor, i);
      gint64 per_chunk = MAX (1, CHUNK_VALUES / t->ne[0]);
      for (gint64 r = 0; r < t->n_rows; r += per_chunk)
        {
          Chunk c = { i, r, MIN (per_chunk, t->n_rows - r) };
          g_array_append_val (g->chunks, c);
        }
    }
}

static void
fill_chunk (Gen *g, const PlannedTensor *t, const Chunk *c, float *out)
{
  guint64 state = g->spec.seed * G_GUINT64_CONSTANT (0x9e3779b97f4a7c15) ^
                  (t->stream << 40) ^ (guint64) c->row;
  /* Outlier channels scale the columns of the matrices that read the
   * hidden state (and of ffn_down, which reads the FFN's). */
  const float *col = t->kind == KIND_DOWN ? g->ffn_scale :
                     t->kind == KIND_NORM || t->kind == KIND_O || t->kind == KIND_BIAS
                     || t->kind == KIND_ROPE_FACTORS ? NULL : g->hidden_scale;

  splitmix64 (&state);
  for (gint64 r = 0; r < c->n_rows; r++)
    {
      /* Embedding rows (tokens) differ in scale, like frequent and rare words. */
      double row_scale = t->kind == KIND_EMBD ? 0.6 + 0.8 * uniform01 (&state) : 1.0;
      float *row = out + r * t->ne[0];

      for (gint64 j = 0; j < t->ne[0]; j++)
        {
          float z = heavy_tailed (&state);
          if (t->kind == KIND_NORM)
            row[j] = (float) t->gain * MAX (0.05f, 1.0f + (float) t->sigma * z);
          else if (t->kind == KIND_ROPE_FACTORS)
            row[j] = (float) (1.0 + t->sigma * pow ((double) j / MAX (1, t->ne[0] - 1), 2)
                                    * (0.9 + 0.2 * uniform01 (&state)));
          else
            row[j] = (float) (t->sigma * row_scale) * z * (col ? col[j] : 1.0f);
        }
    }
}

static void
set_error (Gen *g, GError *error)
{
  g_mutex_lock (&g->error_lock);
  if (g->error == NULL)
    g_atomic_pointer_set (&g->error, error);
  else
    g_error_free (error);
  g_mutex_unlock (&g->error_lock);
}

static void
write_chunk (gint64 item, guint thread, gpointer data)
{
  Gen *g = data;
  const Chunk *c = &g_array_index (g->chunks, Chunk, item);
  const PlannedTensor *t = &g_array_index (g->tensors, PlannedTensor, c->tensor);
  gint64 n = c->n_rows * t->ne[0];
  float *values = g->buffers[thread];
  GError *error = NULL;
  gconstpointer out = values;
  guint64 elem = 4;

  if (g_atomic_pointer_get (&g->error) != NULL || g_cancellable_is_cancelled (g->cancellable))
    return;
  fill_chunk (g, t, c, values);
  if (t->dtype == QB_DTYPE_F16)
    {
      guint16 *h = (guint16 *) g->bytes[thread];
      for (gint64 i = 0; i < n; i++)
        h[i] = qb_fp32_to_fp16 (values[i]);
      out = h;
      elem = 2;
    }
  if (!qb_gguf_writer_write_tensor_range (g->writer, c->tensor, (guint64) (c->row * t->ne[0]) * elem,
                                          out, (guint64) n * elem, &error))
    set_error (g, error);
}

/* ---- the file --------------------------------------------------------- */

/* llama.cpp's deepseek2 keys: MLA's sizes, the dense layers, the
 * routing (V2: softmax, × 1; V3: sigmoid, renormalised, × 2.5). */
static void
set_deepseek_metadata (Gen *g)
{
  const QbDemoModelDims *d = &g->dims;
  QbGgufWriter *w = g->writer;

  if (d->q_lora_rank > 0)
    qb_gguf_writer_set_uint32 (w, "deepseek2.attention.q_lora_rank", d->q_lora_rank);
  qb_gguf_writer_set_uint32 (w, "deepseek2.attention.kv_lora_rank", d->kv_lora_rank);
  qb_gguf_writer_set_uint32 (w, "deepseek2.attention.key_length", d->head_k);
  qb_gguf_writer_set_uint32 (w, "deepseek2.attention.value_length", d->head_v);
  qb_gguf_writer_set_uint32 (w, "deepseek2.leading_dense_block_count", d->n_dense_lead);
  qb_gguf_writer_set_uint32 (w, "deepseek2.expert_shared_count", d->n_ff_shexp / d->n_ff_exp);
  qb_gguf_writer_set_float32 (w, "deepseek2.expert_weights_scale", g->spec.sigmoid ? 2.5f : 1.0f);
  qb_gguf_writer_set_bool (w, "deepseek2.expert_weights_norm", g->spec.sigmoid);
  qb_gguf_writer_set_uint32 (w, "deepseek2.expert_gating_func", g->spec.sigmoid ? 2 : 1);
  /* llama.cpp requires it; it acts only with YaRN. */
  qb_gguf_writer_set_float32 (w, "deepseek2.rope.scaling.yarn_log_multiplier", 0.0707f);
  if (g->spec.yarn)
    {
      qb_gguf_writer_set_string (w, "deepseek2.rope.scaling.type", "yarn");
      qb_gguf_writer_set_float32 (w, "deepseek2.rope.scaling.factor", 4.0f);
      qb_gguf_writer_set_uint32 (w, "deepseek2.rope.scaling.original_context_length", d->n_ctx / 4);
    }
  if (g->spec.n_group > 1)
    {
      qb_gguf_writer_set_uint32 (w, "deepseek2.expert_group_count", g->spec.n_group);
      qb_gguf_writer_set_uint32 (w, "deepseek2.expert_group_used_count",
                                 g->spec.topk_group > 0 ? g->spec.topk_group : g->spec.n_group);
    }
}

static void
set_metadata (Gen *g)
{
  const QbDemoModelDims *d = &g->dims;
  QbGgufWriter *w = g->writer;
  g_autofree char *name = NULL;
  Vocab v;
  double millions = qb_demo_model_count_params (d) / 1e6;
  /* Mixtral-style models are "llama" with experts, as in llama.cpp. */
  const char *family = g->spec.arch == NULL || arch_is (&g->spec, "mixtral") ? "llama"
                       : g->spec.arch;
  char key[96];

  const char *label = g->family != NULL ? g->family->arch : NULL;

  name = millions >= 1000 ? g_strdup_printf ("Quantbench demo%s%s %.1fB", label ? " " : "", label ? label : "", millions / 1000)
         : millions >= 10 ? g_strdup_printf ("Quantbench demo%s%s %.0fM", label ? " " : "", label ? label : "", millions)
         : g_strdup_printf ("Quantbench demo%s%s %.1fM", label ? " " : "", label ? label : "", millions);
  qb_gguf_writer_set_string (w, "general.architecture", family);
  qb_gguf_writer_set_string (w, "general.name", name);
  qb_gguf_writer_set_uint32 (w, "general.file_type", g->spec.dtype == QB_DTYPE_F16 ? 1 : 0);
#define KEY(k) (g_snprintf (key, sizeof key, "%s." k, family), key)
  qb_gguf_writer_set_uint32 (w, KEY ("vocab_size"), d->n_vocab);
  qb_gguf_writer_set_uint32 (w, KEY ("context_length"), d->n_ctx);
  qb_gguf_writer_set_uint32 (w, KEY ("embedding_length"), d->n_embd);
  qb_gguf_writer_set_uint32 (w, KEY ("block_count"), d->n_layer);
  qb_gguf_writer_set_uint32 (w, KEY ("feed_forward_length"), d->n_ff);
  qb_gguf_writer_set_uint32 (w, KEY ("rope.dimension_count"),
                             d->kv_lora_rank > 0 ? d->n_rot : d->n_embd / d->n_head);
  qb_gguf_writer_set_uint32 (w, KEY ("attention.head_count"), d->n_head);
  qb_gguf_writer_set_uint32 (w, KEY ("attention.head_count_kv"), d->n_head_kv);
  /* Gemma's epsilon is 10⁻⁶; Qwen3 and Gemma 3 use a RoPE base of 10⁶
   * (Gemma 3's local layers 10⁴). */
  qb_gguf_writer_set_float32 (w, KEY ("attention.layer_norm_rms_epsilon"),
                              g->family && g->family->embd_scale ? 1e-6f : 1e-5f);
  qb_gguf_writer_set_float32 (w, KEY ("rope.freq_base"),
                              g->family && g->family->qk_norm ? 1000000.0f : 10000.0f);
  if (g->family != NULL && g->family->embd_scale)
    {
      qb_gguf_writer_set_uint32 (w, KEY ("attention.key_length"), d->n_embd / d->n_head);
      qb_gguf_writer_set_uint32 (w, KEY ("attention.value_length"), d->n_embd / d->n_head);
    }
  /* Windows and caps small enough to act in short evaluations. */
  if (g->family != NULL && g->family->swa != QB_SWA_NONE)
    qb_gguf_writer_set_uint32 (w, KEY ("attention.sliding_window"), d->n_ctx / 8);
  if (g->family != NULL && g->family->attn_softcap > 0)
    qb_gguf_writer_set_float32 (w, KEY ("attn_logit_softcapping"), 4.0f);
  if (g->family != NULL && g->family->final_softcap > 0)
    qb_gguf_writer_set_float32 (w, KEY ("final_logit_softcapping"), 15.0f);
  if (g->family != NULL && g->spec.longrope)
    {
      /* convert_hf_to_gguf's attention factor for a context extended
       * 8 times: sqrt (1 + ln 8 / ln orig). */
      guint orig = d->n_ctx / 8;
      qb_gguf_writer_set_uint32 (w, KEY ("rope.scaling.original_context_length"), orig);
      qb_gguf_writer_set_float32 (w, KEY ("rope.scaling.attn_factor"),
                                  (float) sqrt (1 + log (8.0) / log ((double) orig)));
    }
  if (d->n_expert > 0)
    {
      qb_gguf_writer_set_uint32 (w, KEY ("expert_count"), d->n_expert);
      qb_gguf_writer_set_uint32 (w, KEY ("expert_used_count"), d->n_expert_used);
      if (strcmp (family, "llama") != 0)
        qb_gguf_writer_set_uint32 (w, KEY ("expert_feed_forward_length"), d->n_ff_exp);
      if (d->n_ff_shexp > 0 && !arch_is (&g->spec, "deepseek2"))
        qb_gguf_writer_set_uint32 (w, KEY ("expert_shared_feed_forward_length"), d->n_ff_shexp);
    }
  if (arch_is (&g->spec, "deepseek2"))
    set_deepseek_metadata (g);
#undef KEY
  qb_gguf_writer_set_uint32 (w, "quantbench.demo.version", QB_DEMO_MODEL_VERSION);
  qb_gguf_writer_set_uint64 (w, "quantbench.demo.seed", g->spec.seed);

  build_vocab (&v, d->n_vocab, family);
  qb_gguf_writer_set_string (w, "tokenizer.ggml.model", "llama");
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", (const char *const *) v.tokens->pdata,
                                   v.tokens->len);
  qb_gguf_writer_set_array (w, "tokenizer.ggml.scores", QB_GGUF_TYPE_FLOAT32, v.scores->data, v.scores->len);
  qb_gguf_writer_set_array (w, "tokenizer.ggml.token_type", QB_GGUF_TYPE_INT32, v.types->data, v.types->len);
  qb_gguf_writer_set_uint32 (w, "tokenizer.ggml.unknown_token_id", 0);
  qb_gguf_writer_set_uint32 (w, "tokenizer.ggml.bos_token_id", 1);
  qb_gguf_writer_set_uint32 (w, "tokenizer.ggml.eos_token_id", 2);
  qb_gguf_writer_set_bool (w, "tokenizer.ggml.add_bos_token", TRUE);
  qb_gguf_writer_set_bool (w, "tokenizer.ggml.add_eos_token", FALSE);
  g_assert (v.tokens->len == d->n_vocab);
  vocab_clear (&v);
}

gboolean
qb_demo_model_write (const QbDemoModelSpec *spec, const char *path, QbWorkers *workers,
                     GCancellable *cancellable, GError **error)
{
  g_autoptr(QbWorkers) own_workers = NULL;
  g_autoptr(QbGgufWriter) writer = qb_gguf_writer_new ();
  Gen g = { .spec = *spec, .writer = writer, .cancellable = cancellable };
  guint n_threads, ffn_width;
  gboolean ok = FALSE;

  g_return_val_if_fail (spec->dtype == QB_DTYPE_F16 || spec->dtype == QB_DTYPE_F32, FALSE);
  if (!qb_demo_model_arch_known (spec->arch))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "demo model: unknown family '%s' (known: %s, mixtral, qwen2moe, qwen3moe)",
                   spec->arch, qb_family_names ());
      return FALSE;
    }

  if (workers == NULL)
    workers = own_workers = qb_workers_new (0);
  n_threads = qb_workers_get_n_threads (workers);
  qb_demo_model_spec_dims (spec, &g.dims);
  if (!arch_is_moe (spec) && qb_family_lookup (spec->arch) != NULL && !arch_is (spec, "llama"))
    g.family = qb_family_lookup (spec->arch);
  if ((spec->sigmoid || spec->n_group > 1 || spec->yarn) && !arch_is (spec, "deepseek2"))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "demo model: sigmoid and grouped routing and YaRN are for the deepseek2 family only");
      return FALSE;
    }
  if (spec->longrope && !arch_is (spec, "phi3"))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "demo model: LongRoPE is for the phi3 family only");
      return FALSE;
    }
  ffn_width = MAX (g.dims.n_ff, MAX (g.dims.n_ff_exp, g.dims.n_ff_shexp));
  g.tensors = g_array_new (FALSE, FALSE, sizeof (PlannedTensor));
  g.chunks = g_array_new (FALSE, FALSE, sizeof (Chunk));
  g.hidden_scale = outlier_scales (g.dims.n_embd, spec->seed ^ G_GUINT64_CONSTANT (0xa11ce));
  g.ffn_scale = outlier_scales (ffn_width, spec->seed ^ G_GUINT64_CONSTANT (0xb0b));
  g_mutex_init (&g.error_lock);
  plan_model (&g);

  set_metadata (&g);
  for (guint i = 0; i < g.tensors->len; i++)
    {
      const PlannedTensor *t = &g_array_index (g.tensors, PlannedTensor, i);
      qb_gguf_writer_add_tensor (writer, t->name, t->n_dims, t->ne, t->dtype);
    }

  g.buffers = g_new0 (float *, n_threads);
  g.bytes = g_new0 (guint8 *, n_threads);
  for (guint i = 0; i < n_threads; i++)
    {
      gsize n = MAX (CHUNK_VALUES, MAX (g.dims.n_embd, ffn_width));
      g.buffers[i] = g_new (float, n);
      g.bytes[i] = g_new (guint8, 2 * n);
    }

  if (qb_gguf_writer_begin (writer, path, error))
    {
      qb_workers_run (workers, g.chunks->len, write_chunk, &g);
      if (g.error != NULL)
        g_propagate_error (error, g_steal_pointer (&g.error));
      else if (!g_cancellable_set_error_if_cancelled (cancellable, error))
        ok = qb_gguf_writer_finish (writer, error);
      if (!ok)
        qb_gguf_writer_abort (writer);
    }

  for (guint i = 0; i < n_threads; i++)
    {
      g_free (g.buffers[i]);
      g_free (g.bytes[i]);
    }
  g_free (g.buffers);
  g_free (g.bytes);
  g_free (g.hidden_scale);
  g_free (g.ffn_scale);
  g_array_unref (g.tensors);
  g_array_unref (g.chunks);
  g_mutex_clear (&g.error_lock);
  return ok;
}

char *
qb_demo_model_get_default (GCancellable *cancellable, GError **error)
{
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "quantbench", NULL);
  g_autofree char *name = g_strdup_printf ("demo-v%d-tiny-f16-seed1.gguf", QB_DEMO_MODEL_VERSION);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  QbDemoModelSpec spec;

  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&path);
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s: cannot create: %s",
                   dir, g_strerror (errsv));
      return NULL;
    }
  qb_demo_model_spec_init (&spec);
  if (!qb_demo_model_write (&spec, path, NULL, cancellable, error))
    return NULL;
  return g_steal_pointer (&path);
}
