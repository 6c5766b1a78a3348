/* SPDX-License-Identifier: MIT */
/* qb-llama-forward.c — one chunk through the decoder.
 *
 * Activations are row-major, one row per token.  The linear layers are
 * split into blocks of weight rows handed to the workers; each worker
 * dequantizes its block into its own buffer (or reads stored float32 rows
 * in place) and multiplies the whole chunk by it with a single-threaded
 * sgemm, writing its columns of the result.  Residual additions ride on
 * sgemm's beta.  Attention is split by (head, block of queries); a block
 * only needs the keys up to its last query, so the masked half is never
 * computed.  Numerics follow ggml where it matters for matching
 * llama.cpp: sums of squares and softmax denominators in double, RoPE
 * angles advanced by repeated multiplication in float.
 */
#include "qb-llama-private.h"
#include "qb-llama-device-private.h"
#include "qb-device.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define BLOCK_FLOATS   (1 << 19)   /* about 2 MiB of dequantized rows per block */
#define BLOCK_ROWS_MAX 256
#define QUERY_BLOCK    64
#define ATTN_SLABS_MAX 16          /* parts of a layer's attention seen by progress and cancel */

/* ---- scratch ---------------------------------------------------------- */

static void
free_thread_buffers (float **bufs, guint n)
{
  for (guint i = 0; bufs != NULL && i < n; i++)
    g_free (bufs[i]);
  g_free (bufs);
}

void
qb_scratch_clear (QbScratch *s)
{
  g_free (s->x);
  g_free (s->xn);
  g_free (s->q);
  g_free (s->k);
  g_free (s->v);
  g_free (s->att);
  g_free (s->gate);
  g_free (s->up);
  g_free (s->rope);
  g_free (s->moe_logits);
  g_free (s->moe_weight);
  g_free (s->moe_x);
  g_free (s->moe_y);
  g_free (s->moe_out);
  g_free (s->moe_shgate);
  g_free (s->moe_expert);
  g_free (s->moe_tokens);
  g_free (s->moe_token_weight);
  g_free (s->moe_offsets);
  g_free (s->moe_select);
  g_free (s->mla_qa);
  g_free (s->mla_kva);
  g_free (s->mla_kv);
  g_free (s->rope_local);
  g_free (s->matrix);
  free_thread_buffers (s->thread_buf, s->n_threads);
  free_thread_buffers (s->thread_scores, s->n_threads);
  memset (s, 0, sizeof *s);
}

/* Rows of w per work item: about BLOCK_FLOATS values, 16 to
 * BLOCK_ROWS_MAX rows.  Fixed by the shape alone, so the sums of every
 * output (and so the results) are the same for any thread count. */
static gint64
block_rows (QbLlama *llama, const QbWeight *w)
{
  gint64 rows = BLOCK_FLOATS / MAX (w->n_cols, 1);

  rows = CLAMP (rows, 16, BLOCK_ROWS_MAX) / 16 * 16;
  return MIN (rows, w->n_rows);
}

/* Expert e's matrix of a 3-D expert tensor, as a weight of its own. */
static QbWeight
expert_view (const QbWeight *w, guint e)
{
  QbWeight v = *w;

  v.n_rows = w->t->ne[1];
  v.row0 = (gint64) e * v.n_rows;
  return v;
}

QbWeight
qb_layer_expert (const QbLayer *l, QbExpertMat which, guint e, guint n_expert)
{
  const QbWeight *whole[] = { &l->gate_exps, &l->up_exps, &l->down_exps };

  if (l->expert_mats != NULL)
    return l->expert_mats[which * n_expert + e];
  return expert_view (whole[which], e);
}

/* Floats of the largest block (or whole matrix) any product needs; an
 * expert tensor is multiplied one expert at a time. */
static gsize
largest_block (QbLlama *llama, gboolean whole)
{
  const QbWeight *w = &llama->output;
  gsize most = (gsize) ((whole ? w->n_rows : block_rows (llama, w)) * w->n_cols);

  for (guint i = 0; i < llama->p.n_layer; i++)
    {
      QbLayer *l = &llama->layers[i];
      const QbWeight *m[] = QB_LAYER_MATRICES (l);

      for (gsize j = 0; j < G_N_ELEMENTS (m); j++)
        {
          QbWeight v;
          gint64 rows;

          if (m[j]->t == NULL)
            continue;
          v = m[j]->t->n_dims == 3 ? expert_view (m[j], 0) : *m[j];
          rows = whole ? v.n_rows : block_rows (llama, &v);
          most = MAX (most, (gsize) (rows * v.n_cols));
        }
      for (guint j = 0; l->expert_mats != NULL && j < QB_EXPERT_N_MATS * llama->p.n_expert; j++)
        {
          const QbWeight *v = &l->expert_mats[j];
          gint64 rows = whole ? v->n_rows : block_rows (llama, v);
          most = MAX (most, (gsize) (rows * v->n_cols));
        }
    }
  return most;
}

static float **
alloc_thread_buffers (guint n, gsize floats)
{
  float **bufs = g_new0 (float *, n);

  for (guint i = 0; i < n; i++)
    bufs[i] = g_new (float, floats);
  return bufs;
}

static void
scratch_reserve (QbLlama *llama, guint n_tokens)
{
  QbScratch *s = &llama->s;
  const QbLlamaParams *p = &llama->p;
  gsize T, qd = (gsize) p->n_head * p->head_dim, kvd = (gsize) p->n_head_kv * p->head_dim;
  gsize vd = (gsize) p->n_head_kv * p->head_dim_v, od = (gsize) p->n_head * p->head_dim_v;
  gsize ffw = MAX (p->n_ff, MAX (p->n_ff_exp, p->n_ff_shexp));
  gsize buf;

  if (s->n_tokens >= n_tokens && s->n_threads == llama->n_threads && s->x != NULL)
    return;
  qb_scratch_clear (s);
  T = s->n_tokens = n_tokens;
  s->n_threads = llama->n_threads;
  s->x = g_new (float, T * p->n_embd);
  s->xn = g_new (float, T * MAX (p->n_embd, qd));
  s->q = g_new (float, T * qd);
  s->k = g_new (float, T * kvd);
  s->v = g_new (float, T * vd);
  s->att = g_new (float, T * MAX (qd, od));
  s->gate = g_new (float, T * ffw);
  s->up = g_new (float, T * ffw);
  s->rope = g_new (float, T * p->n_rot);
  if (p->n_expert > 0)
    {
      gsize K = p->n_expert_used;

      s->moe_logits = g_new (float, T * p->n_expert);
      s->moe_weight = g_new (float, T * K);
      s->moe_expert = g_new (gint32, T * K);
      s->moe_tokens = g_new (gint32, T * K);
      s->moe_token_weight = g_new (float, T * K);
      s->moe_offsets = g_new (gint32, p->n_expert + 1);
      s->moe_x = g_new (float, T * p->n_embd);
      s->moe_y = g_new (float, T * p->n_embd);
      s->moe_out = g_new (float, T * p->n_embd);
      s->moe_shgate = g_new (float, T);
      s->moe_select = g_new (float, p->n_expert);
    }
  if (p->kv_lora_rank > 0)
    {
      s->mla_qa = g_new (float, T * MAX (p->q_lora_rank, p->kv_lora_rank));
      s->mla_kva = g_new (float, T * (p->kv_lora_rank + p->n_rot));
      s->mla_kv = g_new (float, T * p->n_head * (p->head_dim - p->n_rot + p->head_dim_v));
    }
  if (p->family->rope_base_local > 0)
    s->rope_local = g_new (float, T * p->n_rot);

  buf = largest_block (llama, FALSE);
  buf = MAX (buf, (gsize) p->n_embd);
  if (llama->mode == QB_DEQUANT_MATRIX)
    {
      s->matrix_floats = largest_block (llama, TRUE);
      s->matrix = g_new (float, s->matrix_floats);
    }
  s->thread_buf_floats = buf;
  s->thread_buf = alloc_thread_buffers (s->n_threads, buf);
  s->thread_scores_floats = (gsize) QUERY_BLOCK * T;
  s->thread_scores = alloc_thread_buffers (s->n_threads, s->thread_scores_floats);
}

