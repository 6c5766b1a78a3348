/* SPDX-License-Identifier: MIT */
/* qb-llama-device.c — the forward pass on an OpenCL device.
 *
 * Weights go to the device as they are stored: the blocks of a plan's
 * format or of the model file's type, dequantized there (qb-dequant-
 * device.cl) into a float32 scratch right before each product; float32
 * weights, and types without a device kernel (dequantized on the host),
 * as float32.  They stay on the device for every later chunk (a weight
 * swapped by a plan is uploaded again).  A model whose weights do not fit
 * the device's memory (or QB_DEVICE_MEM_LIMIT) keeps as many layers as fit
 * and streams the others through one slot, each uploaded right before its
 * layer runs; the products are the same either way.  Products go through
 * CLBlast's SGEMM, the element-wise steps through qb-llama-device.cl;
 * attention is a product per head for the scores, the causal softmax, and
 * a product per head with V.  The positions are scored on the device when
 * asked (qb-eval.c), else the logits come back.  Calibration hooks
 * (activation callbacks), a model of which not even one layer fits, and
 * any device error send the pass back to the CPU; with activation
 * statistics on the device (qb-llama-accum.c) each product's input is
 * added to them and such a pass fails instead.
 */
#include "qb-llama-device-private.h"
#include "qb-device-private.h"
#include "qb-dequant-device-private.h"
#include "qb-llama-accum-private.h"
#include "qb-llama-device-cl.h"

#include <clblast_c.h>
#include <math.h>
#include <string.h>

static gint64 passes, scored, logit_rows, streamed, dequantized;   /* atomic */

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
qb_llama_device_streamed (void)
{
  return (guint64) __atomic_load_n (&streamed, __ATOMIC_RELAXED);
}

guint64
qb_llama_device_dequantized (void)
{
  return (guint64) __atomic_load_n (&dequantized, __ATOMIC_RELAXED);
}

guint64
qb_llama_device_logit_rows (void)
{
  return (guint64) __atomic_load_n (&logit_rows, __ATOMIC_RELAXED);
}

/* Work-items per scored position: SCORE_GROUP in qb-llama-device.cl. */
#define SCORE_GROUP 64

/* A resident weight as uploaded: what it was made from, so a swap is
 * noticed. */
typedef struct {
  cl_mem          mem;
  const QbFormat *format;
  GBytes         *bytes;     /* a reference: the address cannot be reused */
  const float    *f32;
  const QbTensor *t;
} DeviceWeight;

/* What a weight becomes on the device: its blocks (dequantized there into
 * the scratch right before each product) or float32 rows. */
typedef struct {
  QbDType      dtype;   /* F32: floats, multiplied in place; else blocks */
  const void  *host;    /* the bytes to upload; NULL: dequantized on the host first */
  guint64      size;    /* bytes on the device */
} WeightSource;

/* Weights are grouped in units: a layer's matrices, then the output head
 * (unit n_layer).  Units that do not fit the device's memory are streamed:
 * uploaded into one slot right before they are needed. */
#define UNIT_ALIGN 256

struct _QbLlamaDevice {
  QbDevice   *device;
  cl_kernel   rms_norm, fill_rows, rope, softmax, swiglu, geglu, add_rows, softcap;
  cl_kernel   score;          /* NULL: the host scores (no fp64, small groups) */
  QbDequantDevice *dequant;
  GHashTable *weights;        /* QbWeight* -> DeviceWeight*: the resident ones */
  guint       n_resident;     /* units 0..n_resident-1 stay on the device */
  cl_mem      slot;           /* the streamed unit of the moment */
  guint64     slot_size;
  cl_mem      scratch;        /* a weight's float32 values, dequantized */
  guint64     scratch_floats;
  guint       n_tokens;       /* capacity of the activations */
  cl_mem      x, xn, q, k, v, att, gate, up, rope_cache, rope_local, scores, logits, norm;
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
                    &d->rope_cache, &d->rope_local, &d->scores, &d->logits, &d->norm };

  for (gsize i = 0; i < G_N_ELEMENTS (all); i++)
    release_mem (all[i]);
  d->n_tokens = 0;
  d->logits_rows = 0;
}

