/* SPDX-License-Identifier: MIT */
/* qb-llama-device.c — the forward pass on an OpenCL device.
 *
 * Weights are dequantized on the host once and uploaded as float32, then
 * stay on the device for every later chunk (a weight swapped by a plan is
 * uploaded again); products go through CLBlast's SGEMM, the element-wise
 * steps through qb-llama-device.cl; attention is a product per head for
 * the scores, the causal softmax, and a product per head with V.  The
 * logits the caller asked for come back to the host.  A model whose
 * float32 weights do not fit the device, calibration hooks (activation
 * callbacks) and any device error send the pass back to the CPU; with
 * activation statistics on the device (qb-llama-accum.c) each product's
 * input is added to them and such a pass fails instead.
 */
#include "qb-llama-device-private.h"
#include "qb-device-private.h"
#include "qb-llama-accum-private.h"
#include "qb-llama-device-cl.h"

#include <clblast_c.h>
#include <math.h>
#include <string.h>

static gint64 passes, scored, logit_rows;   /* atomic */

guint64
qb_llama_device_passes (void)
{
  return (guint64) __atomic_load_n (&passes, __ATOMIC_RELAXED);
}

guint64
qb_llama_device_scored (void)
{
  return (guint64) __atomic_load_n (&scored, __ATOMIC_RELAXED);
}

guint64
qb_llama_device_logit_rows (void)
{
  return (guint64) __atomic_load_n (&logit_rows, __ATOMIC_RELAXED);
}

/* Work-items per scored position: SCORE_GROUP in qb-llama-device.cl. */
#define SCORE_GROUP 64

/* A weight as uploaded: what it was made from, so a swap is noticed. */
typedef struct {
  cl_mem          mem;
  const QbFormat *format;
  GBytes         *bytes;     /* a reference: the address cannot be reused */
  const float    *f32;
  const QbTensor *t;
} DeviceWeight;

struct _QbLlamaDevice {
  QbDevice   *device;
  cl_kernel   rms_norm, fill_rows, rope, softmax, swiglu;
  cl_kernel   score;          /* NULL: the host scores (no fp64, small groups) */
  GHashTable *weights;        /* QbWeight* -> DeviceWeight* */
  guint       n_tokens;       /* capacity of the activations */
  cl_mem      x, xn, q, k, v, att, gate, up, rope_cache, scores, logits, norm;
  guint       logits_rows;
  gboolean    failed;         /* an error happened: stay on the CPU */
  gboolean    ran;            /* the last pass ran here */
};

const char *
qb_llama_device_label (QbLlama *llama)
{
  QbLlamaDevice *d = llama->device;

  return d != NULL && !d->failed && d->ran ? qb_device_get_label (d->device) : "cpu";
}

static void
device_weight_free (gpointer data)
{
  DeviceWeight *dw = data;

  if (dw->mem != NULL)
    clReleaseMemObject (dw->mem);
  g_clear_pointer (&dw->bytes, g_bytes_unref);
  g_free (dw);
}

static void
release_mem (cl_mem *m)
{
  if (*m != NULL)
    clReleaseMemObject (*m);
  *m = NULL;
}

static void
release_activations (QbLlamaDevice *d)
{
  cl_mem *all[] = { &d->x, &d->xn, &d->q, &d->k, &d->v, &d->att, &d->gate, &d->up,
                    &d->rope_cache, &d->scores, &d->logits, &d->norm };

  for (gsize i = 0; i < G_N_ELEMENTS (all); i++)
    release_mem (all[i]);
  d->n_tokens = 0;
  d->logits_rows = 0;
}

void
qb_llama_device_free (QbLlamaDevice *d)
{
  cl_kernel k[6];

  if (d == NULL)
    return;
  k[0] = d->rms_norm, k[1] = d->fill_rows, k[2] = d->rope, k[3] = d->softmax, k[4] = d->swiglu;
  k[5] = d->score;
  release_activations (d);
  g_clear_pointer (&d->weights, g_hash_table_destroy);
  for (int i = 0; i < 6; i++)
    if (k[i] != NULL)
      clReleaseKernel (k[i]);
  qb_device_unref (d->device);
  g_free (d);
}

