/* SPDX-License-Identifier: MIT */
/* qb-llama.c — finding a LLaMA-family model's weights and hyper-parameters,
 * and swapping weights for quantized ones.  The arithmetic is in
 * qb-llama-forward.c. */
#include "qb-llama-private.h"
#include "qb-llama-accum-private.h"
#include "qb-llama-device-private.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK (qb-llama-error-quark, qb_llama_error)

static gboolean
invalid (GError **error, QbLlama *llama, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
invalid (GError **error, QbLlama *llama, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_INVALID, "%s: %s",
               qb_model_get_path (llama->model), msg);
  return FALSE;
}

/* ---- weights ---------------------------------------------------------- */

static void
weight_init (QbWeight *w, QbModel *model, guint index)
{
  const QbTensor *t = qb_model_get_tensor (model, index);

  memset (w, 0, sizeof *w);
  w->t = t;
  w->index = index;
  w->n_cols = t->ne[0];
  w->n_rows = qb_tensor_n_rows (t);
  /* Stored F32 rows are used where they lie (the mapping is page-aligned
   * and GGUF aligns tensor data; check anyway). */
  if (t->dtype == QB_DTYPE_F32 && ((guintptr) t->data % sizeof (float)) == 0)
    w->f32 = t->data;
}

static void
weight_clear_override (QbWeight *w)
{
  g_clear_pointer (&w->bytes, g_bytes_unref);
  w->format = NULL;
  w->row_bytes = 0;
  memset (&w->params, 0, sizeof w->params);
}

const float *
qb_weight_rows (QbLlama *llama, const QbWeight *w, gint64 row, gint64 n, float *buf,
                GError **error)
{
  row += w->row0;
  if (w->format != NULL)
    {
      const guint8 *data = g_bytes_get_data (w->bytes, NULL);
      for (gint64 r = 0; r < n; r++)
        w->format->dequantize_row (&w->params, data + (guint64) (row + r) * w->row_bytes,
                                   buf + r * w->n_cols, w->n_cols);
      return buf;
    }
  if (w->f32 != NULL)
    return w->f32 + row * w->n_cols;
  if (!qb_model_read_rows (llama->model, w->index, row, n, buf, error))
    return NULL;
  return buf;
}

static gboolean
vector_refresh (QbLlama *llama, QbVector *v, GError **error)
{
  const float *rows;

  if (v->w.t == NULL)
    return TRUE;
  if (v->values == NULL)
    v->values = g_new (float, v->w.n_cols * v->w.n_rows);
  rows = qb_weight_rows (llama, &v->w, 0, v->w.n_rows, v->values, error);
  if (rows == NULL)
    return FALSE;
  if (rows != v->values)
    memcpy (v->values, rows, sizeof (float) * v->w.n_cols * v->w.n_rows);
  for (gint64 i = 0; v->offset != 0 && i < v->w.n_cols * v->w.n_rows; i++)
    v->values[i] += v->offset;
  return TRUE;
}

/* ---- finding the tensors ---------------------------------------------- */

/* Where the tensor with this role goes. */
static gpointer
slot_for (QbLlama *llama, const QbTensor *t, gboolean *is_vector)
{
  QbLayer *l;

  *is_vector = FALSE;
  if (t->layer < 0)
    {
      switch (t->role)
        {
        case QB_ROLE_TOKEN_EMBD:  return &llama->tok_embd;
        case QB_ROLE_OUTPUT:      return &llama->output;
        case QB_ROLE_OUTPUT_NORM: *is_vector = TRUE; return &llama->output_norm;
        default:                  return NULL;
        }
    }
  if ((guint) t->layer >= llama->p.n_layer)
    return NULL;
  l = &llama->layers[t->layer];
  if (t->is_bias)
    {
      *is_vector = TRUE;
      switch (t->role)
        {
        case QB_ROLE_ATTN_Q: return &l->bq;
        case QB_ROLE_ATTN_K: return &l->bk;
        case QB_ROLE_ATTN_V: return &l->bv;
        case QB_ROLE_FFN_EXP_PROBS_B: return &l->exp_probs_b;
        default:             return NULL;
        }
    }
  /* A Hugging Face checkpoint's expert matrices, each in its place
   * (find_tensors has checked the expert index). */
  if (t->expert >= 0)
    {
      QbExpertMat which = t->role == QB_ROLE_FFN_GATE_EXPS ? QB_EXPERT_GATE
                          : t->role == QB_ROLE_FFN_UP_EXPS ? QB_EXPERT_UP : QB_EXPERT_DOWN;

      if (l->expert_mats == NULL)
        l->expert_mats = g_new0 (QbWeight, QB_EXPERT_N_MATS * llama->p.n_expert);
      return &l->expert_mats[which * llama->p.n_expert + (guint) t->expert];
    }
  switch (t->role)
    {
    case QB_ROLE_ATTN_NORM:   *is_vector = TRUE; return &l->attn_norm;
    case QB_ROLE_FFN_NORM:    *is_vector = TRUE; return &l->ffn_norm;
    case QB_ROLE_ATTN_Q_NORM: *is_vector = TRUE; return &l->q_norm;
    case QB_ROLE_ATTN_K_NORM: *is_vector = TRUE; return &l->k_norm;
    case QB_ROLE_ATTN_POST_NORM: *is_vector = TRUE; return &l->attn_post_norm;
    case QB_ROLE_FFN_POST_NORM:  *is_vector = TRUE; return &l->ffn_post_norm;
    case QB_ROLE_ATTN_QKV:    return &l->wq;      /* split into views by split_fused () */
    case QB_ROLE_ATTN_Q:      return &l->wq;
    case QB_ROLE_ATTN_K:      return &l->wk;
    case QB_ROLE_ATTN_V:      return &l->wv;
    case QB_ROLE_ATTN_OUTPUT: return &l->wo;
    case QB_ROLE_FFN_GATE:    return &l->gate;
    case QB_ROLE_FFN_UP:      return &l->up;
    case QB_ROLE_FFN_DOWN:    return &l->down;
    case QB_ROLE_FFN_GATE_INP:   return &l->gate_inp;
    case QB_ROLE_FFN_GATE_EXPS:  return &l->gate_exps;
    case QB_ROLE_FFN_UP_EXPS:    return &l->up_exps;
    case QB_ROLE_FFN_DOWN_EXPS:  return &l->down_exps;
    case QB_ROLE_FFN_GATE_SHEXP: return &l->gate_shexp;
    case QB_ROLE_FFN_UP_SHEXP:   return &l->up_shexp;
    case QB_ROLE_FFN_DOWN_SHEXP: return &l->down_shexp;
    case QB_ROLE_FFN_GATE_INP_SHEXP: *is_vector = TRUE; return &l->gate_inp_shexp;
    case QB_ROLE_FFN_EXP_PROBS_B:    *is_vector = TRUE; return &l->exp_probs_b;
    case QB_ROLE_ATTN_Q_A_NORM:      *is_vector = TRUE; return &l->q_a_norm;
    case QB_ROLE_ATTN_KV_A_NORM:     *is_vector = TRUE; return &l->kv_a_norm;
    case QB_ROLE_ATTN_Q_A:     return &l->wq_a;
    case QB_ROLE_ATTN_Q_B:     return &l->wq_b;
    case QB_ROLE_ATTN_KV_A_MQA: return &l->wkv_a;
    case QB_ROLE_ATTN_KV_B:    return &l->wkv_b;
    default:                  return NULL;
    }
}

static gboolean
check_shape (QbLlama *llama, const QbWeight *w, const char *what, gint64 cols, gint64 rows,
             GError **error)
{
  if (w->t == NULL)
    return invalid (error, llama, "the model has no %s tensor", what);
  if (w->n_cols != cols || w->n_rows != rows || w->t->n_dims > 2)
    return invalid (error, llama, "tensor '%s' has shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                    "]; a %s of this model should be [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                    w->t->name, w->n_cols, w->n_rows, what, cols, rows);
  return TRUE;
}

/* A norm the layer must have when its family uses it, and must not have
 * when the family does not (it would be silently ignored). */
static gboolean
check_optional (QbLlama *llama, QbVector *v, gboolean used, const char *what, guint layer,
                gint64 n, GError **error)
{
  g_autofree char *name = g_strdup_printf ("layer %u %s", layer, what);

  if (used)
    return check_shape (llama, &v->w, name, n, 1, error);
  if (v->w.t != NULL && !llama->family_override)
    return invalid (error, llama, "tensor '%s' (%s) is not part of a %s model", v->w.t->name,
                    what, llama->p.family->arch);
  return TRUE;
}