void
qb_llama_device_free (QbLlamaDevice *d)
{
  cl_kernel k[] = { d ? d->rms_norm : NULL, d ? d->fill_rows : NULL, d ? d->rope : NULL,
                    d ? d->softmax : NULL, d ? d->swiglu : NULL, d ? d->geglu : NULL,
                    d ? d->add_rows : NULL, d ? d->softcap : NULL, d ? d->score : NULL };

  if (d == NULL)
    return;
  release_activations (d);
  release_mem (&d->slot);
  release_mem (&d->scratch);
  g_clear_pointer (&d->weights, g_hash_table_destroy);
  g_clear_pointer (&d->dequant, qb_dequant_device_free);
  for (gsize i = 0; i < G_N_ELEMENTS (k); i++)
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
  {
    struct { cl_kernel *k; const char *name; } kernels[] = {
      { &d->rms_norm, "rms_norm" }, { &d->fill_rows, "fill_rows" }, { &d->rope, "rope" },
      { &d->softmax, "softmax_causal" }, { &d->swiglu, "swiglu" }, { &d->geglu, "geglu" },
      { &d->add_rows, "add_rows" }, { &d->softcap, "softcap" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS (kernels) && s == CL_SUCCESS; i++)
      *kernels[i].k = clCreateKernel (program, kernels[i].name, &s);
  }
  if (!qb_device_check (s, "creating the evaluation kernels", error))
    return NULL;
  if ((d->dequant = qb_dequant_device_new (device, error)) == NULL)
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

static void
weight_source (const QbWeight *w, WeightSource *src)
{
  QbDType dtype = w->format != NULL ? w->format->dtype : w->f32 != NULL ? QB_DTYPE_F32 : w->t->dtype;
  const QbDTypeInfo *info = qb_dtype_info (dtype);
  const guint8 *base;
  guint64 row_bytes;

  src->dtype = QB_DTYPE_F32;
  src->host = NULL;
  src->size = (guint64) w->n_rows * w->n_cols * sizeof (float);
  if (w->format == NULL && w->f32 != NULL)
    {
      src->host = w->f32 + w->row0 * w->n_cols;
      return;
    }
  /* Types without a device kernel are dequantized on the host. */
  if (info == NULL || (dtype != QB_DTYPE_F32 && !qb_dequant_device_has (dtype)) ||
      w->n_cols % info->block_size != 0)
    return;
  row_bytes = (guint64) (w->n_cols / info->block_size) * info->type_size;
  if (w->format != NULL && w->row_bytes != row_bytes)
    return;
  base = w->format != NULL ? g_bytes_get_data (w->bytes, NULL) : w->t->data;
  src->dtype = dtype;
  src->host = base + (guint64) w->row0 * row_bytes;
  src->size = (guint64) w->n_rows * row_bytes;
}

#define UNIT_MAX 7

/* The matrices of unit u: layer u's, or the output head's (u = n_layer). */
static guint
unit_weights (QbLlama *llama, guint u, const QbWeight **m)
{
  QbLayer *l;

  if (u == llama->p.n_layer)
    {
      m[0] = &llama->output;
      return 1;
    }
  l = &llama->layers[u];
  m[0] = &l->wq, m[1] = &l->wk, m[2] = &l->wv, m[3] = &l->wo;
  m[4] = &l->gate, m[5] = &l->up, m[6] = &l->down;
  return UNIT_MAX;
}

static guint64
align_unit (guint64 size)
{
  return (size + UNIT_ALIGN - 1) / UNIT_ALIGN * UNIT_ALIGN;
}

static guint64
unit_bytes (QbLlama *llama, guint u)
{
  const QbWeight *m[UNIT_MAX];
  guint n = unit_weights (llama, u, m);
  guint64 total = 0;

  for (guint i = 0; i < n; i++)
    if (m[i]->t != NULL)
      {
        WeightSource src;
        weight_source (m[i], &src);
        total += align_unit (src.size);
      }
  return total;
}

/* Enqueues w's device form into mem at offset (the host's bytes as they
 * are, or its rows dequantized on the host). */
static gboolean
upload (QbLlama *llama, cl_command_queue queue, const QbWeight *w, cl_mem mem, guint64 offset,
        GError **error)
{
  g_autofree float *buf = NULL;
  WeightSource src;
  const void *host;

  weight_source (w, &src);
  host = src.host;
  if (host == NULL)
    {
      if ((buf = g_try_new (float, (gsize) w->n_rows * w->n_cols)) == NULL)
        {
          g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_MEMORY,
                       "no host memory to upload %s", w->t->name);
          return FALSE;
        }
      if ((host = qb_weight_rows (llama, w, 0, w->n_rows, buf, error)) == NULL)
        return FALSE;
    }
  /* The host's own bytes outlive the pass, which ends with clFinish. */
  return qb_device_check (clEnqueueWriteBuffer (queue, mem, buf != NULL, offset, src.size, host,
                                                0, NULL, NULL),
                          "uploading weights", error);
}

/* Floats of the scratch a weight is dequantized into: the largest layer
 * matrix that needs it; the output head goes through in slabs of that
 * many values (at least 64 rows).  0 when every weight is float32.
 * Fixed by the model alone, so that streamed and resident passes make
 * the same products. */
static guint64
scratch_floats (QbLlama *llama)
{
  guint64 layer_most = 0, most = 0;

  for (guint u = 0; u <= llama->p.n_layer; u++)
    {
      const QbWeight *m[UNIT_MAX];
      guint n = unit_weights (llama, u, m);

      for (guint i = 0; i < n; i++)
        {
          WeightSource src;
          guint64 floats;

          if (m[i]->t == NULL)
            continue;
          weight_source (m[i], &src);
          floats = (guint64) m[i]->n_rows * m[i]->n_cols;
          if (u < llama->p.n_layer)
            layer_most = MAX (layer_most, floats);
          if (src.dtype == QB_DTYPE_F32)
            continue;
          if (u == llama->p.n_layer)
            floats = MIN (floats, MAX (layer_most, 64 * (guint64) m[i]->n_cols));
          most = MAX (most, floats);
        }
    }
  return most;
}

static guint64 mem_limit;   /* atomic; 0: none */

void
qb_llama_device_set_mem_limit (guint64 bytes)
{
  __atomic_store_n (&mem_limit, bytes, __ATOMIC_RELAXED);
}

/* The device's memory for this pass: 90 % of it, or less when capped by
 * qb_llama_device_set_mem_limit or QB_DEVICE_MEM_LIMIT (bytes, with K, M
 * or G). */
static guint64
device_budget (QbDevice *device)
{
  guint64 budget = qb_device_get_info (device)->global_mem / 10 * 9;
  guint64 limit = __atomic_load_n (&mem_limit, __ATOMIC_RELAXED);
  const char *cap = g_getenv ("QB_DEVICE_MEM_LIMIT");
  char *end = NULL;
  guint64 v;

  if (limit > 0)
    return MIN (budget, limit);
  if (cap == NULL || *cap == '\0')
    return budget;
  v = g_ascii_strtoull (cap, &end, 10);
  switch (g_ascii_toupper (*end))
    {
    case 'G': v <<= 10; /* fall through */
    case 'M': v <<= 10; /* fall through */
    case 'K': v <<= 10; break;
    case '\0': break;
    default:
      g_warning ("QB_DEVICE_MEM_LIMIT=%s is not a size (bytes, or with K, M, G); ignored", cap);
      return budget;
    }
  return MIN (budget, v);
}

/* Bytes of the activations of a pass of T tokens with n_out logit rows
 * (reserve), and CLBlast's temporary buffer for the largest product. */
static guint64
activation_bytes (QbLlama *llama, guint T, guint n_out)
{
  const QbLlamaParams *p = &llama->p;
  guint64 qd = (guint64) p->n_head * p->head_dim, kvd = (guint64) p->n_head_kv * p->head_dim;
  guint64 floats = (guint64) T * (p->n_embd + MAX (p->n_embd, qd) + 2 * qd + 2 * kvd +
                                  2 * (guint64) p->n_ff + 2 * (guint64) p->n_rot + T)
                   + p->n_embd + (guint64) n_out * p->n_vocab;

  return floats * sizeof (float);
}

void
qb_llama_device_needs (QbLlama *llama, guint n_tokens, guint n_out, guint64 *fixed,
                       guint64 *largest_unit, guint64 *all_units)
{
  *fixed = activation_bytes (llama, n_tokens, n_out) + scratch_floats (llama) * sizeof (float);
  *largest_unit = *all_units = 0;
  for (guint u = 0; u <= llama->p.n_layer; u++)
    {
      *all_units += unit_bytes (llama, u);
      *largest_unit = MAX (*largest_unit, unit_bytes (llama, u));
    }
}

/* Which units stay on the device for this pass: all when they fit the
 * budget beside the activations and the scratch; else as many as fit
 * beside one slot for the largest unit, the others streamed through it.
 * FALSE when not even one unit fits. */
static gboolean
plan (QbLlama *llama, QbLlamaDevice *d, guint T, guint n_out, GError **error)
{
  guint n_units = llama->p.n_layer + 1, resident = n_units;
  guint64 budget = device_budget (d->device), sf = scratch_floats (llama);
  guint64 fixed, all, largest, slot = 0;

  qb_llama_device_needs (llama, T, n_out, &fixed, &largest, &all);
  if (fixed + all > budget)
    {
      guint64 room;

      if (fixed + largest > budget)
        {
          g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_MEMORY,
                       "%s: not even one layer fits: its weights (%" G_GUINT64_FORMAT
                       " KiB), the activations and the dequantization scratch (%" G_GUINT64_FORMAT
                       " KiB) need more than the %"
                       G_GUINT64_FORMAT " KiB available", qb_device_get_label (d->device),
                       largest >> 10, fixed >> 10, budget >> 10);
          return FALSE;
        }
      room = budget - fixed - largest;
      for (resident = 0; resident < n_units && unit_bytes (llama, resident) <= room; resident++)
        room -= unit_bytes (llama, resident);
      slot = largest;
    }
  /* Units no longer resident give their buffers back. */
  for (guint u = resident; u < d->n_resident; u++)
    {
      const QbWeight *m[UNIT_MAX];
      guint n = unit_weights (llama, u, m);
      for (guint i = 0; i < n; i++)
        g_hash_table_remove (d->weights, m[i]);
    }
  d->n_resident = resident;
  if (d->slot_size != slot)
    {
      release_mem (&d->slot);
      d->slot_size = 0;
      if (slot > 0 && (d->slot = qb_device_alloc (d->device, CL_MEM_READ_ONLY, slot, error)) == NULL)
        return FALSE;
      d->slot_size = slot;
    }
  if (d->scratch_floats != sf)
    {
      release_mem (&d->scratch);
      d->scratch_floats = 0;
      if (sf > 0 && (d->scratch = qb_device_alloc (d->device, CL_MEM_READ_WRITE, sf * sizeof (float),
                                                   error)) == NULL)
        return FALSE;
      d->scratch_floats = sf;
    }
  return TRUE;
}

