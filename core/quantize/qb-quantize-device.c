/* SPDX-License-Identifier: MIT */
/* qb-quantize-device.c — slabs of a tensor through the device kernels. */
#include "qb-quantize-device-private.h"
#include "qb-device-private.h"
#include "qb-quantize-device-cl.h"

#include <string.h>

/* About 4M values per slab: 16 MiB of input and as much dequantized, a
 * size every OpenCL device allocates, and large enough that the
 * transfers, not the calls, take the time. */
#define SLAB_VALUES (4 * 1024 * 1024)
#define GROUP_SIZE  64

/* The device's layout of a stripe: acc_t is double with QB_FP64. */
typedef struct {
  double s_xx, s_yy, s_xy, s_ee;
  float  max_err, min, max;
  gint32 n_out;
} StripeD;

typedef struct {
  float  s_xx, s_yy, s_xy, s_ee;
  float  max_err, min, max;
  gint32 n_out;
} StripeF;

static gint64 slabs_run;   /* atomic */

guint64
qb_device_quantize_slabs (void)
{
  return (guint64) __atomic_load_n (&slabs_run, __ATOMIC_RELAXED);
}

struct _QbDeviceQuantizer {
  QbDevice        *device;
  const QbFormat  *format;
  gint64           n_cols;
  gint64           unit;          /* values per work-item: a block, or a row */
  guint64          unit_bytes;
  float            tensor_scale;  /* per-tensor formats: their one scale */
  gint64           slab_rows;
  guint64          row_bytes;
  gboolean         fp64;
  gboolean         measure;
  QbDeviceMeasure  m;
  cl_program       program;       /* the device's, cached there */
  cl_kernel        quantize;
  cl_kernel        measure_kernel;
  cl_kernel        sigma2_kernel; /* with importance: each row's mean square */
  gboolean         weighted;      /* the importance kernel, which takes imp */
  cl_mem           x, q, y, stripes, counts, flag, imp, sigma2;
  gsize            group;         /* work-group size of the measure kernel */
};

gboolean
qb_device_quantize_supports (const QbFormat *format)
{
  return format != NULL && format->device_kernel != NULL;
}

gboolean
qb_device_quantize_supports_importance (const QbFormat *format)
{
  return format != NULL && format->device_kernel_imatrix != NULL;
}

gint64
qb_device_stripes_per_row (gint64 n_cols)
{
  return (n_cols + QB_DEVICE_STRIPE - 1) / QB_DEVICE_STRIPE;
}

void
qb_device_quantizer_free (QbDeviceQuantizer *dq)
{
  cl_mem *mems[] = { &dq->x, &dq->q, &dq->y, &dq->stripes, &dq->counts, &dq->flag, &dq->imp,
                     &dq->sigma2 };

  if (dq == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (mems); i++)
    if (*mems[i] != NULL)
      clReleaseMemObject (*mems[i]);
  if (dq->quantize != NULL)
    clReleaseKernel (dq->quantize);
  if (dq->measure_kernel != NULL)
    clReleaseKernel (dq->measure_kernel);
  if (dq->sigma2_kernel != NULL)
    clReleaseKernel (dq->sigma2_kernel);
  qb_device_unref (dq->device);
  g_free (dq);
}

static gsize
stripe_bytes (QbDeviceQuantizer *dq)
{
  return dq->fp64 ? sizeof (StripeD) : sizeof (StripeF);
}

static gboolean
create_kernels (QbDeviceQuantizer *dq, GError **error)
{
  const QbDeviceInfo *info = qb_device_get_info (dq->device);
  g_autofree char *options = g_strdup_printf ("-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt%s",
                                              dq->fp64 ? " -DQB_FP64" : "");
  cl_program program;
  cl_int status = CL_SUCCESS;

  size_t wg = 0;

  if (!info->exact_float)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED,
                   "%s lacks denormals or correctly rounded division, which the CPU's bytes need",
                   qb_device_get_label (dq->device));
      return FALSE;
    }
  program = qb_device_get_program (dq->device, qb_quantize_device_source, options, error);
  if (program == NULL)
    return FALSE;
  dq->program = program;
  dq->quantize = clCreateKernel (program, dq->format->device_kernel, &status);
  if (!qb_device_check (status, "creating the quantize kernel", error))
    return FALSE;
  if (!dq->measure)
    return TRUE;
  dq->measure_kernel = clCreateKernel (program, "measure", &status);
  if (!qb_device_check (status, "creating the measure kernel", error))
    return FALSE;
  clGetKernelWorkGroupInfo (dq->measure_kernel, qb_device_get_id (dq->device),
                            CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
  dq->group = MAX (1, MIN (GROUP_SIZE, wg));
  return TRUE;
}