static QbLlamaDevice *
device_new (QbDevice *device, GError **error)
{
  g_autoptr(QbLlamaDevice) d = g_new0 (QbLlamaDevice, 1);
  const char *options = qb_device_get_info (device)->fp64 ? "-cl-std=CL1.2 -DQB_FP64" : "-cl-std=CL1.2";
  cl_program program;
  cl_int s = CL_SUCCESS;

  d->device = qb_device_ref (device);
  d->weights = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, device_weight_free);
  program = qb_device_get_program (device, qb_llama_device_source, options, error);
  if (program == NULL)
    return NULL;
  d->rms_norm = clCreateKernel (program, "rms_norm", &s);
  if (s == CL_SUCCESS)
    d->fill_rows = clCreateKernel (program, "fill_rows", &s);
  if (s == CL_SUCCESS)
    d->rope = clCreateKernel (program, "rope", &s);
  if (s == CL_SUCCESS)
    d->softmax = clCreateKernel (program, "softmax_causal", &s);
  if (s == CL_SUCCESS)
    d->swiglu = clCreateKernel (program, "swiglu", &s);
  if (!qb_device_check (s, "creating the evaluation kernels", error))
    return NULL;
  if (qb_device_get_info (device)->fp64)
    {
      size_t wg = 0;
      d->score = clCreateKernel (program, "score_positions", &s);
      if (d->score != NULL &&
          (clGetKernelWorkGroupInfo (d->score, qb_device_get_id (device), CL_KERNEL_WORK_GROUP_SIZE,
                                     sizeof wg, &wg, NULL) != CL_SUCCESS || wg < SCORE_GROUP))
        g_clear_pointer (&d->score, clReleaseKernel);
    }
  return g_steal_pointer (&d);
}

/* ---- weights ---------------------------------------------------------------- */

static guint64
weight_bytes (const QbWeight *w)
{
  return w->t != NULL ? (guint64) w->n_rows * w->n_cols * sizeof (float) : 0;
}

/* Every matrix as float32, and the activations, must fit. */
static gboolean
fits (QbLlama *llama, QbDevice *device, guint n_tokens, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  const QbDeviceInfo *info = qb_device_get_info (device);
  guint64 total = weight_bytes (&llama->output), T = n_tokens;

  if (!p->tied_output)
    total += weight_bytes (&llama->tok_embd);
  for (guint i = 0; i < p->n_layer; i++)
    {
      QbLayer *l = &llama->layers[i];
      const QbWeight *m[] = { &l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down };
      for (gsize j = 0; j < G_N_ELEMENTS (m); j++)
        {
          total += weight_bytes (m[j]);
          if (weight_bytes (m[j]) > info->max_alloc)
            total = G_MAXUINT64 / 2;
        }
    }
  total += sizeof (float) * (T * T + T * p->n_vocab + 8 * T * MAX (p->n_ff, p->n_embd));
  if (total <= info->global_mem / 10 * 9 && weight_bytes (&llama->output) <= info->max_alloc)
    return TRUE;
  g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_MEMORY,
               "%s: the model's float32 weights and activations (%" G_GUINT64_FORMAT
               " MiB) do not fit its %" G_GUINT64_FORMAT " MiB", qb_device_get_label (device),
               total >> 20, info->global_mem >> 20);
  return FALSE;
}