/* A resident weight on the device, uploaded unless it already is as it
 * stands. */
static cl_mem
resident_weight (QbLlama *llama, QbLlamaDevice *d, const QbWeight *w, GError **error)
{
  DeviceWeight *dw = g_hash_table_lookup (d->weights, w);
  WeightSource src;

  if (dw != NULL && dw->format == w->format && dw->bytes == w->bytes && dw->f32 == w->f32 &&
      dw->t == w->t)
    return dw->mem;
  g_hash_table_remove (d->weights, w);
  weight_source (w, &src);
  dw = g_new0 (DeviceWeight, 1);
  dw->mem = qb_device_alloc (d->device, CL_MEM_READ_ONLY, src.size, error);
  if (dw->mem == NULL ||
      !upload (llama, qb_device_get_queue (d->device), w, dw->mem, 0, error))
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
    { &d->rope_cache, (gsize) T * p->n_rot }, { &d->rope_local, (gsize) T * p->n_rot },
    { &d->scores, (gsize) T * T }, { &d->norm, MAX (p->n_embd, p->head_dim) },
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
  /* The streamed unit now in the slot: its weights and their offsets. */
  const QbWeight *streamed[UNIT_MAX];
  guint64        streamed_at[UNIT_MAX];
  guint          n_streamed;
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

/* Unit u's weights into the slot when it is streamed (the in-order queue
 * runs the uploads after the products that read the previous unit). */
static void
stream_unit (Run *r, guint u)
{
  const QbWeight *m[UNIT_MAX];
  guint n;
  guint64 offset = 0;

  r->n_streamed = 0;
  if (!ok (r) || u < r->d->n_resident)
    return;
  n = unit_weights (r->llama, u, m);
  for (guint i = 0; i < n; i++)
    {
      WeightSource src;

      if (m[i]->t == NULL)
        continue;
      if (!upload (r->llama, r->queue, m[i], r->d->slot, offset, r->error))
        {
          r->status = CL_OUT_OF_RESOURCES;
          return;
        }
      weight_source (m[i], &src);
      r->streamed[r->n_streamed] = m[i];
      r->streamed_at[r->n_streamed++] = offset;
      offset += align_unit (src.size);
    }
  __atomic_add_fetch (&streamed, 1, __ATOMIC_RELAXED);
}

/* Where w is on the device: the slot or its own buffer. */
static cl_mem
place (Run *r, const QbWeight *w, guint64 *offset)
{
  for (guint i = 0; i < r->n_streamed; i++)
    if (r->streamed[i] == w)
      {
        *offset = r->streamed_at[i];
        return r->d->slot;
      }
  *offset = 0;
  return resident_weight (r->llama, r->d, w, r->error);
}

/* y (T × n_rows, row stride n_rows) = beta·y + x (T × n_cols) · Wᵀ; a
 * weight held as blocks is dequantized into the scratch first, in slabs
 * of rows when it is larger. */
static void
gemm_w (Run *r, const QbWeight *w, cl_mem x, guint T, cl_mem y, float beta)
{
  QbLlamaDevice *d = r->d;
  WeightSource src;
  const QbDTypeInfo *info;
  guint64 offset = 0, row_bytes;
  gint64 slab;
  cl_mem wm;

  if (!ok (r))
    return;
  if ((wm = place (r, w, &offset)) == NULL
      || (r->llama->accum != NULL
          && !qb_llama_accum_see (r->llama->accum, r->queue, w->index, x, T, r->error)))
    {
      r->status = CL_OUT_OF_RESOURCES;
      return;
    }
  weight_source (w, &src);
  if (src.dtype == QB_DTYPE_F32)
    {
      r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                              T, w->n_rows, w->n_cols, 1.0f, x, 0, w->n_cols, wm,
                              offset / sizeof (float), w->n_cols, beta, y, 0, w->n_rows,
                              &r->queue, NULL);
      return;
    }
  __atomic_add_fetch (&dequantized, 1, __ATOMIC_RELAXED);
  info = qb_dtype_info (src.dtype);
  row_bytes = (guint64) (w->n_cols / info->block_size) * info->type_size;
  slab = MIN (w->n_rows, (gint64) (d->scratch_floats / w->n_cols));
  for (gint64 r0 = 0; r0 < w->n_rows && ok (r); r0 += slab)
    {
      gint64 n = MIN (slab, w->n_rows - r0);

      r->status = qb_dequant_device_enqueue (d->dequant, r->queue, src.dtype, wm,
                                             offset + r0 * row_bytes, d->scratch, 0, n * w->n_cols);
      if (ok (r))
        r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                                T, n, w->n_cols, 1.0f, x, 0, w->n_cols, d->scratch, 0, w->n_cols,
                                beta, y, r0, w->n_rows, &r->queue, NULL);
    }
}