static void
weight_view (QbWeight *view, const QbWeight *whole, gint64 row0, gint64 n_rows)
{
  *view = *whole;
  view->row0 = row0;
  view->n_rows = n_rows;
}

/* Phi-3's attn_qkv (Q, K, V rows) and ffn_up (gate rows, then up rows)
 * become views, so every product and hook runs as for separate tensors. */
static gboolean
split_fused (QbLlama *llama, QbLayer *l, guint i, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  gint64 Q = (gint64) p->n_head * p->head_dim, KV = (gint64) p->n_head_kv * p->head_dim;

  if (l->wq.t != NULL && l->wq.t->role == QB_ROLE_ATTN_QKV)
    {
      QbWeight whole = l->wq;
      if (l->wk.t != NULL || l->wv.t != NULL || whole.n_rows != Q + 2 * KV || whole.t->n_dims > 2)
        return invalid (error, llama, "tensor '%s' has %" G_GINT64_FORMAT " rows; a fused Q/K/V "
                        "projection of this model has %" G_GINT64_FORMAT, whole.t->name,
                        whole.n_rows, Q + 2 * KV);
      weight_view (&l->wq, &whole, 0, Q);
      weight_view (&l->wk, &whole, Q, KV);
      weight_view (&l->wv, &whole, Q + KV, KV);
    }
  if (l->gate.t == NULL && l->up.t != NULL && llama->p.family->fused_gate_up)
    {
      QbWeight whole = l->up;
      if (whole.n_rows != 2 * (gint64) p->n_ff || whole.t->n_dims > 2)
        return invalid (error, llama, "layer %u: tensor '%s' has %" G_GINT64_FORMAT " rows; a "
                        "fused gate and up projection of this model has %" G_GINT64_FORMAT,
                        i, whole.t->name, whole.n_rows, 2 * (gint64) p->n_ff);
      weight_view (&l->gate, &whole, 0, p->n_ff);
      weight_view (&l->up, &whole, p->n_ff, p->n_ff);
    }
  return TRUE;
}

/* A 3-D expert tensor: n_expert matrices of cols × rows. */
static gboolean
check_experts (QbLlama *llama, const QbWeight *w, guint layer, const char *what, gint64 cols,
               gint64 rows, GError **error)
{
  gint64 n = llama->p.n_expert;

  if (w->t == NULL)
    return invalid (error, llama, "layer %u has no %s tensor", layer, what);
  if (w->t->n_dims != 3 || w->t->ne[0] != cols || w->t->ne[1] != rows || w->t->ne[2] != n)
    return invalid (error, llama, "tensor '%s' has shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                    ", %" G_GINT64_FORMAT "]; the %s of this model should be [%" G_GINT64_FORMAT
                    ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", w->t->name, w->t->ne[0],
                    w->t->ne[1], w->t->ne[2], what, cols, rows, n);
  return TRUE;
}

/* A Hugging Face checkpoint's experts: every expert's gate, up and down,
 * each a matrix, and no 3-D tensor beside them. */
static gboolean
check_expert_mats (QbLlama *llama, QbLayer *l, guint i, GError **error)
{
  static const char *const what[] = { "FFN gate", "FFN up", "FFN down" };
  const QbLlamaParams *p = &llama->p;
  gint64 E = p->n_embd, F = p->n_ff_exp;

  if (l->gate_exps.t != NULL || l->up_exps.t != NULL || l->down_exps.t != NULL)
    return invalid (error, llama, "layer %u has both 3-D expert tensors and one matrix per expert", i);
  for (guint m = 0; m < QB_EXPERT_N_MATS; m++)
    for (guint e = 0; e < p->n_expert; e++)
      {
        g_autofree char *name = g_strdup_printf ("layer %u expert %u %s", i, e, what[m]);
        gboolean down = m == QB_EXPERT_DOWN;

        if (!check_shape (llama, &l->expert_mats[m * p->n_expert + e], name, down ? F : E,
                          down ? E : F, error))
          return FALSE;
      }
  return TRUE;
}

/* The FFN of a mixture-of-experts layer: router, experts, and the shared
 * expert exactly when the metadata announces one. */
static gboolean
check_moe_layer (QbLlama *llama, guint i, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbLayer *l = &llama->layers[i];
  gint64 E = p->n_embd, F = p->n_ff_exp, S = p->n_ff_shexp;
  g_autofree char *n_r = g_strdup_printf ("layer %u router", i);
  g_autofree char *n_sg = g_strdup_printf ("layer %u shared expert gate", i);
  g_autofree char *n_s1 = g_strdup_printf ("layer %u shared expert FFN gate", i);
  g_autofree char *n_s2 = g_strdup_printf ("layer %u shared expert FFN up", i);
  g_autofree char *n_s3 = g_strdup_printf ("layer %u shared expert FFN down", i);

  if (l->gate.t != NULL || l->up.t != NULL || l->down.t != NULL)
    return invalid (error, llama, "layer %u has both a dense FFN and experts", i);
  if (!check_shape (llama, &l->gate_inp, n_r, E, p->n_expert, error))
    return FALSE;
  if (l->expert_mats != NULL)
    {
      if (!check_expert_mats (llama, l, i, error))
        return FALSE;
    }
  else if (!check_experts (llama, &l->gate_exps, i, "expert FFN gate", E, F, error)
           || !check_experts (llama, &l->up_exps, i, "expert FFN up", E, F, error)
           || !check_experts (llama, &l->down_exps, i, "expert FFN down", F, E, error))
    return FALSE;
  /* DeepSeek-V3's selection bias, where the family reads one. */
  if (!check_optional (llama, &l->exp_probs_b, p->family->moe_routing_keys && l->exp_probs_b.w.t,
                       "expert selection bias", i, p->n_expert, error))
    return FALSE;
  if (S == 0)
    return l->gate_shexp.t == NULL ? TRUE
           : invalid (error, llama, "layer %u has a shared expert the metadata does not announce", i);
  if (!p->family->shexp_gated)
    return check_optional (llama, &l->gate_inp_shexp, FALSE, "shared expert gate", i, E, error)
           && check_shape (llama, &l->gate_shexp, n_s1, E, S, error)
           && check_shape (llama, &l->up_shexp, n_s2, E, S, error)
           && check_shape (llama, &l->down_shexp, n_s3, S, E, error);
  return check_shape (llama, &l->gate_inp_shexp.w, n_sg, E, 1, error)
         && check_shape (llama, &l->gate_shexp, n_s1, E, S, error)
         && check_shape (llama, &l->up_shexp, n_s2, E, S, error)
         && check_shape (llama, &l->down_shexp, n_s3, S, E, error);
}

/* The dense FFN, or the mixture of experts. */
static gboolean
check_ffn (QbLlama *llama, guint i, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbLayer *l = &llama->layers[i];
  gint64 E = p->n_embd;
  g_autofree char *n_g = g_strdup_printf ("layer %u FFN gate", i);
  g_autofree char *n_u = g_strdup_printf ("layer %u FFN up", i);
  g_autofree char *n_d = g_strdup_printf ("layer %u FFN down", i);

  if (p->n_expert > 0 && !l->dense)
    return check_moe_layer (llama, i, error);
  if (l->gate_inp.t != NULL || l->gate_exps.t != NULL || l->expert_mats != NULL
      || l->gate_shexp.t != NULL || l->exp_probs_b.w.t != NULL)
    return p->n_expert > 0
           ? invalid (error, llama, "layer %u has experts but is one of the %u leading dense layers "
                      "the metadata gives", i, p->n_layer_dense_lead)
           : invalid (error, llama, "layer %u has experts but the metadata gives no expert count", i);
  return check_shape (llama, &l->gate, n_g, E, p->n_ff, error)
         && check_shape (llama, &l->up, n_u, E, p->n_ff, error)
         && check_shape (llama, &l->down, n_d, p->n_ff, E, error);
}

/* A matrix the family does not read: refused when the file has it. */
static gboolean
check_absent (QbLlama *llama, const QbWeight *w, const char *what, GError **error)
{
  if (w->t != NULL && !llama->family_override)
    return invalid (error, llama, "tensor '%s' (%s) is not part of a %s model", w->t->name, what,
                    llama->p.family->arch);
  return TRUE;
}

/* Multi-head latent attention's tensors, with the sizes the metadata
 * gives; no separate K or V. */