/* ---- errors from the workers ------------------------------------------ */

typedef struct {
  GMutex  lock;
  GError *error;
} ErrorSlot;

static void
error_slot_take (ErrorSlot *slot, GError *e)
{
  g_mutex_lock (&slot->lock);
  if (slot->error == NULL)
    slot->error = e;
  else
    g_error_free (e);
  g_mutex_unlock (&slot->lock);
}

/* ---- linear layers ---------------------------------------------------- */

/* y (T × n_rows, row stride n_rows) = beta·y + x (T × n_cols) · Wᵀ */
typedef struct {
  const QbWeight *w;
  const float    *x;
  float          *y;
  float           beta;
  gint64          rows_per_block;
  gint64          n_blocks;
} MatTask;

typedef struct {
  QbLlama   *llama;
  MatTask   *tasks;
  guint      n_tasks;
  gint64     n_tokens;
  ErrorSlot  err;
} MatRun;

static void
matmul_block (gint64 item, guint thread, gpointer data)
{
  MatRun *run = data;
  MatTask *task = run->tasks;
  const float *rows;
  GError *error = NULL;
  gint64 r0, n;

  while (item >= task->n_blocks)
    item -= (task++)->n_blocks;
  r0 = item * task->rows_per_block;
  n = MIN (task->rows_per_block, task->w->n_rows - r0);
  rows = qb_weight_rows (run->llama, task->w, r0, n, run->llama->s.thread_buf[thread], &error);
  if (rows == NULL)
    {
      error_slot_take (&run->err, error);
      return;
    }
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) run->n_tokens, (int) n,
               (int) task->w->n_cols, 1.0f, task->x, (int) task->w->n_cols, rows,
               (int) task->w->n_cols, task->beta, task->y + r0, (int) task->w->n_rows);
}

/* QB_DEQUANT_MATRIX: workers dequantize blocks of the whole matrix. */
typedef struct {
  QbLlama        *llama;
  const QbWeight *w;
  gint64          rows_per_block;
  ErrorSlot       err;
} DequantRun;

static void
dequant_block (gint64 item, guint thread, gpointer data)
{
  DequantRun *run = data;
  gint64 r0 = item * run->rows_per_block;
  gint64 n = MIN (run->rows_per_block, run->w->n_rows - r0);
  float *dst = run->llama->s.matrix + r0 * run->w->n_cols;
  GError *error = NULL;
  const float *rows = qb_weight_rows (run->llama, run->w, r0, n, dst, &error);

  if (rows == NULL)
    error_slot_take (&run->err, error);
  else if (rows != dst)
    memcpy (dst, rows, sizeof (float) * n * run->w->n_cols);
}

static gboolean
matmul_whole (QbLlama *llama, MatTask *task, gint64 n_tokens, GError **error)
{
  const QbWeight *w = task->w;
  const float *wf = w->f32 ? w->f32 + w->row0 * w->n_cols : NULL;

  if (w->format != NULL || wf == NULL)
    {
      DequantRun run = { llama, w, block_rows (llama, w), { { 0 }, NULL } };

      g_mutex_init (&run.err.lock);
      qb_workers_run (llama->workers, (w->n_rows + run.rows_per_block - 1) / run.rows_per_block,
                      dequant_block, &run);
      g_mutex_clear (&run.err.lock);
      if (run.err.error != NULL)
        {
          g_propagate_error (error, run.err.error);
          return FALSE;
        }
      wf = llama->s.matrix;
    }
  openblas_set_num_threads ((int) llama->n_threads);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) n_tokens, (int) w->n_rows,
               (int) w->n_cols, 1.0f, task->x, (int) w->n_cols, wf, (int) w->n_cols,
               task->beta, task->y, (int) w->n_rows);
  openblas_set_num_threads (1);
  return TRUE;
}

/* ---- llama.cpp's rounding of activations (opt-in) -------------------- */

/* What llama.cpp's CPU kernels round a product's input to before
 * multiplying it by a weight of this type (ggml's vec_dot_type). */
typedef enum { ROUND_NONE, ROUND_F16, ROUND_BF16, ROUND_Q8_0, ROUND_Q8_K } ActRounding;

static ActRounding
act_rounding (const QbWeight *w)
{
  switch (w->format != NULL ? w->format->dtype : w->t->dtype)
    {
    case QB_DTYPE_F32:     return ROUND_NONE;
    case QB_DTYPE_BF16:    return ROUND_BF16;
    case QB_DTYPE_Q4_0: case QB_DTYPE_Q4_1: case QB_DTYPE_Q5_0: case QB_DTYPE_Q5_1:
    case QB_DTYPE_Q8_0: case QB_DTYPE_IQ4_NL:
      return ROUND_Q8_0;   /* Q8_1 for the _1 types: the same values */
    case QB_DTYPE_F16:
    case QB_DTYPE_INVALID: /* formats llama.cpp lacks are exported as F16 */
      return ROUND_F16;
    default:               return ROUND_Q8_K;   /* K-quants, i-quants */
    }
}

/* Blocks of 32: scale amax/127 stored in half precision, values rounded
 * to nearest even (ggml's AVX quantize_row_q8_0). */