static gboolean
create_buffers (QbDeviceQuantizer *dq, GError **error)
{
  QbDevice *dev = dq->device;
  gsize values = (gsize) (dq->slab_rows * dq->n_cols);
  gsize n_stripes = (gsize) (dq->slab_rows * qb_device_stripes_per_row (dq->n_cols));

  dq->x = qb_device_alloc (dev, CL_MEM_READ_ONLY, values * sizeof (float), error);
  if (dq->x == NULL)
    return FALSE;
  dq->q = qb_device_alloc (dev, CL_MEM_WRITE_ONLY, dq->slab_rows * dq->row_bytes, error);
  if (dq->q == NULL)
    return FALSE;
  dq->y = qb_device_alloc (dev, CL_MEM_READ_WRITE, values * sizeof (float), error);
  if (dq->y == NULL)
    return FALSE;
  dq->flag = qb_device_alloc (dev, CL_MEM_READ_WRITE, sizeof (cl_int), error);
  if (dq->flag == NULL)
    return FALSE;
  if (!dq->measure)
    return TRUE;
  dq->stripes = qb_device_alloc (dev, CL_MEM_WRITE_ONLY, n_stripes * stripe_bytes (dq), error);
  if (dq->stripes == NULL)
    return FALSE;
  dq->counts = qb_device_alloc (dev, CL_MEM_READ_WRITE, 3 * dq->m.n_bins * sizeof (cl_uint), error);
  return dq->counts != NULL;
}

QbDeviceQuantizer *
qb_device_quantizer_new (QbDevice *device, const QbFormat *format, gint64 n_cols,
                         gint64 n_rows, float tensor_absmax, const QbDeviceMeasure *measure,
                         GError **error)
{
  g_autoptr(QbDeviceQuantizer) dq = NULL;
  guint64 row_bytes = 0;

  g_return_val_if_fail (device != NULL, NULL);
  if (!qb_device_quantize_supports (format) || n_cols <= 0 || n_cols > G_MAXINT ||
      !qb_format_row_bytes (format, n_cols, &row_bytes))
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED,
                   "no device kernel for %s rows of %" G_GINT64_FORMAT, format ? format->name : "(none)",
                   n_cols);
      return NULL;
    }
  dq = g_new0 (QbDeviceQuantizer, 1);
  dq->device = qb_device_ref (device);
  dq->format = format;
  dq->n_cols = n_cols;
  dq->unit = format->scope == QB_SCOPE_BLOCK ? format->block_size : n_cols;
  dq->row_bytes = row_bytes;
  dq->unit_bytes = format->scope == QB_SCOPE_BLOCK ? format->block_bytes : row_bytes;
  dq->tensor_scale = format->scope == QB_SCOPE_TENSOR ? qb_format_tensor_scale (format, tensor_absmax)
                                                      : 0.0f;
  dq->slab_rows = CLAMP (SLAB_VALUES / n_cols, 1, MAX (n_rows, 1));
  dq->fp64 = qb_device_get_info (device)->fp64;
  dq->measure = measure != NULL;
  if (measure != NULL)
    dq->m = *measure;
  if (!create_kernels (dq, error) || !create_buffers (dq, error))
    return NULL;
  return g_steal_pointer (&dq);
}

gboolean
qb_device_quantizer_set_importance (QbDeviceQuantizer *dq, const float *importance,
                                    GError **error)
{
  const char *name = dq->format->device_kernel_imatrix;
  cl_command_queue queue = qb_device_get_queue (dq->device);
  cl_int status = CL_SUCCESS;

  if (!qb_device_quantize_supports_importance (dq->format) || dq->format->scope != QB_SCOPE_BLOCK)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED,
                   "no device kernel for %s with importance", dq->format->name);
      return FALSE;
    }
  /* Where the CPU ignores importance the plain kernel is the one. */
  if (g_str_equal (name, dq->format->device_kernel))
    return TRUE;
  if (!dq->weighted)
    {
      clReleaseKernel (dq->quantize);
      dq->quantize = clCreateKernel (dq->program, name, &status);
      if (!qb_device_check (status, "creating the importance kernel", error))
        return FALSE;
      dq->sigma2_kernel = clCreateKernel (dq->program, "row_sigma2", &status);
      if (!qb_device_check (status, "creating the row σ² kernel", error))
        return FALSE;
      dq->imp = qb_device_alloc (dq->device, CL_MEM_READ_ONLY, dq->n_cols * sizeof (float), error);
      if (dq->imp == NULL)
        return FALSE;
      dq->sigma2 = qb_device_alloc (dq->device, CL_MEM_READ_WRITE, dq->slab_rows * sizeof (float),
                                    error);
      if (dq->sigma2 == NULL)
        return FALSE;
      dq->weighted = TRUE;
    }
  status = clEnqueueWriteBuffer (queue, dq->imp, CL_TRUE, 0, dq->n_cols * sizeof (float), importance,
                                 0, NULL, NULL);
  return qb_device_check (status, "uploading the importance", error);
}

