/* SPDX-License-Identifier: MIT */
/* qb-llama-accum.c — activation statistics accumulated on the device by
 * the device pass (see qb_llama_stats_begin in qb-llama.h).
 *
 * Σ x² per column: one work-item per column sums a chunk's rows in double
 * and adds them to the running sum.  XᵀX: the chunk's input widened to
 * double, then CLBlast's DSYRK adds XᵀX to the upper triangle, which is
 * what the CPU does with OpenBLAS (the products of two floats are exact in
 * double; only the order of the sums differs).  Nothing comes back until
 * qb_llama_stats_read. */
#include "qb-llama-accum-private.h"
#include "qb-llama-accum-cl.h"

#include <clblast_c.h>
#include <string.h>

typedef struct {
  gint64   n;
  gsize    sums_off;        /* in sums, doubles */
  cl_mem   gram;            /* n × n doubles, or NULL */
  guint64  rows;
  guint64  last_pass;       /* the pass that counted it last */
} Input;

struct _QbLlamaAccum {
  QbDevice         *device;
  QbLlamaStatsSpec  spec;
  gint             *input_of;
  guint             n_tensors;
  Input            *inputs;
  cl_mem            sums;
  cl_mem            wide;       /* a chunk's input in double */
  gsize             wide_floats;
  cl_kernel         sum_squares, widen;
  guint64           pass;
};

void
qb_llama_accum_free (QbLlamaAccum *a)
{
  if (a == NULL)
    return;
  for (guint i = 0; a->inputs != NULL && i < a->spec.n_inputs; i++)
    if (a->inputs[i].gram != NULL)
      clReleaseMemObject (a->inputs[i].gram);
  if (a->sums != NULL)
    clReleaseMemObject (a->sums);
  if (a->wide != NULL)
    clReleaseMemObject (a->wide);
  if (a->sum_squares != NULL)
    clReleaseKernel (a->sum_squares);
  if (a->widen != NULL)
    clReleaseKernel (a->widen);
  g_free (a->inputs);
  g_free (a->input_of);
  g_free ((gpointer) a->spec.n_cols);
  g_free ((gpointer) a->spec.gram);
  if (a->device != NULL)
    qb_device_unref (a->device);
  g_free (a);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbLlamaAccum, qb_llama_accum_free)

const QbLlamaStatsSpec *
qb_llama_accum_get_spec (QbLlamaAccum *a)
{
  return &a->spec;
}

QbDevice *
qb_llama_accum_get_device (QbLlamaAccum *a)
{
  return a->device;
}

void
qb_llama_accum_new_pass (QbLlamaAccum *a)
{
  a->pass++;
}

/* Zero-filled buffer of bytes. */
static cl_mem
alloc_zero (QbLlamaAccum *a, gsize bytes, GError **error)
{
  cl_mem m = qb_device_alloc (a->device, CL_MEM_READ_WRITE, bytes, error);
  cl_double zero = 0;
  cl_int s;

  if (m == NULL)
    return NULL;
  s = clEnqueueFillBuffer (qb_device_get_queue (a->device), m, &zero, sizeof zero, 0, bytes, 0,
                           NULL, NULL);
  if (s == CL_SUCCESS)
    s = clFinish (qb_device_get_queue (a->device));
  if (!qb_device_check (s, "clearing the statistics", error))
    {
      clReleaseMemObject (m);
      return NULL;
    }
  return m;
}

static gboolean
accum_setup (QbLlamaAccum *a, GError **error)
{
  cl_program program;
  gsize total = 0;
  cl_int s = CL_SUCCESS;

  program = qb_device_get_program (a->device, qb_llama_accum_source, "-cl-std=CL1.2", error);
  if (program == NULL)
    return FALSE;
  a->sum_squares = clCreateKernel (program, "sum_squares", &s);
  if (s == CL_SUCCESS)
    a->widen = clCreateKernel (program, "widen", &s);
  if (!qb_device_check (s, "creating the statistics kernels", error))
    return FALSE;
  for (guint i = 0; i < a->spec.n_inputs; i++)
    {
      Input *in = &a->inputs[i];
      in->sums_off = total;
      total += in->n;
      if (a->spec.gram[i]
          && (in->gram = alloc_zero (a, (gsize) in->n * in->n * sizeof (double), error)) == NULL)
        return FALSE;
    }
  return (a->sums = alloc_zero (a, MAX (total, 1) * sizeof (double), error)) != NULL;
}

gboolean
qb_llama_stats_begin (QbLlama *llama, const QbLlamaStatsSpec *spec, GError **error)
{
  g_autoptr(QbLlamaAccum) a = g_new0 (QbLlamaAccum, 1);
  guint n_tensors = qb_model_get_n_tensors (llama->model);

  g_clear_pointer (&llama->accum, qb_llama_accum_free);
  if ((a->device = qb_device_dup_default ()) == NULL)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NOT_FOUND, "no device selected");
      return FALSE;
    }
  if (!qb_device_get_info (a->device)->fp64)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED,
                   "%s has no double precision for the statistics", qb_device_get_label (a->device));
      return FALSE;
    }
  if (llama->p.n_expert > 0)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED,
                   "mixtures of experts run on the CPU");
      return FALSE;
    }
  a->spec = *spec;
  a->n_tensors = n_tensors;
  a->input_of = g_memdup2 (spec->input_of, sizeof (gint) * n_tensors);
  a->spec.input_of = a->input_of;
  a->spec.n_cols = g_memdup2 (spec->n_cols, sizeof (gint64) * MAX (spec->n_inputs, 1));
  a->spec.gram = g_memdup2 (spec->gram, sizeof (gboolean) * MAX (spec->n_inputs, 1));
  a->inputs = g_new0 (Input, MAX (spec->n_inputs, 1));
  for (guint i = 0; i < spec->n_inputs; i++)
    a->inputs[i].n = spec->n_cols[i];
  a->pass = 1;
  if (!accum_setup (a, error))
    return FALSE;
  llama->accum = g_steal_pointer (&a);
  return TRUE;
}