/* The weight on the device, uploaded unless it already is as it stands. */
static cl_mem
upload_weight (QbLlama *llama, QbLlamaDevice *d, const QbWeight *w, GError **error)
{
  DeviceWeight *dw = g_hash_table_lookup (d->weights, w);
  g_autofree float *buf = NULL;
  const float *rows;
  cl_int s;

  if (dw != NULL && dw->format == w->format && dw->bytes == w->bytes && dw->f32 == w->f32 &&
      dw->t == w->t)
    return dw->mem;
  g_hash_table_remove (d->weights, w);
  buf = g_try_new (float, (gsize) w->n_rows * w->n_cols);
  if (buf == NULL)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_MEMORY, "no host memory to upload %s",
                   w->t->name);
      return NULL;
    }
  rows = qb_weight_rows (llama, w, 0, w->n_rows, buf, error);
  if (rows == NULL)
    return NULL;
  dw = g_new0 (DeviceWeight, 1);
  dw->mem = qb_device_alloc (d->device, CL_MEM_READ_ONLY, weight_bytes (w), error);
  if (dw->mem == NULL)
    {
      device_weight_free (dw);
      return NULL;
    }
  s = clEnqueueWriteBuffer (qb_device_get_queue (d->device), dw->mem, CL_TRUE, 0, weight_bytes (w),
                            rows, 0, NULL, NULL);
  if (!qb_device_check (s, "uploading weights", error))
    {
      device_weight_free (dw);
      return NULL;
    }
  dw->format = w->format;
  dw->bytes = w->bytes ? g_bytes_ref (w->bytes) : NULL;
  dw->f32 = w->f32;
  dw->t = w->t;
  g_hash_table_insert (d->weights, (gpointer) w, dw);
  return dw->mem;
}

/* ---- activations ---------------------------------------------------------------- */

static gboolean
reserve (QbLlama *llama, QbLlamaDevice *d, guint T, guint n_out, GError **error)
{
  const QbLlamaParams *p = &llama->p;
  gsize qd = (gsize) p->n_head * p->head_dim, kvd = (gsize) p->n_head_kv * p->head_dim, f = sizeof (float);
  struct { cl_mem *m; gsize floats; } want[] = {
    { &d->x, (gsize) T * p->n_embd }, { &d->xn, (gsize) T * MAX (p->n_embd, qd) },
    { &d->q, T * qd }, { &d->k, T * kvd }, { &d->v, T * kvd }, { &d->att, T * qd },
    { &d->gate, (gsize) T * p->n_ff }, { &d->up, (gsize) T * p->n_ff },
    { &d->rope_cache, (gsize) T * p->n_rot }, { &d->scores, (gsize) T * T },
    { &d->norm, p->n_embd },
  };

  if (d->n_tokens < T)
    {
      release_activations (d);
      for (gsize i = 0; i < G_N_ELEMENTS (want); i++)
        if ((*want[i].m = qb_device_alloc (d->device, CL_MEM_READ_WRITE, want[i].floats * f, error)) == NULL)
          {
            release_activations (d);
            return FALSE;
          }
      d->n_tokens = T;
    }
  if (d->logits_rows < n_out)
    {
      release_mem (&d->logits);
      d->logits = qb_device_alloc (d->device, CL_MEM_READ_WRITE, (gsize) n_out * p->n_vocab * f, error);
      if (d->logits == NULL)
        return FALSE;
      d->logits_rows = n_out;
    }
  return TRUE;
}

/* ---- steps -------------------------------------------------------------------- */

typedef struct {
  QbLlama       *llama;
  QbLlamaDevice *d;
  cl_command_queue queue;
  cl_int         status;       /* the first error */
  CLBlastStatusCode blas;
  GError       **error;
} Run;

static gboolean
ok (Run *r)
{
  return r->status == CL_SUCCESS && r->blas == CLBlastSuccess;
}

static void
launch (Run *r, cl_kernel k, gsize n)
{
  size_t global = (n + 63) / 64 * 64;

  if (ok (r))
    r->status = clEnqueueNDRangeKernel (r->queue, k, 1, NULL, &global, NULL, 0, NULL, NULL);
}

#define ARG(k, i, v) clSetKernelArg ((k), (i), sizeof (v), &(v))

/* y (T × n_rows, offset y_off, row stride ldy) = beta·y + x (T × n_cols) · Wᵀ */
static void
gemm_w (Run *r, const QbWeight *w, cl_mem x, guint T, cl_mem y, float beta)
{
  cl_mem wm;

  if (!ok (r))
    return;
  if ((wm = upload_weight (r->llama, r->d, w, r->error)) == NULL
      || (r->llama->accum != NULL
          && !qb_llama_accum_see (r->llama->accum, r->queue, w->index, x, T, r->error)))
    {
      r->status = CL_OUT_OF_RESOURCES;
      return;
    }
  r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                          T, w->n_rows, w->n_cols, 1.0f, x, 0, w->n_cols, wm, 0, w->n_cols,
                          beta, y, 0, w->n_rows, &r->queue, NULL);
}