/* y = RMSNorm of n_rows rows of n values of x from row0, times weight. */
static void
rms_norm_rows (Run *r, cl_mem x, guint row0, const QbVector *weight, cl_mem y, guint n_rows,
               guint n_values)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  cl_int n = (cl_int) n_values, rows = (cl_int) n_rows, first = (cl_int) row0;
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
rms_norm (Run *r, cl_mem x, guint row0, const QbVector *weight, cl_mem y, guint n_rows)
{
  rms_norm_rows (r, x, row0, weight, y, n_rows, r->llama->p.n_embd);
}

/* An element-wise kernel over n values: k (a, [b,] n[, v]). */
static void
elementwise (Run *r, cl_kernel k, cl_mem a, cl_mem b, gsize n, const float *v)
{
  cl_long nn = (cl_long) n;
  guint i = 0;

  if (!ok (r))
    return;
  ARG (k, i++, a);
  if (b != NULL)
    ARG (k, i++, b);
  ARG (k, i++, nn);
  if (v != NULL)
    ARG (k, i++, *v);
  launch (r, k, n);
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
rope (Run *r, cl_mem x, cl_mem table, guint T, guint n_heads)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  cl_int t = T, h = n_heads, hd = p->head_dim, nr = p->n_rot, neox = p->rope_style == QB_ROPE_NEOX;

  if (!ok (r))
    return;
  ARG (d->rope, 0, x);
  ARG (d->rope, 1, table);
  ARG (d->rope, 2, t);
  ARG (d->rope, 3, h);
  ARG (d->rope, 4, hd);
  ARG (d->rope, 5, nr);
  ARG (d->rope, 6, neox);
  launch (r, d->rope, (gsize) T * n_heads * (p->n_rot / 2));
}