static gboolean
check_latent (QbLlama *llama, QbLayer *l, guint i, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  gint64 E = p->n_embd, H = p->n_head, dk = p->head_dim, dv = p->head_dim_v;
  gint64 qr = p->q_lora_rank, kvr = p->kv_lora_rank, nope = dk - p->n_rot;
  g_autofree char *n_q = g_strdup_printf ("layer %u Q projection", i);
  g_autofree char *n_qa = g_strdup_printf ("layer %u Q down-projection (attn_q_a)", i);
  g_autofree char *n_qb = g_strdup_printf ("layer %u Q up-projection (attn_q_b)", i);
  g_autofree char *n_kva = g_strdup_printf ("layer %u compressed KV projection (attn_kv_a_mqa)", i);
  g_autofree char *n_kvb = g_strdup_printf ("layer %u KV expansion (attn_kv_b)", i);
  g_autofree char *n_o = g_strdup_printf ("layer %u attention output", i);

  if (!check_absent (llama, &l->wk, "K projection", error)
      || !check_absent (llama, &l->wv, "V projection", error)
      || (qr > 0 && !check_absent (llama, &l->wq, "Q projection beside a low-rank Q", error))
      || (qr == 0 && !check_absent (llama, &l->wq_a, "low-rank Q without a q_lora_rank", error))
      || (qr == 0 && !check_absent (llama, &l->wq_b, "low-rank Q without a q_lora_rank", error))
      || !check_optional (llama, &l->q_a_norm, qr > 0, "low-rank Q norm", i, qr, error)
      || !check_optional (llama, &l->kv_a_norm, TRUE, "compressed KV norm", i, kvr, error))
    return FALSE;
  if (qr > 0 ? !check_shape (llama, &l->wq_a, n_qa, E, qr, error)
               || !check_shape (llama, &l->wq_b, n_qb, qr, H * dk, error)
             : !check_shape (llama, &l->wq, n_q, E, H * dk, error))
    return FALSE;
  return check_shape (llama, &l->wkv_a, n_kva, E, kvr + p->n_rot, error)
         && check_shape (llama, &l->wkv_b, n_kvb, kvr, H * (nope + dv), error)
         && check_shape (llama, &l->wo, n_o, H * dv, E, error);
}

/* Q, K, V and the output, one head after another. */
static gboolean
check_heads (QbLlama *llama, QbLayer *l, guint i, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  gint64 E = p->n_embd, Q = (gint64) p->n_head * p->head_dim, KV = (gint64) p->n_head_kv * p->head_dim;
  g_autofree char *n_q = g_strdup_printf ("layer %u Q projection", i);
  g_autofree char *n_k = g_strdup_printf ("layer %u K projection", i);
  g_autofree char *n_v = g_strdup_printf ("layer %u V projection", i);
  g_autofree char *n_o = g_strdup_printf ("layer %u attention output", i);
  const char *latent = "multi-head latent attention (DeepSeek)";

  return check_absent (llama, &l->wq_a, latent, error) && check_absent (llama, &l->wq_b, latent, error)
         && check_absent (llama, &l->wkv_a, latent, error)
         && check_absent (llama, &l->wkv_b, latent, error)
         && check_optional (llama, &l->q_a_norm, FALSE, latent, i, 0, error)
         && check_optional (llama, &l->kv_a_norm, FALSE, latent, i, 0, error)
         && check_shape (llama, &l->wq, n_q, E, Q, error)
         && check_shape (llama, &l->wk, n_k, E, KV, error)
         && check_shape (llama, &l->wv, n_v, E, KV, error)
         && check_shape (llama, &l->wo, n_o, Q, E, error);
}

static gboolean
check_layer (QbLlama *llama, guint i, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  const QbFamily *f = p->family;
  QbLayer *l = &llama->layers[i];
  gint64 E = p->n_embd, Q = (gint64) p->n_head * p->head_dim, KV = (gint64) p->n_head_kv * p->head_dim;
  g_autofree char *n_norm = g_strdup_printf ("layer %u attention norm", i);
  g_autofree char *n_fnorm = g_strdup_printf ("layer %u FFN norm", i);
  gboolean bias;

  if (!split_fused (llama, l, i, error))
    return FALSE;
  bias = l->bq.w.t || l->bk.w.t || l->bv.w.t;
  if (bias && p->kv_lora_rank > 0)
    return invalid (error, llama, "layer %u has Q/K/V biases, which multi-head latent attention "
                    "does not read", i);
  if (!check_shape (llama, &l->attn_norm.w, n_norm, E, 1, error)
      || !check_shape (llama, &l->ffn_norm.w, n_fnorm, E, 1, error)
      || !(p->kv_lora_rank > 0 ? check_latent (llama, l, i, error) : check_heads (llama, l, i, error))
      || !check_ffn (llama, i, error)
      || !check_optional (llama, &l->q_norm, f->qk_norm, "Q norm", i, p->head_dim, error)
      || !check_optional (llama, &l->k_norm, f->qk_norm, "K norm", i, p->head_dim, error)
      || !check_optional (llama, &l->attn_post_norm, f->post_norms, "attention output norm", i, E, error)
      || !check_optional (llama, &l->ffn_post_norm, f->post_norms, "FFN output norm", i, E, error))
    return FALSE;
  if (bias && (!check_shape (llama, &l->bq.w, "Q bias", Q, 1, error)
               || !check_shape (llama, &l->bk.w, "K bias", KV, 1, error)
               || !check_shape (llama, &l->bv.w, "V bias", KV, 1, error)))
    return FALSE;
  if (i == 0)
    llama->p.qkv_bias = bias;
  else if (bias != llama->p.qkv_bias)
    return invalid (error, llama, "layer %u %s Q/K/V biases unlike layer 0", i,
                    bias ? "has" : "lacks");
  return TRUE;
}

/* Tensors the pass does not read but whose absence would change the
 * result: refuse rather than evaluate something else. */
static gboolean
unsupported_tensor (QbLlama *llama, const QbTensor *t, GError **error)
{
  if (t->expert >= 0 && (t->layer < 0 || (guint) t->expert >= llama->p.n_expert
                         || (t->role != QB_ROLE_FFN_GATE_EXPS && t->role != QB_ROLE_FFN_UP_EXPS
                             && t->role != QB_ROLE_FFN_DOWN_EXPS)))
    {
      g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_INVALID,
                   "%s: '%s' is expert %d; the model has %u experts", qb_model_get_path (llama->model),
                   t->name, t->expert, llama->p.n_expert);
      return TRUE;
    }
  return FALSE;
}

/* GGUF's LongRoPE tensors (convert_hf_to_gguf writes Phi-3's
 * rope_scaling long_factor/short_factor as these). */
typedef struct {
  guint freqs;        /* rope_freqs (LLaMA 3.1), or G_MAXUINT */
  guint short_f;      /* rope_factors_short */
  guint long_f;       /* rope_factors_long */
} RopeTensors;

static gboolean
find_tensors (QbLlama *llama, RopeTensors *rope, GError **error)
{
  QbModel *model = llama->model;
  gboolean hf = qb_model_get_file_kind (model) == QB_MODEL_FILE_SAFETENSORS;

  rope->freqs = rope->short_f = rope->long_f = G_MAXUINT;
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      gboolean is_vector;
      gpointer slot;

      if (unsupported_tensor (llama, t, error))
        return FALSE;
      if (!hf && strcmp (t->name, "rope_factors_short.weight") == 0)
        {
          rope->short_f = i;
          continue;
        }
      if (!hf && strcmp (t->name, "rope_factors_long.weight") == 0)
        {
          rope->long_f = i;
          continue;
        }
      /* GGUF's rope_freqs holds frequency divisors; Hugging Face's per-layer
       * rotary_emb.inv_freq buffers hold the frequencies themselves, which
       * follow from rope_theta: those are left alone. */
      if (t->role == QB_ROLE_ROPE_FREQS)
        {
          if (t->layer < 0 && !hf)
            rope->freqs = i;
          continue;
        }
      slot = slot_for (llama, t, &is_vector);
      if (slot == NULL)
        continue;
      if (is_vector)
        {
          QbVector *v = slot;
          weight_init (&v->w, model, i);
          /* Every vector but a bias is an RMSNorm weight. */
          v->offset = hf && llama->p.family->hf_norm_offset && !t->is_bias ? 1.0f : 0.0f;
        }
      else
        weight_init (slot, model, i);
    }
  return TRUE;
}

/* ---- hyper-parameters ------------------------------------------------- */