static void
round_q8_0 (const float *x, float *y, gint64 n)
{
  for (gint64 b = 0; b + 32 <= n; b += 32)
    {
      float amax = 0, d, id;

      for (int j = 0; j < 32; j++)
        amax = MAX (amax, fabsf (x[b + j]));
      d = qb_fp16_to_fp32 (qb_fp32_to_fp16 (amax / 127.0f));
      id = amax != 0 ? 127.0f / amax : 0.0f;
      for (int j = 0; j < 32; j++)
        y[b + j] = d * nearbyintf (x[b + j] * id);
    }
}

/* Blocks of 256 scaled by the signed extreme (quantize_row_q8_K). */
static void
round_q8_k (const float *x, float *y, gint64 n)
{
  for (gint64 b = 0; b + 256 <= n; b += 256)
    {
      float amax = 0, max = 0, iscale;

      for (int j = 0; j < 256; j++)
        if (fabsf (x[b + j]) > amax)
          {
            amax = fabsf (x[b + j]);
            max = x[b + j];
          }
      if (amax == 0)
        {
          memset (y + b, 0, sizeof (float) * 256);
          continue;
        }
      iscale = -127.0f / max;
      for (int j = 0; j < 256; j++)
        y[b + j] = MIN (127.0f, nearbyintf (iscale * x[b + j])) * (1 / iscale);
    }
}

/* x rounded for w as llama.cpp would, or NULL when it is used as is
 * (rows that do not fit the blocks are left alone: llama.cpp cannot
 * run them either). */
static float *
ggml_rounded_input (const QbWeight *w, const float *x, gint64 n_tokens)
{
  ActRounding r = act_rounding (w);
  gint64 n = w->n_cols;
  float *y;

  if (r == ROUND_NONE || (r == ROUND_Q8_0 && n % 32 != 0) || (r == ROUND_Q8_K && n % 256 != 0))
    return NULL;
  y = g_new (float, (gsize) n_tokens * n);
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *xr = x + t * n;
      float *yr = y + t * n;

      if (r == ROUND_Q8_0)
        round_q8_0 (xr, yr, n);
      else if (r == ROUND_Q8_K)
        round_q8_k (xr, yr, n);
      else
        for (gint64 j = 0; j < n; j++)
          yr[j] = r == ROUND_F16 ? qb_fp16_to_fp32 (qb_fp32_to_fp16 (xr[j]))
                                 : qb_bf16_to_fp32 (qb_fp32_to_bf16 (xr[j]));
    }
  return y;
}

static gboolean matmul_run (QbLlama *llama, MatTask *tasks, guint n_tasks, gint64 n_tokens,
                            GError **error);

/* Runs several products that read the same chunk as one batch of work. */
static gboolean
matmul (QbLlama *llama, MatTask *tasks, guint n_tasks, gint64 n_tokens, GError **error)
{
  float *rounded[4] = { NULL };
  gboolean ok;

  g_assert (n_tasks <= G_N_ELEMENTS (rounded));
  for (guint i = 0; i < n_tasks; i++)
    {
      /* A fused tensor's views share one input: the hook sees it once;
       * each expert of a 3-D tensor has inputs of its own. */
      if (llama->act_func != NULL && (tasks[i].w->row0 == 0 || tasks[i].w->t->n_dims == 3))
        llama->act_func (tasks[i].w->t->name, tasks[i].w->index, tasks[i].x, n_tokens,
                         tasks[i].w->n_cols, llama->act_data);
      if (llama->ggml_activations
          && (rounded[i] = ggml_rounded_input (tasks[i].w, tasks[i].x, n_tokens)) != NULL)
        tasks[i].x = rounded[i];
    }
  ok = matmul_run (llama, tasks, n_tasks, n_tokens, error);
  for (guint i = 0; i < n_tasks; i++)
    g_free (rounded[i]);
  return ok;
}

static gboolean
matmul_run (QbLlama *llama, MatTask *tasks, guint n_tasks, gint64 n_tokens, GError **error)
{
  MatRun run = { llama, tasks, n_tasks, n_tokens, { { 0 }, NULL } };
  gint64 n_items = 0;

  for (guint i = 0; i < n_tasks; i++)
    {
      if (llama->mode == QB_DEQUANT_MATRIX)
        {
          if (!matmul_whole (llama, &tasks[i], n_tokens, error))
            return FALSE;
          continue;
        }
      tasks[i].rows_per_block = block_rows (llama, tasks[i].w);
      tasks[i].n_blocks = (tasks[i].w->n_rows + tasks[i].rows_per_block - 1) / tasks[i].rows_per_block;
      n_items += tasks[i].n_blocks;
    }
  if (llama->mode == QB_DEQUANT_MATRIX)
    return TRUE;

  g_mutex_init (&run.err.lock);
  qb_workers_run (llama->workers, n_items, matmul_block, &run);
  g_mutex_clear (&run.err.lock);
  if (run.err.error != NULL)
    {
      g_propagate_error (error, run.err.error);
      return FALSE;
    }
  return TRUE;
}

/* ---- element-wise pieces ---------------------------------------------- */

/* y = x / rms(x) * w, row by row (ggml_rms_norm then ggml_mul). */
static void
rms_norm (const float *x, const float *w, float *y, gint64 n_rows, gint64 n, float eps)
{
  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *xr = x + r * n;
      float *yr = y + r * n;
      double sum = 0;
      float scale;

      for (gint64 i = 0; i < n; i++)
        sum += (double) (xr[i] * xr[i]);
      scale = 1.0f / sqrtf ((float) (sum / n + eps));
      for (gint64 i = 0; i < n; i++)
        yr[i] = (xr[i] * scale) * w[i];
    }
}

static void
fill_rows (float *y, const float *bias, gint64 n_rows, gint64 n)
{
  for (gint64 r = 0; r < n_rows; r++)
    memcpy (y + r * n, bias, sizeof (float) * n);
}

/* YaRN's share of the original frequency for pair i0 / 2 (ggml's
 * rope_yarn_ramp). */
static float
yarn_ramp (const float corr[2], guint i0)
{
  float y = ((float) (i0 / 2) - corr[0]) / MAX (0.001f, corr[1] - corr[0]);

  return 1 - MIN (1, MAX (0, y));
}

/* cos/sin of every (position, pair) into table, as ggml_rope_cache_init
 * (mscale: its attn_factor, which scales both; yarn: its ext_factor). */
static void
rope_cache_fill (QbLlama *llama, float *table, guint n_tokens, float base, float freq_scale,
                 const float *factors, float mscale, float yarn)
{
  const QbLlamaParams *p = &llama->p;
  float theta_scale = powf (base, -2.0f / p->n_rot);

  /* YaRN's magnitude correction (DeepSeek's mscale divides it out). */
  if (yarn != 0)
    mscale *= 1.0f + 0.1f * logf (1.0f / freq_scale);
  for (guint t = 0; t < n_tokens; t++)
    {
      float *c = table + (gsize) t * p->n_rot;
      float theta = (float) t;

      for (guint i0 = 0; i0 < p->n_rot; i0 += 2)
        {
          float ff = factors ? factors[i0 / 2] : 1.0f;
          float angle = freq_scale * (theta / ff);

          if (yarn != 0)
            {
              float mix = yarn_ramp (p->rope_yarn_corr, i0) * yarn;
              angle = angle * (1 - mix) + (theta / ff) * mix;
            }
          c[i0] = cosf (angle) * mscale;
          c[i0 + 1] = sinf (angle) * mscale;
          theta *= theta_scale;
        }
    }
}