/* Per head: scores · attn_scale, the causal softmax (with the layer's
 * window and the attention soft-cap), times V. */
static void
attention (Run *r, guint T, gboolean sliding)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  gsize hd = p->head_dim, qs = (gsize) p->n_head * hd, ks = (gsize) p->n_head_kv * hd;
  cl_int rows = T, keys = T, window = sliding ? (cl_int) p->swa_window : 0;
  float cap = p->attn_softcap;

  for (guint h = 0; h < p->n_head && ok (r); h++)
    {
      guint g = h / (p->n_head / p->n_head_kv);

      r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
                              T, T, hd, p->attn_scale, d->q, h * hd, qs,
                              d->k, g * hd, ks, 0.0f, d->scores, 0, T, &r->queue, NULL);
      if (!ok (r))
        return;
      ARG (d->softmax, 0, d->scores);
      ARG (d->softmax, 1, rows);
      ARG (d->softmax, 2, keys);
      ARG (d->softmax, 3, window);
      ARG (d->softmax, 4, cap);
      launch (r, d->softmax, T);
      if (!ok (r))
        return;
      r->blas = CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
                              T, hd, T, 1.0f, d->scores, 0, T, d->v, g * hd, ks,
                              0.0f, d->att, h * hd, qs, &r->queue, NULL);
    }
}