static double
json_number (JsonObject *o, const char *name, double fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) != G_TYPE_STRING
         ? json_node_get_double (n) : fallback;
}

/* config.json's language-model part (multimodal configs nest it). */
static JsonObject *
hf_text_config (QbLlama *llama)
{
  JsonObject *config = (JsonObject *) qb_model_get_hf_config (llama->model);
  JsonNode *text = config ? json_object_get_member (config, "text_config") : NULL;

  if (text != NULL && JSON_NODE_HOLDS_OBJECT (text) && !json_object_has_member (config, "num_hidden_layers"))
    return json_node_get_object (text);
  return config;
}

/* LLaMA 3.1's rope scaling, as convert_hf_to_gguf.py turns it into
 * rope_freqs: long wavelengths are slowed down by `factor`, short ones
 * kept, and those between interpolated. */
static void
llama3_factors (QbLlama *llama, JsonObject *rs)
{
  const QbLlamaParams *p = &llama->p;
  double factor = json_number (rs, "factor", 8.0);
  double low = json_number (rs, "low_freq_factor", 1.0);
  double high = json_number (rs, "high_freq_factor", 4.0);
  double old_ctx = json_number (rs, "original_max_position_embeddings", 8192);
  double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;

  llama->rope_factors = g_new (float, p->n_rot / 2);
  for (guint i = 0; i < p->n_rot / 2; i++)
    {
      double freq = 1.0 / pow (p->rope_base, 2.0 * i / p->n_rot);
      double wavelen = 2 * G_PI / freq, f;

      if (wavelen < high_wavelen)
        f = 1;
      else if (wavelen > low_wavelen)
        f = factor;
      else
        {
          double smooth = (old_ctx / wavelen - low) / (high - low);
          f = 1.0 / ((1 - smooth) / factor + smooth);
        }
      llama->rope_factors[i] = (float) f;
    }
}

/* One of LongRoPE's factor lists (n_rot / 2 positive numbers), or NULL
 * with error set. */
static float *
hf_factor_list (QbLlama *llama, JsonObject *rs, const char *name, GError **error)
{
  JsonNode *node = json_object_get_member (rs, name);
  JsonArray *a = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  guint n = llama->p.n_rot / 2;
  g_autofree float *f = NULL;

  if (a == NULL || json_array_get_length (a) != n)
    {
      invalid (error, llama, "config.json rope_scaling.%s is not a list of %u numbers", name, n);
      return NULL;
    }
  f = g_new (float, n);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *v = json_array_get_element (a, i);
      f[i] = JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) != G_TYPE_STRING
             ? (float) json_node_get_double (v) : NAN;
      if (!(f[i] > 0) || !isfinite (f[i]))
        {
          invalid (error, llama, "config.json rope_scaling.%s[%u] is not a positive number", name, i);
          return NULL;
        }
    }
  return g_steal_pointer (&f);
}

/* Phi-3's LongRoPE ("longrope", earlier "su"): factor lists for short and
 * long contexts, and cos/sin scaled by the attention factor that
 * transformers and convert_hf_to_gguf derive from the context extension
 * (unless the config names it). */
static gboolean
hf_longrope (QbLlama *llama, JsonObject *rs, GError **error)
{
  JsonObject *config = hf_text_config (llama);
  double max_pos = json_number (config, "max_position_embeddings", llama->p.n_ctx_train);
  double orig = json_number (rs, "original_max_position_embeddings",
                             json_number (config, "original_max_position_embeddings", max_pos));
  double scale = orig > 0 ? max_pos / orig : 1;

  if (!(orig >= 1 && orig <= G_MAXUINT32))
    return invalid (error, llama, "config.json original_max_position_embeddings is %g", orig);
  llama->rope_factors = hf_factor_list (llama, rs, "short_factor", error);
  if (llama->rope_factors == NULL)
    return FALSE;
  llama->rope_factors_long = hf_factor_list (llama, rs, "long_factor", error);
  if (llama->rope_factors_long == NULL)
    return FALSE;
  llama->p.n_ctx_orig = (guint) orig;
  llama->p.rope_attn_factor = (float) json_number (rs, "attention_factor",
                                                   scale > 1 ? sqrt (1 + log (scale) / log (orig)) : 1);
  if (!(llama->p.rope_attn_factor > 0 && llama->p.rope_attn_factor < 100))
    return invalid (error, llama, "config.json rope_scaling.attention_factor is %g",
                    llama->p.rope_attn_factor);
  return TRUE;
}

/* DeepSeek's YaRN as its modeling code and convert_hf_to_gguf read it:
 * the attention mscale from mscale_all_dim (cos/sin scaled by
 * mscale / mscale_all_dim, which must be 1). */
static gboolean
hf_yarn (QbLlama *llama, JsonObject *rs, GError **error)
{
  JsonObject *config = hf_text_config (llama);
  double factor = json_number (rs, "factor", 0);
  double orig = json_number (rs, "original_max_position_embeddings",
                             json_number (config, "max_position_embeddings", 0));
  double mscale = json_number (rs, "mscale", 1), all_dim = json_number (rs, "mscale_all_dim", 0);

  if (!(factor >= 1 && factor <= 1e4) || !(orig >= 1 && orig <= G_MAXUINT32))
    return invalid (error, llama, "config.json rope_scaling: YaRN factor %g or original context %g "
                    "out of range", factor, orig);
  if (mscale != all_dim && all_dim != 0)
    return invalid (error, llama, "config.json rope_scaling: mscale %g differs from mscale_all_dim "
                    "%g (cos/sin scaled by their ratio is not supported)", mscale, all_dim);
  llama->p.rope_freq_scale = (float) (1.0 / factor);
  llama->p.rope_yarn = 1.0f;
  llama->p.n_ctx_orig = (guint) orig;
  llama->yarn_beta_fast = (float) json_number (rs, "beta_fast", 32);
  llama->yarn_beta_slow = (float) json_number (rs, "beta_slow", 1);
  llama->yarn_log_mul = (float) (0.1 * all_dim);
  if (!(llama->yarn_beta_fast > 0 && llama->yarn_beta_slow > 0 && llama->yarn_beta_fast < 1e6
        && llama->yarn_beta_slow < 1e6))
    return invalid (error, llama, "config.json rope_scaling: YaRN betas out of range");
  return TRUE;
}

static gboolean
hf_rope_scaling (QbLlama *llama, GError **error)
{
  JsonObject *config = (JsonObject *) qb_model_get_hf_config (llama->model);
  JsonNode *node = config ? json_object_get_member (config, "rope_scaling") : NULL;
  JsonObject *rs;
  const char *type;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return TRUE;
  rs = json_node_get_object (node);
  type = json_object_has_member (rs, "rope_type") ? json_object_get_string_member (rs, "rope_type")
                                                  : json_object_get_string_member_with_default (rs, "type", NULL);
  if (g_strcmp0 (type, "linear") == 0)
    llama->p.rope_freq_scale = (float) (1.0 / json_number (rs, "factor", 1.0));
  else if (g_strcmp0 (type, "llama3") == 0)
    llama3_factors (llama, rs);
  else if (g_strcmp0 (type, "longrope") == 0 || g_strcmp0 (type, "su") == 0)
    return hf_longrope (llama, rs, error);
  else if (g_strcmp0 (type, "yarn") == 0 && llama->p.family->mla)
    return hf_yarn (llama, rs, error);
  else if (g_strcmp0 (type, "default") != 0)
    {
      g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_UNSUPPORTED,
                   "%s: config.json rope_scaling type '%s' is not supported%s",
                   qb_model_get_path (llama->model), type ? type : "(none)",
                   g_strcmp0 (type, "yarn") == 0 ? " (the forward pass has no YaRN yet: "
                   "DeepSeek-V2/V3 and other long-context models that use it cannot be "
                   "evaluated)" : "");
      return FALSE;
    }
  return TRUE;
}

static double gguf_value (QbLlama *llama, const char *suffix, double fallback);