static void
rms_norm (Run *r, cl_mem x, guint row0, const QbVector *weight, cl_mem y, guint n_rows)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  cl_int n = (cl_int) p->n_embd, rows = (cl_int) n_rows, first = (cl_int) row0;
  float eps = p->rms_eps;

  if (!ok (r))
    return;
  r->status = clEnqueueWriteBuffer (r->queue, d->norm, CL_TRUE, 0, sizeof (float) * n,
                                    weight->values, 0, NULL, NULL);
  if (!ok (r))
    return;
  ARG (d->rms_norm, 0, x);
  ARG (d->rms_norm, 1, d->norm);
  ARG (d->rms_norm, 2, y);
  ARG (d->rms_norm, 3, rows);
  ARG (d->rms_norm, 4, n);
  ARG (d->rms_norm, 5, eps);
  ARG (d->rms_norm, 6, first);
  launch (r, d->rms_norm, n_rows);
}

static void
fill_bias (Run *r, cl_mem y, const QbVector *bias, guint T, gsize n)
{
  QbLlamaDevice *d = r->d;
  cl_mem b;
  cl_int nn = (cl_int) n;
  cl_long total = (cl_long) T * n;

  if (!ok (r))
    return;
  b = clCreateBuffer (qb_device_get_context (d->device), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                      n * sizeof (float), bias->values, &r->status);
  if (!ok (r))
    return;
  ARG (d->fill_rows, 0, y);
  ARG (d->fill_rows, 1, b);
  ARG (d->fill_rows, 2, nn);
  ARG (d->fill_rows, 3, total);
  launch (r, d->fill_rows, total);
  clFinish (r->queue);
  clReleaseMemObject (b);
}

static void
rope (Run *r, cl_mem x, guint T, guint n_heads)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  cl_int t = T, h = n_heads, hd = p->head_dim, nr = p->n_rot, neox = p->rope_style == QB_ROPE_NEOX;

  if (!ok (r))
    return;
  ARG (d->rope, 0, x);
  ARG (d->rope, 1, d->rope_cache);
  ARG (d->rope, 2, t);
  ARG (d->rope, 3, h);
  ARG (d->rope, 4, hd);
  ARG (d->rope, 5, nr);
  ARG (d->rope, 6, neox);
  launch (r, d->rope, (gsize) T * n_heads * (p->n_rot / 2));
}

static void
attention (Run *r, guint T)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  gsize hd = p->head_dim, qs = (gsize) p->n_head * hd, ks = (gsize) p->n_head_kv * hd;
  cl_int rows = T, keys = T;

  for (guint h = 0; h < p->n_head && ok (r); h++)
    {
      guint g = h / (p->n_head / p->n_head_kv);

      r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                              T, T, hd, 1.0f / sqrtf ((float) hd), d->q, h * hd, qs,
                              d->k, g * hd, ks, 0.0f, d->scores, 0, T, &r->queue, NULL);
      if (!ok (r))
        return;
      ARG (d->softmax, 0, d->scores);
      ARG (d->softmax, 1, rows);
      ARG (d->softmax, 2, keys);
      launch (r, d->softmax, T);
      if (!ok (r))
        return;
      r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
                              T, hd, T, 1.0f, d->scores, 0, T, d->v, g * hd, ks,
                              0.0f, d->att, h * hd, qs, &r->queue, NULL);
    }
}

static void
swiglu (Run *r, guint T)
{
  QbLlamaDevice *d = r->d;
  cl_long n = (cl_long) T * r->llama->p.n_ff;

  if (!ok (r))
    return;
  ARG (d->swiglu, 0, d->gate);
  ARG (d->swiglu, 1, d->up);
  ARG (d->swiglu, 2, n);
  launch (r, d->swiglu, n);
}