gint64
qb_device_quantizer_slab_rows (QbDeviceQuantizer *dq)
{
  return dq->slab_rows;
}

static gsize
round_up (gsize n, gsize to)
{
  return (n + to - 1) / to * to;
}

/* INTn: the group (a block or a row), its bytes, and the tensor's step. */
static cl_int
int_args (QbDeviceQuantizer *dq)
{
  const QbFormat *f = dq->format;
  cl_int group = (cl_int) dq->unit, bits = (cl_int) f->bits, asym = f->asymmetric;
  cl_int unit_bytes = (cl_int) dq->unit_bytes, tensor = f->scope == QB_SCOPE_TENSOR;
  cl_int s = CL_SUCCESS;

  s |= clSetKernelArg (dq->quantize, 6, sizeof group, &group);
  s |= clSetKernelArg (dq->quantize, 7, sizeof bits, &bits);
  s |= clSetKernelArg (dq->quantize, 8, sizeof asym, &asym);
  s |= clSetKernelArg (dq->quantize, 9, sizeof unit_bytes, &unit_bytes);
  s |= clSetKernelArg (dq->quantize, 10, sizeof tensor, &tensor);
  s |= clSetKernelArg (dq->quantize, 11, sizeof (float), &dq->tensor_scale);
  return s;
}

/* FP8: E4M3 ("fn": max 448, no infinities) or E5M2 (max 57344), as
 * qb-format-fp8.c encodes them; the row, its bytes, the tensor's scale. */
static cl_int
fp8_args (QbDeviceQuantizer *dq)
{
  const QbFormat *f = dq->format;
  gboolean e4m3 = g_str_has_prefix (f->name, "FP8_E4M3");
  cl_int n = (cl_int) dq->n_cols, mbits = e4m3 ? 3 : 2, bias = e4m3 ? 7 : 15;
  cl_int max_code = e4m3 ? 0x7e : 0x7b, nan_code = e4m3 ? 0x7f : 0x7e;
  cl_int row_bytes = (cl_int) dq->row_bytes, tensor = f->scope == QB_SCOPE_TENSOR;
  float max = e4m3 ? 448.0f : 57344.0f;
  cl_int s = CL_SUCCESS;

  s |= clSetKernelArg (dq->quantize, 6, sizeof n, &n);
  s |= clSetKernelArg (dq->quantize, 7, sizeof mbits, &mbits);
  s |= clSetKernelArg (dq->quantize, 8, sizeof bias, &bias);
  s |= clSetKernelArg (dq->quantize, 9, sizeof max, &max);
  s |= clSetKernelArg (dq->quantize, 10, sizeof max_code, &max_code);
  s |= clSetKernelArg (dq->quantize, 11, sizeof nan_code, &nan_code);
  s |= clSetKernelArg (dq->quantize, 12, sizeof row_bytes, &row_bytes);
  s |= clSetKernelArg (dq->quantize, 13, sizeof tensor, &tensor);
  s |= clSetKernelArg (dq->quantize, 14, sizeof (float), &dq->tensor_scale);
  return s;
}

/* Each row's mean square (the legacy imatrix paths' σ²), then the
 * importance kernel's arguments. */