static gboolean
gguf_rope (QbLlama *llama, GError **error)
{
  QbGguf *g = qb_model_get_gguf (llama->model);
  const char *family = qb_model_get_arch (llama->model)->family;
  g_autofree char *k_rot = g_strdup_printf ("%s.rope.dimension_count", family);
  g_autofree char *k_type = g_strdup_printf ("%s.rope.scaling.type", family);
  g_autofree char *k_factor = g_strdup_printf ("%s.rope.scaling.factor", family);
  g_autofree char *k_linear = g_strdup_printf ("%s.rope.scale_linear", family);
  g_autofree char *k_attn = g_strdup_printf ("%s.rope.scaling.attn_factor", family);
  g_autofree char *k_orig = g_strdup_printf ("%s.rope.scaling.original_context_length", family);
  const char *type = qb_gguf_get_string (g, k_type);
  guint64 n_rot, orig;
  double factor;

  if (qb_gguf_get_uint (g, k_rot, &n_rot) && n_rot > 0 && n_rot <= llama->p.head_dim)
    llama->p.n_rot = (guint) n_rot;
  if (qb_gguf_get_double (g, k_linear, &factor) && factor > 0)
    llama->p.rope_freq_scale = (float) (1.0 / factor);
  /* LongRoPE, as llama.cpp reads it (the factors are tensors). */
  if (qb_gguf_get_double (g, k_attn, &factor))
    {
      if (!(factor > 0 && factor < 100))
        return invalid (error, llama, "%s is %g", k_attn, factor);
      llama->p.rope_attn_factor = (float) factor;
    }
  if (qb_gguf_get_uint (g, k_orig, &orig) && orig > 0 && orig <= G_MAXUINT32)
    llama->p.n_ctx_orig = (guint) orig;
  if (type != NULL && strcmp (type, "yarn") == 0 && llama->p.family->mla)
    {
      /* llama.cpp's: betas 32 and 1 (GGUF has no keys for them). */
      if (!qb_gguf_get_double (g, k_factor, &factor) || !(factor >= 1 && factor <= 1e4))
        return invalid (error, llama, "YaRN needs %s from 1 to 10000", k_factor);
      llama->p.rope_freq_scale = (float) (1.0 / factor);
      llama->p.rope_yarn = 1.0f;
      llama->yarn_log_mul = (float) gguf_value (llama, "rope.scaling.yarn_log_multiplier", 0);
      return TRUE;
    }
  if (type != NULL && strcmp (type, "none") != 0)
    {
      if (strcmp (type, "linear") != 0)
        {
          g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_UNSUPPORTED,
                       "%s: RoPE scaling '%s' (%s) is not supported%s",
                       qb_model_get_path (llama->model), type, k_type,
                       strcmp (type, "yarn") == 0 ? " (the forward pass has no YaRN yet: "
                       "DeepSeek-V2/V3 and other long-context models that use it cannot be "
                       "evaluated)" : "");
          return FALSE;
        }
      if (qb_gguf_get_double (g, k_factor, &factor) && factor > 0)
        llama->p.rope_freq_scale = (float) (1.0 / factor);
    }
  return TRUE;
}

static double
gguf_value (QbLlama *llama, const char *suffix, double fallback)
{
  QbGguf *g = qb_model_get_gguf (llama->model);
  g_autofree char *key = g_strdup_printf ("%s.%s", qb_model_get_arch (llama->model)->family, suffix);
  double v;

  return qb_gguf_get_double (g, key, &v) ? v : fallback;
}

/* A config.json number that may also be null (no cap, no window). */
static double
hf_value (JsonObject *o, const char *name, double fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n != NULL && JSON_NODE_HOLDS_NULL (n))
    return 0;
  return json_number (o, name, fallback);
}

/* Which layers slide: the family's pattern, or config.json's layer_types. */
static void
choose_sliding_layers (QbLlama *llama, JsonObject *hf)
{
  const QbLlamaParams *p = &llama->p;
  JsonNode *types = hf ? json_object_get_member (hf, "layer_types") : NULL;
  JsonArray *a = types && JSON_NODE_HOLDS_ARRAY (types) ? json_node_get_array (types) : NULL;

  for (guint i = 0; i < p->n_layer; i++)
    {
      gboolean sliding;

      switch (p->family->swa)
        {
        case QB_SWA_ALL:    sliding = TRUE; break;
        case QB_SWA_EVEN:   sliding = i % 2 == 0; break;
        case QB_SWA_PERIOD: sliding = p->swa_period == 0 || (i + 1) % p->swa_period != 0; break;
        default:            sliding = FALSE; break;
        }
      if (a != NULL && i < json_array_get_length (a))
        sliding = g_strcmp0 (json_array_get_string_element (a, i), "sliding_attention") == 0;
      llama->layers[i].sliding = sliding && p->swa_window > 0;
    }
}

/* The family's pieces whose sizes the file gives: caps, window, local
 * RoPE base, the query scale. */
static gboolean
read_family_params (QbLlama *llama, gboolean gguf, GError **error)
{
  QbLlamaParams *p = &llama->p;
  const QbFamily *f = p->family;
  const QbArchInfo *a = qb_model_get_arch (llama->model);
  JsonObject *hf = gguf ? NULL : hf_text_config (llama);
  double window = 0, scalar;

  p->attn_softcap = f->attn_softcap;
  p->final_softcap = f->final_softcap;
  p->swa_period = f->swa_period;
  p->rope_base_local = f->rope_base_local > 0 ? f->rope_base_local : p->rope_base;
  /* Gemma's 27B models scale queries by n_embd / n_head (llama.cpp tells
   * them by layer count; config.json says query_pre_attn_scalar). */
  scalar = f->wide_query_layers != 0 && a->n_layer == f->wide_query_layers && a->n_embd > 0
           ? (double) a->n_embd / a->n_head : p->head_dim;
  if (gguf)
    {
      p->attn_softcap = (float) gguf_value (llama, "attn_logit_softcapping", p->attn_softcap);
      p->final_softcap = (float) gguf_value (llama, "final_logit_softcapping", p->final_softcap);
      window = f->swa != QB_SWA_NONE ? gguf_value (llama, "attention.sliding_window", f->swa_window) : 0;
    }
  else if (hf != NULL)
    {
      p->attn_softcap = (float) hf_value (hf, "attn_logit_softcapping", p->attn_softcap);
      p->final_softcap = (float) hf_value (hf, "final_logit_softcapping", p->final_softcap);
      window = f->swa != QB_SWA_NONE ? hf_value (hf, "sliding_window", f->swa_window) : 0;
      p->rope_base_local = (float) hf_value (hf, "rope_local_base_freq", p->rope_base_local);
      p->swa_period = (guint) hf_value (hf, "sliding_window_pattern", p->swa_period);
      scalar = hf_value (hf, "query_pre_attn_scalar", scalar);
    }
  if (!(p->attn_softcap >= 0 && p->final_softcap >= 0 && window >= 0 && window < G_MAXUINT
        && scalar > 0 && p->rope_base_local > 0 && p->n_rot > 0))
    return invalid (error, llama, "soft-capping, sliding window, query scale or RoPE out of range");
  p->swa_window = (guint) window;
  p->attn_scale = (float) (1.0 / sqrt (scalar));
  if (p->kv_lora_rank > 0)
    {
      float mscale = llama->yarn_attn * (1.0f + llama->yarn_log_mul * logf (1.0f / p->rope_freq_scale));
      p->attn_scale = 1.0f * mscale * mscale / sqrtf ((float) p->head_dim);
    }
  choose_sliding_layers (llama, hf);
  return TRUE;
}

/* Whether the top-k weights are renormalised is the family's
 * (moe_norm_topk: Mixtral-style llama and Qwen3-MoE yes, Qwen2-MoE GGUFs
 * no, as llama.cpp's graphs do). */
static gboolean
read_moe_params (QbLlama *llama, const QbArchInfo *a, GError **error)
{
  QbLlamaParams *p = &llama->p;

  if (a->n_expert == 0)
    {
      if (p->family->moe)
        return invalid (error, llama, "a %s model without an expert count", p->family->arch);
      return TRUE;
    }
  if (a->n_expert > 4096 || a->n_expert_used == 0 || a->n_expert_used > a->n_expert
      || a->n_ff_exp == 0 || a->n_ff_exp > (1u << 20) || a->n_ff_shexp > (1u << 20))
    return invalid (error, llama, "mixture-of-experts hyper-parameters out of range (%u experts, "
                    "%u per token, expert width %u, shared expert width %u)", a->n_expert,
                    a->n_expert_used, a->n_ff_exp, a->n_ff_shexp);
  p->n_expert = a->n_expert;
  p->n_expert_used = a->n_expert_used;
  p->n_ff_exp = a->n_ff_exp;
  p->n_ff_shexp = a->n_ff_shexp;
  p->moe_norm_topk = p->family->moe_norm_topk;
  return TRUE;
}

/* A config.json string member, or fallback. */
static const char *
hf_string (JsonObject *o, const char *name, const char *fallback)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
         ? json_node_get_string (n) : fallback;
}

