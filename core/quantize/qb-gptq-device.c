/* SPDX-License-Identifier: MIT */
/* qb-gptq-device.c — GPTQ's lazy batch updates and guard products on the
 * selected device through CLBlast (see qb-gptq-device-private.h). */
#include "qb-gptq-device-private.h"
#include "qb-device-private.h"
#include "qb-linalg-private.h"

#include <clblast_c.h>
#include <string.h>

static gint64 updates;   /* atomic */

guint64
qb_gptq_device_updates (void)
{
  return (guint64) __atomic_load_n (&updates, __ATOMIC_RELAXED);
}

struct _QbGptqDevice {
  QbDevice *device;
  char     *tensor_name;
  gint64    n;
  cl_mem    u;          /* n × n floats */
  cl_mem    gram;       /* n × n doubles, or NULL */
  gint      failed;     /* atomic */
};

struct _QbGptqDeviceRows {
  QbGptqDevice *gd;
  gint64        R, block;
  cl_mem        w, err;
};

static gboolean
blas_check (CLBlastStatusCode b, const char *what, GError **error)
{
  if (b == CLBlastSuccess)
    return TRUE;
  g_set_error (error, QB_DEVICE_ERROR,
               b == CLBlastOpenCLOutOfResources ? QB_DEVICE_ERROR_RESOURCES
               : b == CLBlastOpenCLOutOfHostMemory || b == CLBlastInsufficientMemoryTemp
                 ? QB_DEVICE_ERROR_NO_MEMORY : QB_DEVICE_ERROR_FAILED,
               "CLBlast error %d while %s", b, what);
  return FALSE;
}

static cl_mem
upload (QbDevice *device, const void *data, gsize bytes, GError **error)
{
  cl_mem m = qb_device_alloc (device, CL_MEM_READ_WRITE, bytes, error);
  cl_int s;

  if (m == NULL)
    return NULL;
  s = clEnqueueWriteBuffer (qb_device_get_queue (device), m, CL_TRUE, 0, bytes, data, 0, NULL, NULL);
  if (!qb_device_check (s, "uploading GPTQ's matrices", error))
    {
      clReleaseMemObject (m);
      return NULL;
    }
  return m;
}

void
qb_gptq_device_free (QbGptqDevice *gd)
{
  if (gd == NULL)
    return;
  if (gd->u != NULL)
    clReleaseMemObject (gd->u);
  if (gd->gram != NULL)
    clReleaseMemObject (gd->gram);
  qb_device_unref (gd->device);
  g_free (gd->tensor_name);
  g_free (gd);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbGptqDevice, qb_gptq_device_free)

QbGptqDevice *
qb_gptq_device_new (const char *tensor_name, const float *u, const double *gram, gint64 n)
{
  g_autoptr(QbDevice) device = qb_device_dup_default ();
  g_autoptr(QbGptqDevice) gd = NULL;
  g_autoptr(GError) error = NULL;
  gsize nn = (gsize) n * n;

  if (device == NULL)
    return NULL;
  gd = g_new0 (QbGptqDevice, 1);
  gd->device = g_steal_pointer (&device);
  gd->tensor_name = g_strdup (tensor_name);
  gd->n = n;
  qb_device_lock (gd->device);
  gd->u = upload (gd->device, u, nn * sizeof (float), &error);
  if (gd->u != NULL && gram != NULL && qb_device_get_info (gd->device)->fp64)
    gd->gram = upload (gd->device, gram, nn * sizeof (double), &error);
  qb_device_unlock (gd->device);
  if (error != NULL)
    {
      g_message ("GPTQ of %s: %s; running on the CPU", tensor_name, error->message);
      return NULL;
    }
  return g_steal_pointer (&gd);
}

gboolean
qb_gptq_device_usable (QbGptqDevice *gd)
{
  return gd != NULL && !g_atomic_int_get (&gd->failed);
}

void
qb_gptq_device_failed (QbGptqDevice *gd, const GError *error)
{
  if (g_atomic_int_compare_and_exchange (&gd->failed, 0, 1))
    g_message ("GPTQ of %s: %s; running on the CPU", gd->tensor_name, error->message);
}

void
qb_gptq_device_rows_free (QbGptqDeviceRows *dr)
{
  if (dr == NULL)
    return;
  if (dr->w != NULL)
    clReleaseMemObject (dr->w);
  if (dr->err != NULL)
    clReleaseMemObject (dr->err);
  g_free (dr);
}