static cl_int
weighted_args (QbDeviceQuantizer *dq, gint64 n_rows)
{
  cl_command_queue queue = qb_device_get_queue (dq->device);
  cl_long rows = n_rows;
  cl_int cols = (cl_int) dq->n_cols;
  size_t global = round_up ((gsize) n_rows, GROUP_SIZE);
  cl_int s = CL_SUCCESS;

  s |= clSetKernelArg (dq->sigma2_kernel, 0, sizeof (cl_mem), &dq->x);
  s |= clSetKernelArg (dq->sigma2_kernel, 1, sizeof rows, &rows);
  s |= clSetKernelArg (dq->sigma2_kernel, 2, sizeof cols, &cols);
  s |= clSetKernelArg (dq->sigma2_kernel, 3, sizeof (cl_mem), &dq->sigma2);
  s |= clSetKernelArg (dq->quantize, 6, sizeof (cl_mem), &dq->imp);
  s |= clSetKernelArg (dq->quantize, 7, sizeof cols, &cols);
  s |= clSetKernelArg (dq->quantize, 8, sizeof (cl_mem), &dq->sigma2);
  if (s != CL_SUCCESS)
    return CL_INVALID_KERNEL_ARGS;
  return clEnqueueNDRangeKernel (queue, dq->sigma2_kernel, 1, NULL, &global, NULL, 0, NULL, NULL);
}

static cl_int
run_quantize (QbDeviceQuantizer *dq, gint64 nb, gint64 n_rows, cl_int want_y)
{
  cl_command_queue queue = qb_device_get_queue (dq->device);
  cl_long n = nb;
  size_t global = round_up ((gsize) nb, GROUP_SIZE);
  cl_int s = CL_SUCCESS;

  s |= clSetKernelArg (dq->quantize, 0, sizeof (cl_mem), &dq->x);
  s |= clSetKernelArg (dq->quantize, 1, sizeof (cl_mem), &dq->q);
  s |= clSetKernelArg (dq->quantize, 2, sizeof (cl_mem), &dq->y);
  s |= clSetKernelArg (dq->quantize, 3, sizeof n, &n);
  s |= clSetKernelArg (dq->quantize, 4, sizeof want_y, &want_y);
  s |= clSetKernelArg (dq->quantize, 5, sizeof (cl_mem), &dq->flag);
  if (dq->format->family == QB_FAMILY_INT)
    s |= int_args (dq);
  else if (dq->format->family == QB_FAMILY_FP8)
    s |= fp8_args (dq);
  if (s != CL_SUCCESS)
    return CL_INVALID_KERNEL_ARGS;
  if (dq->weighted && (s = weighted_args (dq, n_rows)) != CL_SUCCESS)
    return s;
  return clEnqueueNDRangeKernel (queue, dq->quantize, 1, NULL, &global, NULL, 0, NULL, NULL);
}