/* A whole number in [lo, hi] into *out, or FALSE with the key named. */
static gboolean
whole_in (QbLlama *llama, double v, double lo, double hi, const char *key, guint *out,
          GError **error)
{
  if (!(v >= lo && v <= hi) || v != floor (v))
    return invalid (error, llama, "%s is %g; it should be a whole number from %g to %g", key, v,
                    lo, hi);
  *out = (guint) v;
  return TRUE;
}

/* DeepSeek's routing, from GGUF keys (llama.cpp's names; 0 or no gating
 * function is softmax, as llama.cpp reads DeepSeek-V2 files) or
 * config.json.  Group scores: DeepSeek-V2's group_limited_greedy takes a
 * group's best score, V3's noaux_tc (sigmoid) the sum of its best two. */
static gboolean
read_routing_params (QbLlama *llama, gboolean gguf, GError **error)
{
  QbLlamaParams *p = &llama->p;
  JsonObject *hf = gguf ? NULL : hf_text_config (llama);
  double lead, shared, gating, n_group, topk_group, freq = 1;
  const char *method = NULL, *scoring = NULL;
  gboolean norm = FALSE;
  guint n_shared = 0;

  if (gguf)
    {
      g_autofree char *k_norm = g_strdup_printf ("%s.expert_weights_norm",
                                                 qb_model_get_arch (llama->model)->family);
      lead = gguf_value (llama, "leading_dense_block_count", 0);
      shared = gguf_value (llama, "expert_shared_count", 0);
      p->expert_weights_scale = (float) gguf_value (llama, "expert_weights_scale", 1);
      gating = gguf_value (llama, "expert_gating_func", 0);
      qb_gguf_get_bool (qb_model_get_gguf (llama->model), k_norm, &norm);
      n_group = gguf_value (llama, "expert_group_count", 1);
      topk_group = gguf_value (llama, "expert_group_used_count", n_group);
    }
  else
    {
      lead = hf_value (hf, "first_k_dense_replace", 0);
      freq = hf_value (hf, "moe_layer_freq", 1);
      shared = hf_value (hf, "n_shared_experts", 0);
      p->expert_weights_scale = (float) hf_value (hf, "routed_scaling_factor", 1);
      norm = json_object_get_boolean_member_with_default (hf, "norm_topk_prob", FALSE);
      scoring = hf_string (hf, "scoring_func", "softmax");
      gating = strcmp (scoring, "softmax") == 0 ? 1 : strcmp (scoring, "sigmoid") == 0 ? 2 : -1;
      method = hf_string (hf, "topk_method", "greedy");
      n_group = strcmp (method, "greedy") == 0 ? 1 : hf_value (hf, "n_group", 1);
      topk_group = strcmp (method, "greedy") == 0 ? 1 : hf_value (hf, "topk_group", n_group);
      if (strcmp (method, "greedy") != 0 && strcmp (method, "group_limited_greedy") != 0
          && strcmp (method, "noaux_tc") != 0)
        return invalid (error, llama, "config.json topk_method '%s' is not one Quantbench knows "
                        "(greedy, group_limited_greedy, noaux_tc)", method);
      if (freq != 1)
        return invalid (error, llama, "config.json moe_layer_freq %g: only every layer after the "
                        "dense ones having experts (1) is supported", freq);
    }
  if (scoring != NULL && gating < 0)
    return invalid (error, llama, "config.json scoring_func '%s' is neither softmax nor sigmoid",
                    scoring);
  if (gating != 0 && gating != 1 && gating != 2)
    return invalid (error, llama, "expert gating function %g is neither softmax (1) nor sigmoid (2)",
                    gating);
  p->moe_gating = gating == 2 ? QB_MOE_GATING_SIGMOID : QB_MOE_GATING_SOFTMAX;
  p->moe_norm_topk = norm;
  p->group_top = method != NULL ? (strcmp (method, "noaux_tc") == 0 ? 2 : 1)
                                : (p->moe_gating == QB_MOE_GATING_SIGMOID ? 2 : 1);
  if (!(p->expert_weights_scale > 0 && p->expert_weights_scale < 1e4))
    return invalid (error, llama, "expert weight scale %g is out of range", p->expert_weights_scale);
  if (!whole_in (llama, lead, 0, p->n_layer, "the leading dense layer count", &p->n_layer_dense_lead, error)
      || !whole_in (llama, shared, 0, 256, "the shared expert count", &n_shared, error))
    return FALSE;
  if (p->n_ff_shexp == 0)
    p->n_ff_shexp = n_shared * p->n_ff_exp;
  if (!whole_in (llama, n_group == 0 ? 1 : n_group, 1, QB_MOE_MAX_GROUPS, "the expert group count",
                 &p->n_group, error)
      || !whole_in (llama, topk_group == 0 ? p->n_group : topk_group, 1, p->n_group,
                    "the count of expert groups used", &p->topk_group, error))
    return FALSE;
  if (p->n_expert % p->n_group != 0 || (p->n_group > 1 && p->n_expert / p->n_group < p->group_top)
      || p->topk_group * (p->n_expert / p->n_group) < p->n_expert_used)
    return invalid (error, llama, "%u experts in %u groups, %u groups used, %u experts per token: "
                    "the groups do not divide the experts or hold too few", p->n_expert,
                    p->n_group, p->topk_group, p->n_expert_used);
  for (guint i = 0; i < p->n_layer; i++)
    llama->layers[i].dense = i < p->n_layer_dense_lead;
  return TRUE;
}

/* The pair of ggml_rope_yarn_corr_dim: where a frequency turns
 * beta times over the original context. */
static float
yarn_corr_dim (guint n_dims, guint n_ctx_orig, float beta, float base)
{
  return n_dims * logf ((float) n_ctx_orig / (beta * 2 * (float) G_PI)) / (2 * logf (base));
}

/* llama.cpp's build_deepseek2 scales: cos/sin by 1 / (1 + 0.1 ln (1 / s))
 * (YaRN's own correction multiplies it back), Q·K by mscale² with
 * mscale = attn_factor · (1 + log_mul · ln (1 / s)). */
static void
yarn_latent (QbLlama *llama)
{
  QbLlamaParams *p = &llama->p;
  float start, end;

  llama->yarn_attn = p->rope_attn_factor;
  p->rope_attn_factor = 1.0f / (1.0f + 0.1f * logf (1.0f / p->rope_freq_scale));
  if (p->rope_yarn == 0)
    return;
  start = floorf (yarn_corr_dim (p->n_rot, p->n_ctx_orig, llama->yarn_beta_fast, p->rope_base));
  end = ceilf (yarn_corr_dim (p->n_rot, p->n_ctx_orig, llama->yarn_beta_slow, p->rope_base));
  p->rope_yarn_corr[0] = MAX (0, start);
  p->rope_yarn_corr[1] = MIN ((float) p->n_rot - 1, end);
}

/* Multi-head latent attention's sizes: GGUF's key and value lengths and
 * RoPE dimension, or config.json's head dims. */
static gboolean
read_latent_params (QbLlama *llama, gboolean gguf, GError **error)
{
  QbLlamaParams *p = &llama->p;
  JsonObject *hf = gguf ? NULL : hf_text_config (llama);
  double kvr, qr, dk, dv, rot;

  if (gguf)
    {
      kvr = gguf_value (llama, "attention.kv_lora_rank", 0);
      qr = gguf_value (llama, "attention.q_lora_rank", 0);
      dk = gguf_value (llama, "attention.key_length", 0);
      dv = gguf_value (llama, "attention.value_length", 0);
      rot = gguf_value (llama, "rope.dimension_count", 0);
    }
  else
    {
      kvr = hf_value (hf, "kv_lora_rank", 0);
      qr = hf_value (hf, "q_lora_rank", 0);
      rot = hf_value (hf, "qk_rope_head_dim", 0);
      dk = hf_value (hf, "qk_nope_head_dim", 0) + rot;
      dv = hf_value (hf, "v_head_dim", 0);
    }
  if (!whole_in (llama, kvr, 1, 1 << 16, "the compressed KV rank (kv_lora_rank)", &p->kv_lora_rank, error)
      || !whole_in (llama, qr, 0, 1 << 16, "the low-rank Q rank (q_lora_rank)", &p->q_lora_rank, error)
      || !whole_in (llama, dk, 2, 1024, "the K head size (key length)", &p->head_dim, error)
      || !whole_in (llama, dv, 1, 1024, "the V head size (value length)", &p->head_dim_v, error)
      || !whole_in (llama, rot, 2, p->head_dim, "the RoPE dimension of each head", &p->n_rot, error))
    return FALSE;
  if (p->n_rot % 2 != 0)
    return invalid (error, llama, "the RoPE dimension %u is odd", p->n_rot);
  if (p->n_head_kv != p->n_head)
    return invalid (error, llama, "%u KV heads for %u heads: multi-head latent attention expands "
                    "K and V for every head", p->n_head_kv, p->n_head);
  yarn_latent (llama);
  return TRUE;
}