/* The global table, and the sliding layers' own (Gemma 3: another base,
 * no scaling) when the family has one.  LongRoPE takes its long factors
 * for passes longer than the original context, as llama.cpp does for a
 * context of that size and transformers for a sequence of that length. */
static void
rope_cache (QbLlama *llama, guint n_tokens)
{
  const QbLlamaParams *p = &llama->p;
  const float *factors = llama->rope_factors_long != NULL && n_tokens > p->n_ctx_orig
                         ? llama->rope_factors_long : llama->rope_factors;

  rope_cache_fill (llama, llama->s.rope, n_tokens, p->rope_base, p->rope_freq_scale,
                   factors, p->rope_attn_factor, p->rope_yarn);
  if (llama->s.rope_local != NULL)
    rope_cache_fill (llama, llama->s.rope_local, n_tokens, p->rope_base_local, 1.0f, NULL, 1.0f, 0);
}

/* Rotates the first n_rot values of every head of x (n_tokens rows of
 * row_stride values, n_heads heads head_stride apart in each). */
static void
rope_apply_at (QbLlama *llama, const float *table, float *x, guint n_tokens, guint n_heads,
               gsize head_stride, gsize row_stride)
{
  const QbLlamaParams *p = &llama->p;
  guint half = p->n_rot / 2;

  for (guint t = 0; t < n_tokens; t++)
    {
      const float *c = table + (gsize) t * p->n_rot;
      for (guint h = 0; h < n_heads; h++)
        {
          float *v = x + (gsize) t * row_stride + h * head_stride;

          for (guint i0 = 0; i0 < p->n_rot; i0 += 2)
            {
              guint a = p->rope_style == QB_ROPE_NORM ? i0 : i0 / 2;
              guint b = p->rope_style == QB_ROPE_NORM ? i0 + 1 : i0 / 2 + half;
              float x0 = v[a], x1 = v[b];

              v[a] = x0 * c[i0] - x1 * c[i0 + 1];
              v[b] = x0 * c[i0 + 1] + x1 * c[i0];
            }
        }
    }
}

/* Rotates every head of x (n_tokens × n_heads × head_dim). */
static void
rope_apply (QbLlama *llama, const float *table, float *x, guint n_tokens, guint n_heads)
{
  gsize hd = llama->p.head_dim;

  rope_apply_at (llama, table, x, n_tokens, n_heads, hd, n_heads * hd);
}

static void
swiglu (float *gate, const float *up, gsize n)
{
  for (gsize i = 0; i < n; i++)
    gate[i] = gate[i] / (1.0f + expf (-gate[i])) * up[i];
}

static inline float
gelu_tanh (float x)
{
  const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;

  return 0.5f * x * (1.0f + tanhf (sqrt_2_over_pi * x * (1.0f + 0.044715f * x * x)));
}

static inline float
half (float x)
{
  return qb_fp16_to_fp32 (qb_fp32_to_fp16 (x));
}

/* GELU, tanh approximation (ggml_gelu, Gemma's gelu_pytorch_tanh).  With
 * llama.cpp's rounding, as its CPU table: the GELU of x rounded to half
 * precision, itself rounded to half, x itself past ±10. */
static void
geglu (float *gate, const float *up, gsize n, gboolean ggml)
{
  for (gsize i = 0; i < n; i++)
    {
      float x = gate[i], g;

      if (!ggml)
        g = gelu_tanh (x);
      else
        g = x <= -10.0f ? 0.0f : x >= 10.0f ? x : half (gelu_tanh (half (x)));
      gate[i] = g * up[i];
    }
}

/* cap · tanh(x / cap), as ggml scale, tanh, scale. */
static void
softcap (float *x, gsize n, float cap)
{
  float inv = 1.0f / cap;

  for (gsize i = 0; i < n; i++)
    x[i] = tanhf (x[i] * inv) * cap;
}

static void
add_rows (float *x, const float *y, gsize n)
{
  for (gsize i = 0; i < n; i++)
    x[i] += y[i];
}

/* ---- attention -------------------------------------------------------- */

typedef struct {
  QbLlama *llama;
  guint    n_tokens;
  guint    n_qblocks;
  guint    window;     /* keys a query sees, itself included; 0: all earlier ones */
  guint    qb0, qb1;   /* the slab of query blocks being run */
} AttnRun;

/* Softmax of row i of s (query t = a + i) over keys lo..t (lo > 0 in a
 * sliding window); the other keys get 0. */
static void
softmax_causal (float *s, guint n_keys, guint t, guint window, float cap)
{
  guint lo = window > 0 && t + 1 > window ? t + 1 - window : 0;
  float max = -INFINITY;
  double sum = 0;
  float inv;

  if (cap > 0)
    softcap (s + lo, t + 1 - lo, cap);
  for (guint j = lo; j <= t; j++)
    max = MAX (max, s[j]);
  for (guint j = lo; j <= t; j++)
    {
      float e = expf (s[j] - max);
      s[j] = e;
      sum += e;
    }
  inv = (float) (1.0 / sum);
  for (guint j = 0; j < lo; j++)
    s[j] = 0;
  for (guint j = lo; j <= t; j++)
    s[j] *= inv;
  for (guint j = t + 1; j < n_keys; j++)
    s[j] = 0;
}

static void
attention_block (gint64 item, guint thread, gpointer data)
{
  AttnRun *run = data;
  QbLlama *llama = run->llama;
  const QbLlamaParams *p = &llama->p;
  guint slab = run->qb1 - run->qb0;
  guint h = (guint) (item / slab), qb = run->qb0 + (guint) (item % slab);
  guint g = h / (p->n_head / p->n_head_kv);
  guint a = qb * QUERY_BLOCK, b = MIN (a + QUERY_BLOCK, run->n_tokens);
  guint hd = p->head_dim, hv = p->head_dim_v;
  gsize qs = (gsize) p->n_head * hd, ks = (gsize) p->n_head_kv * hd;
  gsize vs = (gsize) p->n_head_kv * hv, os = (gsize) p->n_head * hv;
  float *s = llama->s.thread_scores[thread];

  /* scores (b-a) × b = Q[a..b) · K[0..b)ᵀ · attn_scale (1/sqrt(head_dim) for most) */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) (b - a), (int) b, (int) hd,
               p->attn_scale, llama->s.q + a * qs + (gsize) h * hd, (int) qs,
               llama->s.k + (gsize) g * hd, (int) ks, 0.0f, s, (int) b);
  for (guint i = 0; i < b - a; i++)
    softmax_causal (s + (gsize) i * b, b, a + i, run->window, p->attn_softcap);
  /* out[a..b) = P · V[0..b) */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) (b - a), (int) hv, (int) b,
               1.0f, s, (int) b, llama->s.v + (gsize) g * hv, (int) vs, 0.0f,
               llama->s.att + a * os + (gsize) h * hv, (int) os);
}