QbGptqDeviceRows *
qb_gptq_device_rows_new (QbGptqDevice *gd, const float *w, gint64 R, gint64 block, GError **error)
{
  g_autoptr(QbGptqDeviceRows) dr = g_new0 (QbGptqDeviceRows, 1);
  gboolean ok;

  dr->gd = gd;
  dr->R = R;
  dr->block = block;
  qb_device_lock (gd->device);
  ok = (dr->w = upload (gd->device, w, (gsize) R * gd->n * sizeof (float), error)) != NULL
       && (dr->err = qb_device_alloc (gd->device, CL_MEM_READ_WRITE,
                                      (gsize) R * block * sizeof (float), error)) != NULL;
  qb_device_unlock (gd->device);
  return ok ? g_steal_pointer (&dr) : NULL;
}

gboolean
qb_gptq_device_rows_fetch (QbGptqDeviceRows *dr, float *w, gint64 i1, gint64 i2, GError **error)
{
  QbGptqDevice *gd = dr->gd;
  size_t f = sizeof (float), pitch = (size_t) gd->n * f;
  size_t origin[3] = { (size_t) i1 * f, 0, 0 }, region[3] = { (size_t) (i2 - i1) * f, (size_t) dr->R, 1 };
  cl_int s;

  qb_device_lock (gd->device);
  s = clEnqueueReadBufferRect (qb_device_get_queue (gd->device), dr->w, CL_TRUE, origin, origin,
                               region, pitch, 0, pitch, 0, w, 0, NULL, NULL);
  qb_device_unlock (gd->device);
  return qb_device_check (s, "reading GPTQ's columns back", error);
}

gboolean
qb_gptq_device_rows_update (QbGptqDeviceRows *dr, const float *err, gint64 i1, gint64 i2,
                            GError **error)
{
  QbGptqDevice *gd = dr->gd;
  cl_command_queue queue = qb_device_get_queue (gd->device);
  gint64 n = gd->n;
  cl_int s;
  gboolean ok;

  qb_device_lock (gd->device);
  s = qb_device_fault_due () ? CL_OUT_OF_RESOURCES
      : clEnqueueWriteBuffer (queue, dr->err, CL_FALSE, 0, (gsize) dr->R * dr->block * sizeof (float),
                              err, 0, NULL, NULL);
  ok = qb_device_check (s, "running GPTQ's updates", error)
       && blas_check (CLBlastSgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
                                    (size_t) dr->R, (size_t) (n - i2), (size_t) (i2 - i1), -1.0f,
                                    dr->err, 0, (size_t) dr->block, gd->u, (size_t) (i1 * n + i2),
                                    (size_t) n, 1.0f, dr->w, (size_t) i2, (size_t) n, &queue, NULL),
                      "running GPTQ's updates", error);
  /* err is the caller's: nothing may read it once this returns. */
  s = clFinish (queue);
  qb_device_unlock (gd->device);
  if (ok)
    __atomic_add_fetch (&updates, 1, __ATOMIC_RELAXED);
  return ok && qb_device_check (s, "running GPTQ's updates", error);
}

gboolean
qb_gptq_device_quadratic_forms (QbGptqDevice *gd, const double *e, gint64 m, double *out,
                                GError **error)
{
  cl_command_queue queue;
  gint64 n = gd->n;
  gsize bytes = (gsize) m * n * sizeof (double);
  g_autofree double *ge = NULL;
  cl_mem de = NULL, dge = NULL;
  gboolean ok;

  if (gd->gram == NULL)
    return FALSE;
  ge = g_new (double, (gsize) m * n);
  queue = qb_device_get_queue (gd->device);
  qb_device_lock (gd->device);
  ok = (de = upload (gd->device, e, bytes, error)) != NULL
       && (dge = qb_device_alloc (gd->device, CL_MEM_READ_WRITE, bytes, error)) != NULL
       && blas_check (CLBlastDgemm (CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
                                    (size_t) m, (size_t) n, (size_t) n, 1.0, de, 0, (size_t) n,
                                    gd->gram, 0, (size_t) n, 0.0, dge, 0, (size_t) n, &queue, NULL),
                      "running GPTQ's guard", error)
       && qb_device_check (clEnqueueReadBuffer (queue, dge, CL_TRUE, 0, bytes, ge, 0, NULL, NULL),
                           "reading GPTQ's guard back", error);
  clFinish (queue);
  if (de != NULL)
    clReleaseMemObject (de);
  if (dge != NULL)
    clReleaseMemObject (dge);
  qb_device_unlock (gd->device);
  if (!ok)
    return FALSE;
  __atomic_add_fetch (&updates, 1, __ATOMIC_RELAXED);
  qb_row_dots (ge, e, m, n, out);
  return TRUE;
}