/* gate = act (gate) · up, the family's gate activation. */
static void
gate_activation (Run *r, guint T)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;

  elementwise (r, p->family->ffn == QB_FFN_GEGLU ? d->geglu : d->swiglu, d->gate, d->up,
               (gsize) T * p->n_ff, NULL);
}

/* With post-norms (Gemma), a half's output in xn is normalized and then
 * added to the residual stream. */
static void
post_norm (Run *r, const QbVector *norm, guint T)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;

  if (!p->family->post_norms)
    return;
  rms_norm (r, d->xn, 0, norm, d->xn, T);
  elementwise (r, d->add_rows, d->x, d->xn, (gsize) T * p->n_embd, NULL);
}

/* Half of a layer as qb-llama-forward.c's attention_forward (ffn FALSE)
 * or ffn_forward: the family's pieces (Q/K norms, the sliding layers'
 * window and RoPE table, post-norms, the gate activation) read from its
 * descriptor. */
static void
layer_half (Run *r, QbLayer *l, guint T, gboolean ffn)
{
  QbLlamaDevice *d = r->d;
  const QbLlamaParams *p = &r->llama->p;
  const QbFamily *f = p->family;
  gsize qd = (gsize) p->n_head * p->head_dim, kvd = (gsize) p->n_head_kv * p->head_dim;
  float qkv_beta = p->qkv_bias ? 1.0f : 0.0f, residual = f->post_norms ? 0.0f : 1.0f;
  cl_mem table = l->sliding && r->llama->s.rope_local != NULL ? d->rope_local : d->rope_cache;
  /* With post-norms a half's output goes through xn before the residual. */
  cl_mem out = f->post_norms ? d->xn : d->x;

  if (ffn)
    {
      rms_norm (r, d->x, 0, &l->ffn_norm, d->xn, T);
      gemm_w (r, &l->gate, d->xn, T, d->gate, 0.0f);
      gemm_w (r, &l->up, d->xn, T, d->up, 0.0f);
      gate_activation (r, T);
      gemm_w (r, &l->down, d->gate, T, out, residual);
      post_norm (r, &l->ffn_post_norm, T);
      return;
    }
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
  if (f->qk_norm)
    {
      rms_norm_rows (r, d->q, 0, &l->q_norm, d->q, T * p->n_head, p->head_dim);
      rms_norm_rows (r, d->k, 0, &l->k_norm, d->k, T * p->n_head_kv, p->head_dim);
    }
  rope (r, d->q, table, T, p->n_head);
  rope (r, d->k, table, T, p->n_head_kv);
  attention (r, T, l->sliding);
  gemm_w (r, &l->wo, d->att, T, out, residual);
  post_norm (r, &l->attn_post_norm, T);
}