/* ---- progress within a pass ------------------------------------------- */

/* Attention is quadratic in the context: at long contexts one layer is
 * most of a pass, so a layer's attention runs in slabs of query blocks,
 * each a unit of progress and a point where a cancel is seen.  A slab
 * keeps every thread busy (4 items each); short contexts are one slab. */
static guint
attention_slab (QbLlama *llama, guint n_tokens)
{
  guint n_qblocks = (n_tokens + QUERY_BLOCK - 1) / QUERY_BLOCK;
  guint busy = (4 * llama->n_threads + llama->p.n_head - 1) / llama->p.n_head;

  return MAX ((n_qblocks + ATTN_SLABS_MAX - 1) / ATTN_SLABS_MAX, MAX (busy, 1));
}

/* Units of progress: per layer, its products before attention, each slab
 * of attention and the rest; the output matrix counts as a layer.  A cancel
 * is seen at every unit; units within a layer are reported only when its
 * attention has several slabs (a long context): a short one reports once
 * per layer. */
typedef struct {
  QbLlamaProgressFunc  func;
  gpointer             data;
  GCancellable        *cancellable;
  guint                layer;
  guint                n_steps;     /* per layer */
  guint                total;
  gboolean             within;      /* report units within a layer */
} PassProgress;

static void
pass_progress_init (PassProgress *pp, QbLlama *llama, guint n_tokens,
                    QbLlamaProgressFunc func, gpointer data, GCancellable *cancellable)
{
  guint n_qblocks = (n_tokens + QUERY_BLOCK - 1) / QUERY_BLOCK;
  guint slab = attention_slab (llama, n_tokens);

  pp->func = func;
  pp->data = data;
  pp->cancellable = cancellable;
  pp->layer = 0;
  pp->n_steps = (n_qblocks + slab - 1) / slab + 2;
  pp->total = (llama->p.n_layer + 1) * pp->n_steps;
  pp->within = pp->n_steps > 3;
}

/* step units of the current layer are done: reported; FALSE (error set)
 * when the pass is cancelled. */
static gboolean
pass_step (PassProgress *pp, guint step, GError **error)
{
  if (pp->func != NULL && pp->within)
    pp->func (pp->layer * pp->n_steps + step, pp->total, pp->data);
  return !g_cancellable_set_error_if_cancelled (pp->cancellable, error);
}