static gboolean
read_params (QbLlama *llama, GError **error)
{
  const QbArchInfo *a = qb_model_get_arch (llama->model);
  gboolean gguf = qb_model_get_file_kind (llama->model) == QB_MODEL_FILE_GGUF;
  QbLlamaParams *p = &llama->p;

  if (p->family == NULL)
    p->family = qb_family_lookup (a->family);
  if (p->family == NULL)
    {
      g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_UNSUPPORTED,
                   "%s: architecture '%s' is not a decoder family Quantbench can run (%s)",
                   qb_model_get_path (llama->model), a->family, qb_family_names ());
      return FALSE;
    }
  if (a->n_layer == 0 || a->n_layer > 4096 || a->n_head == 0 || a->n_head_kv == 0
      || a->n_head % a->n_head_kv != 0 || a->head_dim == 0 || a->head_dim % 2 != 0
      || a->head_dim > 1024)
    return invalid (error, llama, "hyper-parameters out of range (layers %u, heads %u, "
                    "KV heads %u, head size %u)", a->n_layer, a->n_head, a->n_head_kv, a->head_dim);
  if (!(a->rms_eps > 0 && a->rms_eps < 1))
    return invalid (error, llama, "the RMS norm epsilon is missing or out of range (%g)", a->rms_eps);

  p->n_layer = a->n_layer;
  p->n_head = a->n_head;
  p->n_head_kv = a->n_head_kv;
  p->head_dim = a->head_dim;
  p->n_rot = a->head_dim;
  p->n_ctx_train = a->n_ctx;
  p->rms_eps = (float) a->rms_eps;
  p->rope_base = a->rope_freq_base > 0 ? (float) a->rope_freq_base : 10000.0f;
  p->rope_freq_scale = 1.0f;
  p->rope_attn_factor = 1.0f;
  p->n_ctx_orig = a->n_ctx;
  /* GGUF LLaMA/Mistral rows are permuted to interleaved pairs; the other
   * families and safetensors checkpoints are not (see the header). */
  p->rope_style = gguf ? p->family->gguf_rope
                 : p->family->hf_rope_interleaved ? QB_ROPE_NORM : QB_ROPE_NEOX;
  p->head_dim_v = a->head_dim;
  p->moe_gating = QB_MOE_GATING_SOFTMAX;
  p->expert_weights_scale = 1.0f;
  p->n_group = p->topk_group = p->group_top = 1;
  if (!gguf && json_number (hf_text_config (llama), "partial_rotary_factor", 1) < 1)
    p->n_rot = (guint) (p->head_dim * json_number (hf_text_config (llama), "partial_rotary_factor", 1)) / 2 * 2;
  llama->layers = g_new0 (QbLayer, p->n_layer);
  if (!read_moe_params (llama, a, error))
    return FALSE;
  if (p->n_expert > 0 && p->family->moe_routing_keys && !read_routing_params (llama, gguf, error))
    return FALSE;
  if (!(gguf ? gguf_rope (llama, error) : hf_rope_scaling (llama, error)))
    return FALSE;
  if (p->family->mla && !read_latent_params (llama, gguf, error))
    return FALSE;
  return read_family_params (llama, gguf, error);
}

/* n_rot / 2 frequency divisors from tensor index into *dest (left alone
 * when index is G_MAXUINT or *dest is already set). */
static gboolean
read_rope_factors (QbLlama *llama, guint index, float **dest, GError **error)
{
  const char *name;
  guint n = llama->p.n_rot / 2;
  QbWeight w;
  const float *rows;
  g_autofree float *buf = NULL;

  if (index == G_MAXUINT || *dest != NULL)
    return TRUE;
  weight_init (&w, llama->model, index);
  name = w.t->name;
  if (w.n_cols * w.n_rows != n)
    return invalid (error, llama, "%s has %" G_GINT64_FORMAT " values, not %u", name,
                    w.n_cols * w.n_rows, n);
  buf = g_new (float, n);
  rows = qb_weight_rows (llama, &w, 0, w.n_rows, buf, error);
  if (rows == NULL)
    return FALSE;
  /* Positions are divided by them. */
  for (guint i = 0; i < n; i++)
    if (!(rows[i] > 0) || !isfinite (rows[i]))
      return invalid (error, llama, "%s[%u] is %g, not a positive number", name, i, rows[i]);
  *dest = g_memdup2 (rows, sizeof (float) * n);
  return TRUE;
}

/* LLaMA 3.1's rope_freqs, or LongRoPE's short and long factors: both
 * LongRoPE tensors or neither. */
static gboolean
read_rope_tensors (QbLlama *llama, const RopeTensors *rope, GError **error)
{
  if ((rope->short_f == G_MAXUINT) != (rope->long_f == G_MAXUINT))
    return invalid (error, llama, "LongRoPE needs both rope_factors_short and rope_factors_long");
  return read_rope_factors (llama, rope->freqs, &llama->rope_factors, error)
         && read_rope_factors (llama, rope->short_f, &llama->rope_factors, error)
         && read_rope_factors (llama, rope->long_f, &llama->rope_factors_long, error);
}

static gboolean
check_model (QbLlama *llama, GError **error)
{
  QbLlamaParams *p = &llama->p;

  if (llama->tok_embd.t == NULL)
    return invalid (error, llama, "the model has no token embedding");
  p->n_embd = (guint) llama->tok_embd.n_cols;
  p->n_vocab = (guint) llama->tok_embd.n_rows;
  /* The dense FFN's width (DeepSeek's leading dense layers), else the
   * widest expert's. */
  if (llama->layers[0].gate.t != NULL)
    p->n_ff = (guint) llama->layers[0].gate.n_rows;
  else if (p->n_expert > 0)
    p->n_ff = MAX (p->n_ff_exp, p->n_ff_shexp);
  else if (llama->p.family->fused_gate_up && llama->layers[0].up.t != NULL)
    p->n_ff = (guint) (llama->layers[0].up.n_rows / 2);
  else
    return invalid (error, llama, "layer 0 has no FFN gate");
  if (p->n_embd == 0 || p->n_vocab == 0 || p->n_ff == 0 || llama->tok_embd.n_rows > G_MAXINT32)
    return invalid (error, llama, "empty or oversized embedding or FFN");

  for (guint i = 0; i < p->n_layer; i++)
    if (!check_layer (llama, i, error))
      return FALSE;
  if (!check_shape (llama, &llama->output_norm.w, "output norm", p->n_embd, 1, error))
    return FALSE;
  p->tied_output = llama->output.t == NULL;
  if (p->tied_output)
    llama->output = llama->tok_embd;
  return check_shape (llama, &llama->output, "output matrix", p->n_embd, p->n_vocab, error);
}

static gboolean
read_vectors (QbLlama *llama, GError **error)
{
  if (!vector_refresh (llama, &llama->output_norm, error))
    return FALSE;
  for (guint i = 0; i < llama->p.n_layer; i++)
    {
      QbLayer *l = &llama->layers[i];
      QbVector *v[] = QB_LAYER_VECTORS (l);

      for (gsize j = 0; j < G_N_ELEMENTS (v); j++)
        if (!vector_refresh (llama, v[j], error))
          return FALSE;
    }
  return TRUE;
}

QbLlama *
qb_llama_new (QbModel *model, GError **error)
{
  return qb_llama_new_as (model, NULL, error);
}

QbLlama *
qb_llama_new_as (QbModel *model, const QbFamily *family, GError **error)
{
  g_autoptr(QbLlama) llama = g_new0 (QbLlama, 1);
  RopeTensors rope;

  llama->model = g_object_ref (model);
  llama->p.family = family;
  llama->family_override = family != NULL;
  llama->mode = QB_DEQUANT_ROWS;
  llama->act_expert = -1;
  llama->yarn_beta_fast = 32.0f;
  llama->yarn_beta_slow = 1.0f;
  if (!read_params (llama, error))
    return NULL;
  if (!find_tensors (llama, &rope, error) || !check_model (llama, error)
      || !read_rope_tensors (llama, &rope, error) || !read_vectors (llama, error))
    return NULL;
  qb_llama_set_threads (llama, 0);
  return g_steal_pointer (&llama);
}