static gboolean
launch (cl_command_queue queue, cl_kernel k, gsize n, GError **error)
{
  size_t global = (n + 63) / 64 * 64;

  return qb_device_check (clEnqueueNDRangeKernel (queue, k, 1, NULL, &global, NULL, 0, NULL, NULL),
                          "accumulating statistics", error);
}

#define ARG(k, i, v) clSetKernelArg ((k), (i), sizeof (v), &(v))

static gboolean
add_gram (QbLlamaAccum *a, Input *in, cl_command_queue queue, cl_mem x, guint rows,
          GError **error)
{
  gsize need = (gsize) rows * in->n;
  cl_long n = (cl_long) need;
  CLBlastStatusCode b;

  if (a->wide_floats < need)
    {
      if (a->wide != NULL)
        clReleaseMemObject (a->wide);
      a->wide_floats = 0;
      if ((a->wide = qb_device_alloc (a->device, CL_MEM_READ_WRITE, need * sizeof (double), error)) == NULL)
        return FALSE;
      a->wide_floats = need;
    }
  ARG (a->widen, 0, x);
  ARG (a->widen, 1, a->wide);
  ARG (a->widen, 2, n);
  if (!launch (queue, a->widen, need, error))
    return FALSE;
  b = CLBlastDsyrk (CLBlastLayoutRowMajor, CLBlastTriangleUpper, CLBlastTransposeYes,
                    (size_t) in->n, rows, 1.0, a->wide, 0, (size_t) in->n, 1.0, in->gram, 0,
                    (size_t) in->n, &queue, NULL);
  if (b != CLBlastSuccess)
    {
      g_set_error (error, QB_DEVICE_ERROR,
                   b == CLBlastOpenCLOutOfResources ? QB_DEVICE_ERROR_RESOURCES : QB_DEVICE_ERROR_FAILED,
                   "CLBlast error %d while accumulating XᵀX", b);
      return FALSE;
    }
  return TRUE;
}

gboolean
qb_llama_accum_see (QbLlamaAccum *a, cl_command_queue queue, guint tensor_index, cl_mem x,
                    guint rows, GError **error)
{
  gint i = tensor_index < a->n_tensors ? a->input_of[tensor_index] : -1;
  Input *in;
  cl_int n, r = (cl_int) rows, off;

  if (i < 0 || (guint) i >= a->spec.n_inputs || a->inputs[i].last_pass == a->pass)
    return TRUE;
  in = &a->inputs[i];
  in->last_pass = a->pass;
  if (qb_device_fault_due ())
    return qb_device_check (CL_OUT_OF_RESOURCES, "accumulating statistics (injected fault)", error);
  if (a->spec.sums)
    {
      n = (cl_int) in->n;
      off = (cl_int) in->sums_off;
      ARG (a->sum_squares, 0, x);
      ARG (a->sum_squares, 1, r);
      ARG (a->sum_squares, 2, n);
      ARG (a->sum_squares, 3, a->sums);
      ARG (a->sum_squares, 4, off);
      if (!launch (queue, a->sum_squares, (gsize) in->n, error))
        return FALSE;
    }
  if (in->gram != NULL && !add_gram (a, in, queue, x, rows, error))
    return FALSE;
  in->rows += rows;
  return TRUE;
}

gboolean
qb_llama_stats_read (QbLlama *llama, guint input, double *sum2, double *gram, guint64 *rows,
                     GError **error)
{
  QbLlamaAccum *a = llama->accum;
  cl_command_queue queue;
  Input *in;
  cl_int s = CL_SUCCESS;

  g_return_val_if_fail (a != NULL && input < a->spec.n_inputs, FALSE);
  in = &a->inputs[input];
  queue = qb_device_get_queue (a->device);
  if (sum2 != NULL && a->spec.sums)
    s = clEnqueueReadBuffer (queue, a->sums, CL_TRUE, in->sums_off * sizeof (double),
                             (gsize) in->n * sizeof (double), sum2, 0, NULL, NULL);
  if (s == CL_SUCCESS && gram != NULL && in->gram != NULL)
    s = clEnqueueReadBuffer (queue, in->gram, CL_TRUE, 0, (gsize) in->n * in->n * sizeof (double),
                             gram, 0, NULL, NULL);
  *rows = in->rows;
  return qb_device_check (s, "reading the statistics back", error);
}

void
qb_llama_stats_end (QbLlama *llama)
{
  g_clear_pointer (&llama->accum, qb_llama_accum_free);
}