/* The embedding rows of the tokens and the RoPE table, from the host. */
static gboolean
upload_inputs (Run *r, const gint32 *tokens, const float *hidden, guint T, const float *rope_table,
               GError **error)
{
  QbLlama *llama = r->llama;
  gint64 E = llama->p.n_embd;
  g_autofree float *x = hidden != NULL ? NULL : g_new (float, (gsize) T * E);

  for (guint t = 0; hidden == NULL && t < T; t++)
    {
      float *dst = x + (gsize) t * E;
      const float *row = qb_weight_rows (llama, &llama->tok_embd, tokens[t], 1, dst, error);
      if (row == NULL)
        return FALSE;
      if (row != dst)
        memcpy (dst, row, sizeof (float) * E);
    }
  if (hidden == NULL && llama->p.family->embd_scale)
    {
      float scale = sqrtf ((float) E);
      for (gsize i = 0; i < (gsize) T * E; i++)
        x[i] *= scale;
    }
  r->status = clEnqueueWriteBuffer (r->queue, r->d->x, CL_TRUE, 0, sizeof (float) * T * E,
                                    hidden != NULL ? hidden : x, 0, NULL, NULL);
  if (ok (r))
    r->status = clEnqueueWriteBuffer (r->queue, r->d->rope_cache, CL_TRUE, 0,
                                      sizeof (float) * T * llama->p.n_rot, rope_table, 0, NULL, NULL);
  /* Sliding layers with a RoPE base of their own (Gemma 3). */
  if (ok (r) && llama->s.rope_local != NULL)
    r->status = clEnqueueWriteBuffer (r->queue, r->d->rope_local, CL_TRUE, 0,
                                      sizeof (float) * T * llama->p.n_rot, llama->s.rope_local, 0,
                                      NULL, NULL);
  return TRUE;
}