static void
vector_free (QbVector *v)
{
  weight_clear_override (&v->w);
  g_clear_pointer (&v->values, g_free);
}

void
qb_llama_free (QbLlama *llama)
{
  if (llama == NULL)
    return;
  for (guint i = 0; llama->layers != NULL && i < llama->p.n_layer; i++)
    {
      QbLayer *l = &llama->layers[i];
      QbWeight *m[] = QB_LAYER_MATRICES (l);
      QbVector *v[] = QB_LAYER_VECTORS (l);

      for (gsize j = 0; j < G_N_ELEMENTS (m); j++)
        weight_clear_override (m[j]);
      for (guint j = 0; l->expert_mats != NULL && j < QB_EXPERT_N_MATS * llama->p.n_expert; j++)
        weight_clear_override (&l->expert_mats[j]);
      g_free (l->expert_mats);
      for (gsize j = 0; j < G_N_ELEMENTS (v); j++)
        vector_free (v[j]);
    }
  g_free (llama->layers);
  weight_clear_override (&llama->tok_embd);
  if (!llama->p.tied_output)
    weight_clear_override (&llama->output);
  vector_free (&llama->output_norm);
  g_free (llama->rope_factors);
  g_free (llama->rope_factors_long);
  qb_scratch_clear (&llama->s);
  g_clear_pointer (&llama->device, qb_llama_device_free);
  g_clear_pointer (&llama->accum, qb_llama_accum_free);
  g_clear_pointer (&llama->workers, qb_workers_free);
  g_clear_object (&llama->model);
  g_free (llama);
}

const QbLlamaParams *
qb_llama_get_params (QbLlama *llama)
{
  return &llama->p;
}

QbModel *
qb_llama_get_model (QbLlama *llama)
{
  return llama->model;
}

void
qb_llama_set_threads (QbLlama *llama, guint n_threads)
{
  if (n_threads == 0)
    n_threads = qb_cpu_count ();
  if (llama->workers != NULL && n_threads == llama->n_threads)
    return;
  g_clear_pointer (&llama->workers, qb_workers_free);
  llama->workers = qb_workers_new (n_threads);
  llama->n_threads = qb_workers_get_n_threads (llama->workers);
  qb_scratch_clear (&llama->s);
}

guint
qb_llama_get_threads (QbLlama *llama)
{
  return llama->n_threads;
}

QbWorkers *
qb_llama_get_workers (QbLlama *llama)
{
  return llama->workers;
}

void
qb_llama_set_dequant_mode (QbLlama *llama, QbDequantMode mode)
{
  llama->mode = mode;
  qb_scratch_clear (&llama->s);
}

void
qb_llama_set_ggml_activations (QbLlama *llama, gboolean on)
{
  llama->ggml_activations = on;
}

void
qb_llama_set_activation_func (QbLlama *llama, QbActivationFunc func, gpointer user_data)
{
  llama->act_func = func;
  llama->act_data = user_data;
}

int
qb_llama_get_activation_expert (QbLlama *llama)
{
  return llama->act_expert;
}

/* ---- swapping weights ------------------------------------------------- */

/* Every place that reads tensor `index` (two when the output is tied). */
static guint
weights_of (QbLlama *llama, guint index, QbWeight **out, QbVector **vec)
{
  guint n = 0;

  *vec = NULL;
  if (llama->tok_embd.index == index)
    out[n++] = &llama->tok_embd;
  if (llama->output.index == index && !llama->p.tied_output)
    out[n++] = &llama->output;
  if (llama->output_norm.w.index == index)
    *vec = &llama->output_norm;
  for (guint i = 0; i < llama->p.n_layer && n == 0 && *vec == NULL; i++)
    {
      QbLayer *l = &llama->layers[i];
      QbWeight *m[] = QB_LAYER_MATRICES (l);
      QbVector *v[] = QB_LAYER_VECTORS (l);

      for (gsize j = 0; j < G_N_ELEMENTS (m); j++)
        if (m[j]->t != NULL && m[j]->index == index)
          out[n++] = m[j];
      for (guint j = 0; l->expert_mats != NULL && n == 0 && j < QB_EXPERT_N_MATS * llama->p.n_expert; j++)
        if (l->expert_mats[j].t != NULL && l->expert_mats[j].index == index)
          out[n++] = &l->expert_mats[j];
      for (gsize j = 0; j < G_N_ELEMENTS (v); j++)
        if (v[j]->w.t != NULL && v[j]->w.index == index)
          *vec = v[j];
    }
  if (*vec != NULL)
    out[n++] = &(*vec)->w;
  return n;
}

static gboolean
set_override (QbLlama *llama, QbWeight *w, GBytes *bytes, const QbQuantParams *params,
              GError **error)
{
  const QbFormat *format = params->format;
  guint64 row_bytes = 0, total = 0;
  gsize size = g_bytes_get_size (bytes);

  /* A view (row0, n_rows) of a fused tensor takes the whole tensor's bytes. */
  if (!qb_format_row_bytes (format, w->n_cols, &row_bytes)
      || !qb_format_tensor_bytes (format, w->n_cols, qb_tensor_n_rows (w->t), &total))
    return invalid (error, llama, "tensor '%s': rows of %" G_GINT64_FORMAT " values do not fit %s",
                    w->t->name, w->n_cols, format->name);
  if (size != total)
    return invalid (error, llama, "tensor '%s': %" G_GSIZE_FORMAT " bytes given, %s needs %"
                    G_GUINT64_FORMAT, w->t->name, size, format->name, total);

  weight_clear_override (w);
  w->format = format;
  w->bytes = g_bytes_ref (bytes);
  w->row_bytes = row_bytes;
  w->params = *params;
  w->params.importance = NULL;
  w->params.search = FALSE;
  return TRUE;
}

gboolean
qb_llama_set_weight (QbLlama *llama, guint tensor_index, GBytes *bytes,
                     const QbQuantParams *params, GError **error)
{
  QbWeight *targets[4];
  QbVector *vec;
  guint n;

  g_return_val_if_fail (tensor_index < qb_model_get_n_tensors (llama->model), FALSE);
  g_return_val_if_fail (bytes == NULL || (params != NULL && params->format != NULL), FALSE);

  n = weights_of (llama, tensor_index, targets, &vec);
  for (guint i = 0; i < n; i++)
    {
      if (bytes == NULL)
        weight_clear_override (targets[i]);
      else if (!set_override (llama, targets[i], bytes, params, error))
        return FALSE;
    }
  /* The tied output reads the embedding: keep its copy in step. */
  if (llama->p.tied_output)
    llama->output = llama->tok_embd;
  return vec == NULL || vector_refresh (llama, vec, error);
}

gboolean
qb_llama_use_job (QbLlama *llama, QbJob *job, guint *n_taken, GError **error)
{
  const QbPlanResolution *res = qb_job_get_resolution (job);
  guint n = 0;

  if (res == NULL || res->n_tensors != qb_model_get_n_tensors (llama->model))
    return invalid (error, llama, "the quantization job has not run on this model");
  for (guint i = 0; i < res->n_tensors; i++)
    {
      QbWeight *targets[4];
      QbVector *vec;
      QbQuantParams params;
      const QbFormat *format = NULL;
      g_autoptr(GBytes) bytes = NULL;

      /* Kept tensors, and tensors the forward pass does not read. */
      if (res->choices[i].format == NULL || weights_of (llama, i, targets, &vec) == 0)
        continue;
      bytes = qb_job_get_tensor_data (job, i, &format);
      if (bytes == NULL || !qb_job_get_dequant_params (job, i, &params))
        return invalid (error, llama, "tensor '%s' has no quantized data (the job did not finish, "
                        "or ran without keeping its data)", qb_model_get_tensor (llama->model, i)->name);
      if (!qb_llama_set_weight (llama, i, bytes, &params, error))
        return FALSE;
      n++;
    }
  if (n_taken != NULL)
    *n_taken = n;
  return TRUE;
}

const QbFormat *
qb_llama_get_weight_format (QbLlama *llama, guint tensor_index)
{
  QbWeight *targets[4];
  QbVector *vec;

  return weights_of (llama, tensor_index, targets, &vec) > 0 ? targets[0]->format : NULL;
}