static gboolean
attention (QbLlama *llama, guint n_tokens, gboolean sliding, PassProgress *pp, GError **error)
{
  AttnRun run = { llama, n_tokens, (n_tokens + QUERY_BLOCK - 1) / QUERY_BLOCK,
                  sliding ? llama->p.swa_window : 0, 0, 0 };
  guint slab = attention_slab (llama, n_tokens), step = 1;

  for (run.qb0 = 0; run.qb0 < run.n_qblocks; run.qb0 = run.qb1)
    {
      run.qb1 = MIN (run.qb0 + slab, run.n_qblocks);
      qb_workers_run (llama->workers, (gint64) llama->p.n_head * (run.qb1 - run.qb0),
                      attention_block, &run);
      if (!pass_step (pp, ++step, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- mixtures of experts ---------------------------------------------- */

/* Gating probabilities in place: softmax (ggml_soft_max: float exps, a
 * double sum) or each expert's sigmoid (ggml_sigmoid). */
static void
gate_probabilities (QbMoeGating gating, float *lg, guint N)
{
  float max = -INFINITY, inv;
  double total = 0;

  if (gating == QB_MOE_GATING_SIGMOID)
    {
      for (guint e = 0; e < N; e++)
        lg[e] = 1.0f / (1.0f + expf (-lg[e]));
      return;
    }
  for (guint e = 0; e < N; e++)
    max = MAX (max, lg[e]);
  for (guint e = 0; e < N; e++)
    {
      lg[e] = expf (lg[e] - max);
      total += lg[e];
    }
  inv = (float) (1.0 / total);
  for (guint e = 0; e < N; e++)
    lg[e] *= inv;
}

/* Group-limited routing (DeepSeek-V2's group_limited_greedy, V3's
 * noaux_tc): experts outside the topk_group groups of highest score (the
 * sum of a group's group_top best selection scores; ties to the lower
 * group) cannot be chosen. */
static void
mask_groups (const QbLlamaParams *p, float *select)
{
  guint G = p->n_group, size = p->n_expert / G;
  float score[QB_MOE_MAX_GROUPS];
  gboolean keep[QB_MOE_MAX_GROUPS] = { FALSE };

  for (guint g = 0; g < G; g++)
    {
      float m1 = -INFINITY, m2 = -INFINITY;

      for (guint e = g * size; e < (g + 1) * size; e++)
        {
          if (select[e] > m1)
            {
              m2 = m1;
              m1 = select[e];
            }
          else if (select[e] > m2)
            m2 = select[e];
        }
      score[g] = p->group_top >= 2 ? m1 + m2 : m1;
    }
  for (guint k = 0; k < p->topk_group; k++)
    {
      gint best = -1;

      for (guint g = 0; g < G; g++)
        if (!keep[g] && (best < 0 || score[g] > score[best]))
          best = (gint) g;
      keep[best] = TRUE;
    }
  for (guint g = 0; g < G; g++)
    for (guint e = g * size; !keep[g] && e < (g + 1) * size; e++)
      select[e] = -INFINITY;
}

/* The K highest of select[0..N), best first, ties to the lower index. */
static void
top_k (const float *select, guint N, gint32 *sel, guint K)
{
  for (guint k = 0; k < K; k++)
    {
      gint32 best = -1;

      for (guint e = 0; e < N; e++)
        {
          gboolean taken = FALSE;
          for (guint j = 0; j < k; j++)
            taken |= sel[j] == (gint32) e;
          if (!taken && (best < 0 || select[e] > select[best]))
            best = (gint32) e;
        }
      sel[k] = best;
    }
}

/* As llama.cpp's llm_build_moe_ffn (and, for the groups, the published
 * DeepSeek definitions): probabilities, the choice by probability plus
 * bias among the allowed groups, the chosen ones' unbiased probabilities
 * renormalised (float sum) where the model says, then scaled. */
void
qb_moe_route (const QbLlamaParams *p, const float *bias, float *probs, guint T,
              gint32 *experts, float *weights, float *select)
{
  guint N = p->n_expert, K = p->n_expert_used;

  for (guint t = 0; t < T; t++)
    {
      float *pr = probs + (gsize) t * N;
      gint32 *sel = experts + (gsize) t * K;
      float *w = weights + (gsize) t * K;
      float sum = 0;

      gate_probabilities (p->moe_gating, pr, N);
      for (guint e = 0; e < N; e++)
        select[e] = bias != NULL ? pr[e] + bias[e] : pr[e];
      if (p->n_group > 1)
        mask_groups (p, select);
      top_k (select, N, sel, K);
      for (guint k = 0; k < K; k++)
        {
          w[k] = pr[sel[k]];
          sum += w[k];
        }
      for (guint k = 0; p->moe_norm_topk && k < K; k++)
        w[k] /= sum;
      for (guint k = 0; p->expert_weights_scale != 1.0f && k < K; k++)
        w[k] *= p->expert_weights_scale;
    }
}

/* The tokens of each expert, in token order: moe_tokens[offsets[e] ..
 * offsets[e + 1]) with their weights. */
static void
moe_group (QbLlama *llama, guint T)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  guint N = p->n_expert, K = p->n_expert_used;
  gint32 *off = s->moe_offsets;

  memset (off, 0, sizeof (gint32) * (N + 1));
  for (gsize i = 0; i < (gsize) T * K; i++)
    off[s->moe_expert[i] + 1]++;
  for (guint e = 0; e < N; e++)
    off[e + 1] += off[e];
  for (guint t = 0; t < T; t++)
    for (guint k = 0; k < K; k++)
      {
        gint32 e = s->moe_expert[(gsize) t * K + k];
        gint32 slot = off[e]++;
        s->moe_tokens[slot] = (gint32) t;
        s->moe_token_weight[slot] = s->moe_weight[(gsize) t * K + k];
      }
  /* off[e] now ends expert e: shift back. */
  for (guint e = N; e > 0; e--)
    off[e] = off[e - 1];
  off[0] = 0;
}

/* out += w · y over n values. */
static void
add_scaled (float *out, const float *y, float w, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    out[i] += w * y[i];
}

/* SwiGLU FFN of rows x (n × E) through gate/up/down into y (n × E). */
static gboolean
moe_expert_ffn (QbLlama *llama, const QbWeight *gate, const QbWeight *up, const QbWeight *down,
                const float *x, float *y, gint64 n, GError **error)
{
  QbScratch *s = &llama->s;
  MatTask gu[2] = {
    { gate, x, s->gate, 0.0f, 0, 0 },
    { up, x, s->up, 0.0f, 0, 0 },
  };
  MatTask d = { down, s->gate, y, 0.0f, 0, 0 };

  if (!matmul (llama, gu, 2, n, error))
    return FALSE;
  swiglu (s->gate, s->up, (gsize) n * gate->n_rows);
  return matmul (llama, &d, 1, n, error);
}

/* Each expert over the tokens routed to it (gathered into one product),
 * its output added to theirs by their weights. */
static gboolean
moe_experts (QbLlama *llama, QbLayer *l, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gint64 E = p->n_embd;
  gboolean ok = TRUE;

  for (guint e = 0; e < p->n_expert && ok; e++)
    {
      gint32 a = s->moe_offsets[e], n = s->moe_offsets[e + 1] - a;
      QbWeight g, u, d;

      if (n == 0)
        continue;
      g = qb_layer_expert (l, QB_EXPERT_GATE, e, p->n_expert);
      u = qb_layer_expert (l, QB_EXPERT_UP, e, p->n_expert);
      d = qb_layer_expert (l, QB_EXPERT_DOWN, e, p->n_expert);
      for (gint32 r = 0; r < n; r++)
        memcpy (s->moe_x + r * E, s->xn + s->moe_tokens[a + r] * E, sizeof (float) * E);
      llama->act_expert = (int) e;
      ok = moe_expert_ffn (llama, &g, &u, &d, s->moe_x, s->moe_y, n, error);
      llama->act_expert = -1;
      for (gint32 r = 0; ok && r < n; r++)
        add_scaled (s->moe_out + s->moe_tokens[a + r] * E, s->moe_y + r * E,
                    s->moe_token_weight[a + r], E);
    }
  return ok;
}

/* The shared expert(s): every token; Qwen2-MoE's scaled by
 * sigmoid(xn · gate), DeepSeek's as they are. */
static gboolean
moe_shared (QbLlama *llama, QbLayer *l, guint T, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gint64 E = p->n_embd;
  const float *gw = l->gate_inp_shexp.values;

  for (guint t = 0; t < T && gw == NULL; t++)
    s->moe_shgate[t] = 1.0f;
  for (guint t = 0; t < T && gw != NULL; t++)
    {
      const float *x = s->xn + (gsize) t * E;
      double dot = 0;
      for (gint64 i = 0; i < E; i++)
        dot += (double) x[i] * gw[i];
      s->moe_shgate[t] = 1.0f / (1.0f + expf (-(float) dot));
    }
  if (!moe_expert_ffn (llama, &l->gate_shexp, &l->up_shexp, &l->down_shexp, s->xn, s->moe_y, T,
                       error))
    return FALSE;
  for (guint t = 0; t < T; t++)
    add_scaled (s->moe_out + (gsize) t * E, s->moe_y + (gsize) t * E, s->moe_shgate[t], E);
  return TRUE;
}

/* The FFN of a mixture-of-experts layer over xn, added to the stream. */
static gboolean
moe_ffn (QbLlama *llama, QbLayer *l, guint T, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gsize n = (gsize) T * p->n_embd;
  MatTask router = { &l->gate_inp, s->xn, s->moe_logits, 0.0f, 0, 0 };

  if (!matmul (llama, &router, 1, T, error))
    return FALSE;
  qb_moe_route (p, l->exp_probs_b.values, s->moe_logits, T, s->moe_expert, s->moe_weight,
                s->moe_select);
  moe_group (llama, T);
  memset (s->moe_out, 0, sizeof (float) * n);
  if (!moe_experts (llama, l, error))
    return FALSE;
  if (p->n_ff_shexp > 0 && !moe_shared (llama, l, T, error))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    s->x[i] += s->moe_out[i];
  return TRUE;
}

/* ---- the pass --------------------------------------------------------- */

static gboolean
embed (QbLlama *llama, const gint32 *tokens, guint n_tokens, GError **error)
{
  const QbWeight *w = &llama->tok_embd;
  gint64 E = llama->p.n_embd;

  for (guint t = 0; t < n_tokens; t++)
    {
      float *dst = llama->s.x + (gsize) t * E;
      const float *row = qb_weight_rows (llama, w, tokens[t], 1, dst, error);
      if (row == NULL)
        return FALSE;
      if (row != dst)
        memcpy (dst, row, sizeof (float) * E);
    }
  if (llama->p.family->embd_scale)
    {
      float scale = sqrtf ((float) E);
      for (gsize i = 0; i < (gsize) n_tokens * E; i++)
        llama->s.x[i] *= scale;
    }
  return TRUE;
}

/* Q, K and V of every head from xn: three products (with Qwen2's
 * biases), the Q/K norms, RoPE. */
static gboolean
qkv_heads (QbLlama *llama, QbLayer *l, guint T, const float *rope, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gsize qd = (gsize) p->n_head * p->head_dim, kvd = (gsize) p->n_head_kv * p->head_dim;
  float qkv_beta = p->qkv_bias ? 1.0f : 0.0f;
  MatTask qkv[3] = {
    { &l->wq, s->xn, s->q, qkv_beta, 0, 0 },
    { &l->wk, s->xn, s->k, qkv_beta, 0, 0 },
    { &l->wv, s->xn, s->v, qkv_beta, 0, 0 },
  };

  if (p->qkv_bias)
    {
      fill_rows (s->q, l->bq.values, T, qd);
      fill_rows (s->k, l->bk.values, T, kvd);
      fill_rows (s->v, l->bv.values, T, kvd);
    }
  if (!matmul (llama, qkv, 3, T, error))
    return FALSE;
  if (p->family->qk_norm)
    {
      /* Each head of Q and K on its own (rows of head_dim values). */
      rms_norm (s->q, l->q_norm.values, s->q, (gint64) T * p->n_head, p->head_dim, p->rms_eps);
      rms_norm (s->k, l->k_norm.values, s->k, (gint64) T * p->n_head_kv, p->head_dim, p->rms_eps);
    }
  rope_apply (llama, rope, s->q, T, p->n_head);
  rope_apply (llama, rope, s->k, T, p->n_head_kv);
  return TRUE;
}

/* Multi-head latent attention's Q, K and V (DeepSeek; llama.cpp's
 * build_deepseek2): Q from xn directly or through the normed low-rank
 * pair; the compressed KV (normed) expanded by attn_kv_b to each head's K
 * without RoPE and its V; RoPE on each Q head's last n_rot values and on
 * the one RoPE key that every head's K ends with. */
static gboolean
qkv_latent (QbLlama *llama, QbLayer *l, guint T, const float *rope, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  guint H = p->n_head, dk = p->head_dim, dv = p->head_dim_v, r = p->n_rot, nope = dk - r;
  guint qr = p->q_lora_rank, kvr = p->kv_lora_rank, kva = kvr + r, kvw = nope + dv;
  MatTask first[2] = {
    { qr > 0 ? &l->wq_a : &l->wq, s->xn, qr > 0 ? s->mla_qa : s->q, 0.0f, 0, 0 },
    { &l->wkv_a, s->xn, s->mla_kva, 0.0f, 0, 0 },
  };
  MatTask q_b = { &l->wq_b, s->mla_qa, s->q, 0.0f, 0, 0 };
  MatTask kv_b = { &l->wkv_b, s->mla_qa, s->mla_kv, 0.0f, 0, 0 };

  if (!matmul (llama, first, 2, T, error))
    return FALSE;
  if (qr > 0)
    {
      rms_norm (s->mla_qa, l->q_a_norm.values, s->mla_qa, T, qr, p->rms_eps);
      if (!matmul (llama, &q_b, 1, T, error))
        return FALSE;
    }
  /* The compressed KV, normed, into mla_qa (free again). */
  for (guint t = 0; t < T; t++)
    rms_norm (s->mla_kva + (gsize) t * kva, l->kv_a_norm.values, s->mla_qa + (gsize) t * kvr, 1,
              kvr, p->rms_eps);
  if (!matmul (llama, &kv_b, 1, T, error))
    return FALSE;
  rope_apply_at (llama, rope, s->q + nope, T, H, dk, (gsize) H * dk);
  rope_apply_at (llama, rope, s->mla_kva + kvr, T, 1, 0, kva);
  for (guint t = 0; t < T; t++)
    for (guint h = 0; h < H; h++)
      {
        const float *kv = s->mla_kv + ((gsize) t * H + h) * kvw;
        float *k = s->k + ((gsize) t * H + h) * dk;

        memcpy (k, kv, sizeof (float) * nope);
        memcpy (k + nope, s->mla_kva + (gsize) t * kva + kvr, sizeof (float) * r);
        memcpy (s->v + ((gsize) t * H + h) * dv, kv + nope, sizeof (float) * dv);
      }
  return TRUE;
}

/* The attention half of a layer: x += [post-norm] (attention (norm (x)) · Wo). */
static gboolean
attention_forward (QbLlama *llama, QbLayer *l, guint T, PassProgress *pp, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gint64 E = p->n_embd;
  gboolean post = p->family->post_norms;
  const float *rope = l->sliding && s->rope_local != NULL ? s->rope_local : s->rope;
  /* With a post-norm the output goes through xn before the residual. */
  MatTask out = { &l->wo, s->att, post ? s->xn : s->x, post ? 0.0f : 1.0f, 0, 0 };
  gboolean ok;

  rms_norm (s->x, l->attn_norm.values, s->xn, T, E, p->rms_eps);
  ok = p->kv_lora_rank > 0 ? qkv_latent (llama, l, T, rope, error)
                           : qkv_heads (llama, l, T, rope, error);
  if (!ok || !pass_step (pp, 1, error))
    return FALSE;
  if (!attention (llama, T, l->sliding, pp, error) || !matmul (llama, &out, 1, T, error))
    return FALSE;
  if (post)
    {
      rms_norm (s->xn, l->attn_post_norm.values, s->xn, T, E, p->rms_eps);
      add_rows (s->x, s->xn, (gsize) T * E);
    }
  return TRUE;
}

/* The FFN half: x += [post-norm] (down (act (gate (norm (x))) · up (norm (x)))). */
static gboolean
ffn_forward (QbLlama *llama, QbLayer *l, guint T, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gint64 E = p->n_embd;
  gboolean post = p->family->post_norms;
  MatTask ffn[2] = {
    { &l->gate, s->xn, s->gate, 0.0f, 0, 0 },
    { &l->up, s->xn, s->up, 0.0f, 0, 0 },
  };
  MatTask down = { &l->down, s->gate, post ? s->xn : s->x, post ? 0.0f : 1.0f, 0, 0 };

  rms_norm (s->x, l->ffn_norm.values, s->xn, T, E, p->rms_eps);
  if (p->n_expert > 0 && !l->dense)
    return moe_ffn (llama, l, T, error);
  if (!matmul (llama, ffn, 2, T, error))
    return FALSE;
  if (p->family->ffn == QB_FFN_GEGLU)
    geglu (s->gate, s->up, (gsize) T * p->n_ff, llama->ggml_activations);
  else
    swiglu (s->gate, s->up, (gsize) T * p->n_ff);
  if (!matmul (llama, &down, 1, T, error))
    return FALSE;
  if (post)
    {
      rms_norm (s->xn, l->ffn_post_norm.values, s->xn, T, E, p->rms_eps);
      add_rows (s->x, s->xn, (gsize) T * E);
    }
  return TRUE;
}

static gboolean
layer_forward (QbLlama *llama, QbLayer *l, guint T, PassProgress *pp, GError **error)
{
  return attention_forward (llama, l, T, pp, error) && ffn_forward (llama, l, T, error);
}

static gboolean
check_input (QbLlama *llama, const gint32 *tokens, guint n_tokens, guint first_output,
             GError **error)
{
  if (n_tokens == 0 || first_output >= n_tokens)
    {
      g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_INPUT,
                   "nothing to evaluate (%u tokens, outputs from %u)", n_tokens, first_output);
      return FALSE;
    }
  for (guint t = 0; t < n_tokens; t++)
    if (tokens[t] < 0 || (guint) tokens[t] >= llama->p.n_vocab)
      {
        g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_INPUT,
                     "token %d at position %u is outside the vocabulary of %u",
                     tokens[t], t, llama->p.n_vocab);
        return FALSE;
      }
  return TRUE;
}

/* Layers [first_layer, n_layer) over the residual stream already in s->x,
 * then the final norm and the output matrix for positions first_output..;
 * hidden (may be NULL) receives the stream entering each layer from
 * first_layer on and, last, the one entering the final norm. */
static gboolean
forward_layers (QbLlama *llama, guint first_layer, guint n_tokens, guint first_output,
                float *logits, float *hidden, QbLlamaProgressFunc progress,
                gpointer progress_data, GCancellable *cancellable, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  QbScratch *s = &llama->s;
  gsize stream = (gsize) n_tokens * p->n_embd;
  guint n_out = n_tokens - first_output;
  MatTask head;
  PassProgress pp;

  pass_progress_init (&pp, llama, n_tokens, progress, progress_data, cancellable);
  for (guint i = first_layer; i < p->n_layer; i++)
    {
      if (hidden != NULL)
        memcpy (hidden + (i - first_layer) * stream, s->x, sizeof (float) * stream);
      pp.layer = i;
      if (g_cancellable_set_error_if_cancelled (cancellable, error)
          || !layer_forward (llama, &llama->layers[i], n_tokens, &pp, error))
        return FALSE;
      if (progress != NULL)
        progress ((i + 1) * pp.n_steps, pp.total, progress_data);
    }
  if (hidden != NULL)
    memcpy (hidden + (p->n_layer - first_layer) * stream, s->x, sizeof (float) * stream);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  rms_norm (s->x + (gsize) first_output * p->n_embd, llama->output_norm.values, s->xn, n_out,
            p->n_embd, p->rms_eps);
  head = (MatTask) { &llama->output, s->xn, logits, 0.0f, 0, 0 };
  if (!matmul (llama, &head, 1, n_out, error))
    return FALSE;
  if (p->final_softcap > 0)
    softcap (logits, (gsize) n_out * p->n_vocab, p->final_softcap);
  if (progress != NULL)
    progress (pp.total, pp.total, progress_data);
  return TRUE;
}

/* A pass from the tokens (hidden_in NULL) or from the stream entering
 * first_layer; the workers are the parallelism, each sgemm runs on its
 * caller. */
static gboolean
forward (QbLlama *llama, const gint32 *tokens, guint first_layer, const float *hidden_in,
         guint n_tokens, guint first_output, float *logits, float *hidden_out,
         QbLlamaProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
         GError **error)
{
  int blas_threads = openblas_get_num_threads ();
  gboolean ok;

  scratch_reserve (llama, n_tokens);
  openblas_set_num_threads (1);
  rope_cache (llama, n_tokens);
  /* A pass may run on the selected device, from the tokens or from the
   * residual stream (the sensitivity study's passes). */
  switch (qb_llama_device_forward (llama, &llama->device, tokens, first_layer, hidden_in,
                                   hidden_out, n_tokens, first_output, logits, llama->s.rope,
                                   progress, progress_data, cancellable, error))
      {
      case QB_LLAMA_DEVICE_DONE:
        openblas_set_num_threads (blas_threads);
        return TRUE;
      case QB_LLAMA_DEVICE_FAILED:
        openblas_set_num_threads (blas_threads);
        return FALSE;
      default:
        break;
      }
  if (hidden_in != NULL)
    {
      memcpy (llama->s.x, hidden_in, sizeof (float) * n_tokens * llama->p.n_embd);
      ok = TRUE;
    }
  else
    ok = embed (llama, tokens, n_tokens, error);
  ok = ok && forward_layers (llama, first_layer, n_tokens, first_output, logits, hidden_out,
                             progress, progress_data, cancellable, error);
  openblas_set_num_threads (blas_threads);
  return ok;
}

gboolean
qb_llama_forward (QbLlama *llama, const gint32 *tokens, guint n_tokens, guint first_output,
                  float *logits, QbLlamaProgressFunc progress, gpointer progress_data,
                  GCancellable *cancellable, GError **error)
{
  if (!check_input (llama, tokens, n_tokens, first_output, error))
    return FALSE;
  return forward (llama, tokens, 0, NULL, n_tokens, first_output, logits, NULL, progress,
                  progress_data, cancellable, error);
}

gboolean
qb_llama_forward_keep (QbLlama *llama, const gint32 *tokens, guint n_tokens, guint first_output,
                       float *logits, float *hidden, GCancellable *cancellable, GError **error)
{
  if (!check_input (llama, tokens, n_tokens, first_output, error))
    return FALSE;
  return forward (llama, tokens, 0, NULL, n_tokens, first_output, logits, hidden, NULL, NULL,
                  cancellable, error);
}

gboolean
qb_llama_forward_from (QbLlama *llama, guint first_layer, const float *hidden, guint n_tokens,
                       guint first_output, float *logits, GCancellable *cancellable,
                       GError **error)
{
  if (first_layer > llama->p.n_layer || hidden == NULL || n_tokens == 0
      || first_output >= n_tokens)
    {
      g_set_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_INPUT,
                   "cannot run from layer %u of %u (%u tokens, outputs from %u)",
                   first_layer, llama->p.n_layer, n_tokens, first_output);
      return FALSE;
    }
  return forward (llama, NULL, first_layer, hidden, n_tokens, first_output, logits, NULL, NULL,
                  NULL, cancellable, error);
}