static cl_int
run_measure (QbDeviceQuantizer *dq, gint64 n_rows)
{
  cl_command_queue queue = qb_device_get_queue (dq->device);
  cl_kernel k = dq->measure_kernel;
  cl_long rows = n_rows;
  cl_int cols = (cl_int) dq->n_cols, bins = (cl_int) dq->m.n_bins;
  size_t local = dq->group;
  size_t global = round_up ((gsize) (n_rows * qb_device_stripes_per_row (dq->n_cols)), local);
  cl_int s = CL_SUCCESS;
  guint a = 0;

  s |= clSetKernelArg (k, a++, sizeof (cl_mem), &dq->x);
  s |= clSetKernelArg (k, a++, sizeof (cl_mem), &dq->y);
  s |= clSetKernelArg (k, a++, sizeof rows, &rows);
  s |= clSetKernelArg (k, a++, sizeof cols, &cols);
  s |= clSetKernelArg (k, a++, sizeof (float), &dq->m.out_lo);
  s |= clSetKernelArg (k, a++, sizeof (float), &dq->m.out_hi);
  for (int h = 0; h < 3; h++)
    s |= clSetKernelArg (k, a++, sizeof (float), &dq->m.lo[h]);
  for (int h = 0; h < 3; h++)
    s |= clSetKernelArg (k, a++, sizeof (float), &dq->m.scale[h]);
  s |= clSetKernelArg (k, a++, sizeof bins, &bins);
  s |= clSetKernelArg (k, a++, sizeof (cl_mem), &dq->stripes);
  s |= clSetKernelArg (k, a++, sizeof (cl_mem), &dq->counts);
  s |= clSetKernelArg (k, a++, 3 * dq->m.n_bins * sizeof (cl_uint), NULL);
  if (s != CL_SUCCESS)
    return CL_INVALID_KERNEL_ARGS;
  return clEnqueueNDRangeKernel (queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
}

static void
convert_stripes (QbDeviceQuantizer *dq, const void *raw, gsize n, QbDeviceStripe *out)
{
  for (gsize i = 0; i < n; i++)
    {
      QbDeviceStripe *o = &out[i];
      if (dq->fp64)
        {
          const StripeD *s = (const StripeD *) raw + i;
          *o = (QbDeviceStripe) { s->s_xx, s->s_yy, s->s_xy, s->s_ee, s->max_err, s->min, s->max, s->n_out };
        }
      else
        {
          const StripeF *s = (const StripeF *) raw + i;
          *o = (QbDeviceStripe) { s->s_xx, s->s_yy, s->s_xy, s->s_ee, s->max_err, s->min, s->max, s->n_out };
        }
    }
}

/* Enqueues the slab's work and reads the flag; the results are read by
 * read_results once the flag says they hold. */
static cl_int
enqueue_slab (QbDeviceQuantizer *dq, const float *x, gint64 n_rows, gboolean want_y,
              cl_int *flag)
{
  cl_command_queue queue = qb_device_get_queue (dq->device);
  gsize values = (gsize) (n_rows * dq->n_cols);
  cl_int zero = 0, s;

  s = clEnqueueWriteBuffer (queue, dq->x, CL_FALSE, 0, values * sizeof (float), x, 0, NULL, NULL);
  if (s == CL_SUCCESS)
    s = clEnqueueWriteBuffer (queue, dq->flag, CL_FALSE, 0, sizeof zero, &zero, 0, NULL, NULL);
  if (s == CL_SUCCESS && dq->measure)
    s = clEnqueueFillBuffer (queue, dq->counts, &zero, sizeof zero, 0,
                             3 * dq->m.n_bins * sizeof (cl_uint), 0, NULL, NULL);
  if (s == CL_SUCCESS)
    s = run_quantize (dq, values / dq->unit, n_rows, want_y);
  if (s == CL_SUCCESS && dq->measure)
    s = run_measure (dq, n_rows);
  if (s == CL_SUCCESS)
    s = clEnqueueReadBuffer (queue, dq->flag, CL_TRUE, 0, sizeof *flag, flag, 0, NULL, NULL);
  return s;
}

gboolean
qb_device_quantizer_run (QbDeviceQuantizer *dq, const float *x, gint64 n_rows, guint8 *q,
                         float *y, QbDeviceStripe *stripes, guint64 *totals,
                         gboolean *nonfinite, GError **error)
{
  cl_command_queue queue = qb_device_get_queue (dq->device);
  gsize values = (gsize) (n_rows * dq->n_cols);
  gsize n_stripes = (gsize) (n_rows * qb_device_stripes_per_row (dq->n_cols));
  g_autofree void *raw = NULL;
  g_autofree guint32 *counts = NULL;
  cl_int flag = 0, s;

  g_return_val_if_fail (n_rows > 0 && n_rows <= dq->slab_rows, FALSE);
  *nonfinite = FALSE;
  s = enqueue_slab (dq, x, n_rows, dq->measure || y != NULL, &flag);
  if (!qb_device_check (s, "quantizing on the device", error))
    {
      clFinish (queue);   /* nothing queued may still use x */
      return FALSE;
    }
  if (flag != 0)
    {
      *nonfinite = TRUE;
      return TRUE;
    }
  s = clEnqueueReadBuffer (queue, dq->q, CL_FALSE, 0, n_rows * dq->row_bytes, q, 0, NULL, NULL);
  if (s == CL_SUCCESS && y != NULL)
    s = clEnqueueReadBuffer (queue, dq->y, CL_FALSE, 0, values * sizeof (float), y, 0, NULL, NULL);
  if (s == CL_SUCCESS && dq->measure)
    {
      raw = g_malloc (n_stripes * stripe_bytes (dq));
      counts = g_new (guint32, 3 * dq->m.n_bins);
      s = clEnqueueReadBuffer (queue, dq->stripes, CL_FALSE, 0, n_stripes * stripe_bytes (dq), raw,
                               0, NULL, NULL);
      if (s == CL_SUCCESS)
        s = clEnqueueReadBuffer (queue, dq->counts, CL_FALSE, 0, 3 * dq->m.n_bins * sizeof (guint32),
                                 counts, 0, NULL, NULL);
    }
  if (s == CL_SUCCESS)
    s = clFinish (queue);
  if (!qb_device_check (s, "reading the device's results", error))
    {
      clFinish (queue);   /* nor write into q, y or raw */
      return FALSE;
    }
  __atomic_add_fetch (&slabs_run, 1, __ATOMIC_RELAXED);
  if (dq->measure)
    {
      convert_stripes (dq, raw, n_stripes, stripes);
      for (guint b = 0; b < 3 * dq->m.n_bins; b++)
        totals[b] += counts[b];
    }
  return TRUE;
}