/* The stream entering unit i of the pass, into hidden (when kept). */
static void
keep_stream (Run *r, float *hidden, guint i, guint T)
{
  gsize stream = (gsize) T * r->llama->p.n_embd;

  if (hidden != NULL && ok (r))
    r->status = clEnqueueReadBuffer (r->queue, r->d->x, CL_TRUE, 0, sizeof (float) * stream,
                                     hidden + i * stream, 0, NULL, NULL);
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

/* The device pass has every piece of the dense families' descriptor;
 * NULL when it can run this model, else what it lacks. */
static const char *
device_lacks (QbLlama *llama)
{
  if (llama->ggml_activations)
    return "llama.cpp's activation rounding";
  if (llama->p.kv_lora_rank > 0)
    return "multi-head latent attention";
  if (llama->p.n_expert > 0)
    return "routing to experts";
  return NULL;
}

QbLlamaDeviceOutcome
qb_llama_device_forward (QbLlama *llama, QbLlamaDevice **state, const gint32 *tokens,
                         guint first_layer, const float *hidden_in, float *hidden_out, guint T, guint first_output, float *logits, const float *rope_table,
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
  if (device == NULL || llama->act_func != NULL)
    return QB_LLAMA_DEVICE_DECLINED;
  /* The user asked for the device: say once why this model runs on the
   * CPU. */
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
      if ((*state = device_new (device, &local)) == NULL)
        goto declined;
    }
  r.d = *state;
  r.queue = qb_device_get_queue (device);
  if (!plan (llama, r.d, T, n_out, &local) || !reserve (llama, r.d, T, n_out, &local) || !upload_inputs (&r, tokens, hidden_in, T, rope_table, &local))
    goto declined;
  if (accum != NULL)
    qb_llama_accum_new_pass (accum);
  /* Progress and cancel after each half of a layer: steps of
   * 2 × (n_layer + 1), the output head the last two. */
  for (guint step = 2 * first_layer; step < 2 * n_layer && ok (&r); step++)
    {
      if (step % 2 == 0)
        keep_stream (&r, hidden_out, step / 2 - first_layer, T);
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          clFinish (r.queue);
          return QB_LLAMA_DEVICE_FAILED;
        }
      if (step % 2 == 0)
        stream_unit (&r, step / 2);
      layer_half (&r, &llama->layers[step / 2], T, step % 2);
      if (ok (&r))
        r.status = clFinish (r.queue);
      if (progress != NULL && ok (&r))
        progress (step + 1, 2 * (p->n_layer + 1), progress_data);
    }
  keep_stream (&r, hidden_out, n_layer - first_layer, T);
  /* Statistics that do not want the output matrix's input stop here. */
  if (accum != NULL && !qb_llama_accum_get_spec (accum)->output)
    goto done;
  rms_norm (&r, r.d->x, first_output, &llama->output_norm, r.d->xn, n_out);
  stream_unit (&r, p->n_layer);
  gemm_w (&r, &llama->output, r.d->xn, n_out, r.d->logits, 0.0f);
  if (p->final_softcap > 0)
    elementwise (&r, r.d->softcap, r.d->logits, NULL, (gsize) n_out * p->n_vocab, &p->final_softcap);
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
    progress (2 * (p->n_layer + 1), 2 * (p->n_layer + 1), progress_data);
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