static void
layer (Run *r, QbLayer *l, guint T)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  gsize qd = (gsize) p->n_head * p->head_dim, kvd = (gsize) p->n_head_kv * p->head_dim;
  float qkv_beta = p->qkv_bias ? 1.0f : 0.0f;

  rms_norm (r, d->x, 0, &l->attn_norm, d->xn, T);
  if (p->qkv_bias)
    {
      fill_bias (r, d->q, &l->bq, T, qd);
      fill_bias (r, d->k, &l->bk, T, kvd);
      fill_bias (r, d->v, &l->bv, T, kvd);
    }
  gemm_w (r, &l->wq, d->xn, T, d->q, qkv_beta);
  gemm_w (r, &l->wk, d->xn, T, d->k, qkv_beta);
  gemm_w (r, &l->wv, d->xn, T, d->v, qkv_beta);
  rope (r, d->q, T, p->n_head);
  rope (r, d->k, T, p->n_head_kv);
  attention (r, T);
  gemm_w (r, &l->wo, d->att, T, d->x, 1.0f);
  rms_norm (r, d->x, 0, &l->ffn_norm, d->xn, T);
  gemm_w (r, &l->gate, d->xn, T, d->gate, 0.0f);
  gemm_w (r, &l->up, d->xn, T, d->up, 0.0f);
  swiglu (r, T);
  gemm_w (r, &l->down, d->gate, T, d->x, 1.0f);
}

/* The embedding rows of the tokens and the RoPE table, from the host. */
static gboolean
upload_inputs (Run *r, const gint32 *tokens, guint T, const float *rope_table, GError **error)
{
  QbLlama *llama = r->llama;
  gint64 E = llama->p.n_embd;
  g_autofree float *x = g_new (float, (gsize) T * E);

  for (guint t = 0; t < T; t++)
    {
      float *dst = x + (gsize) t * E;
      const float *row = qb_weight_rows (llama, &llama->tok_embd, tokens[t], 1, dst, error);
      if (row == NULL)
        return FALSE;
      if (row != dst)
        memcpy (dst, row, sizeof (float) * E);
    }
  r->status = clEnqueueWriteBuffer (r->queue, r->d->x, CL_TRUE, 0, sizeof (float) * T * E, x, 0, NULL, NULL);
  if (ok (r))
    r->status = clEnqueueWriteBuffer (r->queue, r->d->rope_cache, CL_TRUE, 0,
                                      sizeof (float) * T * llama->p.n_rot, rope_table, 0, NULL, NULL);
  return TRUE;
}

static void
run_failed (Run *r, GError **error)
{
  if (error != NULL && *error != NULL)
    return;
  if (r->blas != CLBlastSuccess)
    g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_FAILED, "CLBlast error %d", r->blas);
  else
    qb_device_check (r->status, "evaluating on the device", error);
}

/* The positions scored on the device from the logits there (the
 * scoring's inputs uploaded, its scores and records read back). */
static void
score (Run *r, QbLlamaScoring *sc, guint n_vocab)
{
  QbDevice *dev = r->d->device;
  gsize n = sc->n_positions, rec = (gsize) n * sc->record_len * sizeof (guint16);
  cl_mem targets = NULL, base = NULL, records = NULL, scores = NULL;
  cl_kernel k = r->d->score;
  cl_int nv = (cl_int) n_vocab, len = (cl_int) sc->record_len;
  size_t local = SCORE_GROUP, global = n * SCORE_GROUP;
  guint a = 0;

  if (!ok (r) || n == 0)
    return;
  for (gsize i = 0; i < n; i++)
    if (sc->targets[i] < 0 || (guint) sc->targets[i] >= n_vocab)
      return;   /* not a token: the logits go to the host */
  targets = qb_device_alloc (dev, CL_MEM_READ_ONLY, n * sizeof (gint32), r->error);
  scores = qb_device_alloc (dev, CL_MEM_WRITE_ONLY, n * sizeof (QbLlamaScore), r->error);
  if (sc->base != NULL && targets != NULL)
    base = qb_device_alloc (dev, CL_MEM_READ_ONLY, rec, r->error);
  if (sc->records != NULL && targets != NULL)
    records = qb_device_alloc (dev, CL_MEM_WRITE_ONLY, rec, r->error);
  if (targets == NULL || scores == NULL || (sc->base && base == NULL) || (sc->records && records == NULL))
    r->status = CL_MEM_OBJECT_ALLOCATION_FAILURE;
  if (ok (r))
    r->status = clEnqueueWriteBuffer (r->queue, targets, CL_FALSE, 0, n * sizeof (gint32), sc->targets,
                                      0, NULL, NULL);
  if (ok (r) && base != NULL)
    r->status = clEnqueueWriteBuffer (r->queue, base, CL_FALSE, 0, rec, sc->base, 0, NULL, NULL);
  if (ok (r))
    {
      cl_int s = CL_SUCCESS;
      s |= clSetKernelArg (k, a++, sizeof (cl_mem), &r->d->logits);
      s |= ARG (k, a++, nv);
      s |= clSetKernelArg (k, a++, sizeof (cl_mem), &targets);
      s |= clSetKernelArg (k, a++, sizeof (cl_mem), base != NULL ? &base : NULL);
      s |= clSetKernelArg (k, a++, sizeof (cl_mem), records != NULL ? &records : NULL);
      s |= ARG (k, a++, len);
      s |= clSetKernelArg (k, a++, sizeof (cl_mem), &scores);
      r->status = s != CL_SUCCESS ? CL_INVALID_KERNEL_ARGS
                  : clEnqueueNDRangeKernel (r->queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
    }
  if (ok (r))
    r->status = clEnqueueReadBuffer (r->queue, scores, CL_FALSE, 0, n * sizeof (QbLlamaScore),
                                     sc->scores, 0, NULL, NULL);
  if (ok (r) && records != NULL)
    r->status = clEnqueueReadBuffer (r->queue, records, CL_FALSE, 0, rec, sc->records, 0, NULL, NULL);
  /* Nothing may still use the host's arrays or the buffers below. */
  if (ok (r))
    r->status = clFinish (r->queue);
  else
    clFinish (r->queue);
  {
    cl_mem mems[] = { targets, base, records, scores };
    for (gsize i = 0; i < G_N_ELEMENTS (mems); i++)
      if (mems[i] != NULL)
        clReleaseMemObject (mems[i]);
  }
  if (ok (r))
    {
      sc->done = TRUE;
      __atomic_add_fetch (&scored, (gint64) n, __ATOMIC_RELAXED);
    }
}

/* The device pass has the LLaMA/Mistral/Qwen2 pieces only; NULL when it
 * can run this model, else what it lacks. */
static const char *
device_lacks (QbLlama *llama)
{
  const QbLlamaParams *p = &llama->p;
  const QbFamily *f = p->family;

  if (llama->ggml_activations)
    return "llama.cpp's activation rounding";
  if (f->qk_norm)
    return "Q/K norms";
  if (f->post_norms)
    return "post-norms";
  if (f->embd_scale)
    return "embedding scaling";
  if (f->ffn != QB_FFN_SWIGLU)
    return "GeGLU";
  if (p->attn_softcap > 0 || p->final_softcap > 0)
    return "soft-capping";
  if (p->swa_window > 0)
    return "sliding-window attention";
  if (p->attn_scale != 1.0f / sqrtf ((float) p->head_dim))
    return "its query scale";
  return NULL;
}

QbLlamaDeviceOutcome
qb_llama_device_forward (QbLlama *llama, QbLlamaDevice **state, const gint32 *tokens,
                         guint T, guint first_output, float *logits, const float *rope_table,
                         QbLlamaProgressFunc progress, gpointer progress_data,
                         GCancellable *cancellable, GError **error)
{
  g_autoptr(QbDevice) device = qb_device_dup_default ();
  g_autoptr(GError) local = NULL;
  const QbLlamaParams *p = &llama->p;
  guint n_out = T - first_output;
  Run r = { llama, NULL, NULL, CL_SUCCESS, CLBlastSuccess, &local };
  QbLlamaAccum *accum = llama->accum;
  guint n_layer = accum != NULL ? MIN (p->n_layer, qb_llama_accum_get_spec (accum)->last_layer + 1) : p->n_layer;

  if (*state != NULL)
    (*state)->ran = FALSE;
  if (accum != NULL && (device != qb_llama_accum_get_device (accum) || device_lacks (llama) != NULL))
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED, "%s",
                   device != qb_llama_accum_get_device (accum) ? "the selected device changed"
                   : device_lacks (llama));
      return QB_LLAMA_DEVICE_FAILED;
    }
  /* Mixtures of experts run on the CPU. */
  if (device == NULL || llama->act_func != NULL || p->n_expert > 0)
    return QB_LLAMA_DEVICE_DECLINED;
  if (device_lacks (llama) != NULL)
    {
      if (!llama->device_told)
        g_message ("the device forward pass has no %s (for this %s model); evaluating on the CPU",
                   device_lacks (llama), llama->p.family->arch);
      llama->device_told = TRUE;
      return QB_LLAMA_DEVICE_DECLINED;
    }
  if (*state != NULL && ((*state)->device != device || (*state)->failed))
    {
      if ((*state)->device == device && accum == NULL)
        return QB_LLAMA_DEVICE_DECLINED;   /* failed before: CPU for good */
      g_clear_pointer (state, qb_llama_device_free);
    }
  if (*state == NULL)
    {
      if (!fits (llama, device, T, &local) || (*state = device_new (device, &local)) == NULL)
        goto declined;
    }
  r.d = *state;
  r.queue = qb_device_get_queue (device);
  if (!reserve (llama, r.d, T, n_out, &local) || !upload_inputs (&r, tokens, T, rope_table, &local))
    goto declined;
  if (accum != NULL)
    qb_llama_accum_new_pass (accum);
  for (guint i = 0; i < n_layer && ok (&r); i++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          clFinish (r.queue);
          return QB_LLAMA_DEVICE_FAILED;
        }
      layer (&r, &llama->layers[i], T);
      if (ok (&r))
        r.status = clFinish (r.queue);
      if (progress != NULL && ok (&r))
        progress (i + 1, p->n_layer + 1, progress_data);
    }
  /* Statistics that do not want the output matrix's input stop here. */
  if (accum != NULL && !qb_llama_accum_get_spec (accum)->output)
    goto done;
  rms_norm (&r, r.d->x, first_output, &llama->output_norm, r.d->xn, n_out);
  gemm_w (&r, &llama->output, r.d->xn, n_out, r.d->logits, 0.0f);
  if (llama->scoring != NULL && r.d->score != NULL && llama->scoring->n_positions <= n_out)
    score (&r, llama->scoring, p->n_vocab);
  if (ok (&r) && (llama->scoring == NULL || !llama->scoring->done))
    {
      r.status = clEnqueueReadBuffer (r.queue, r.d->logits, CL_TRUE, 0,
                                      sizeof (float) * n_out * p->n_vocab, logits, 0, NULL, NULL);
      __atomic_add_fetch (&logit_rows, (gint64) n_out, __ATOMIC_RELAXED);
    }
done:
  if (!ok (&r))
    {
      run_failed (&r, &local);
      clFinish (r.queue);
      goto declined;
    }
  __atomic_add_fetch (&passes, 1, __ATOMIC_RELAXED);
  r.d->ran = TRUE;
  /* A pass stopped early for statistics ends without its last unit, as on the CPU. */
  if (progress != NULL && (accum == NULL || qb_llama_accum_get_spec (accum)->output))
    progress (p->n_layer + 1, p->n_layer + 1, progress_data);
  return QB_LLAMA_DEVICE_DONE;

declined:
  if (accum != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      if (error != NULL && *error == NULL)
        g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_FAILED, "the device pass failed");
      return QB_LLAMA_DEVICE_FAILED;
    }
  g_message ("%s; evaluating on the CPU", local ? local->message : "device evaluation failed");
  if (*state != NULL)
    (*state)->failed = TRUE;
  return QB_LLAMA_DEVICE_DECLINED;
}
