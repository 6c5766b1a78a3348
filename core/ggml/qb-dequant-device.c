/* SPDX-License-Identifier: MIT */
/* qb-dequant-device.c — the host side of qb-dequant-device.cl: one kernel
 * per storage type, launched one work-item per block. */
#include "qb-dequant-device-private.h"
#include "qb-dequant-device-cl.h"

typedef struct {
  QbDType     dtype;
  const char *kernel;
} Entry;

static const Entry entries[] = {
  { QB_DTYPE_F16,    "dequant_f16" },
  { QB_DTYPE_BF16,   "dequant_bf16" },
  { QB_DTYPE_Q4_0,   "dequant_q4_0" },
  { QB_DTYPE_Q4_1,   "dequant_q4_1" },
  { QB_DTYPE_Q5_0,   "dequant_q5_0" },
  { QB_DTYPE_Q5_1,   "dequant_q5_1" },
  { QB_DTYPE_Q8_0,   "dequant_q8_0" },
  { QB_DTYPE_Q2_K,   "dequant_q2_k" },
  { QB_DTYPE_Q3_K,   "dequant_q3_k" },
  { QB_DTYPE_Q4_K,   "dequant_q4_k" },
  { QB_DTYPE_Q5_K,   "dequant_q5_k" },
  { QB_DTYPE_Q6_K,   "dequant_q6_k" },
  { QB_DTYPE_IQ4_NL, "dequant_iq4_nl" },
  { QB_DTYPE_IQ4_XS, "dequant_iq4_xs" },
};

struct _QbDequantDevice {
  QbDevice  *device;
  cl_kernel  kernels[G_N_ELEMENTS (entries)];
};

static int
entry_index (QbDType dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (entries); i++)
    if (entries[i].dtype == dtype)
      return (int) i;
  return -1;
}

gboolean
qb_dequant_device_has (QbDType dtype)
{
  return entry_index (dtype) >= 0;
}

void
qb_dequant_device_free (QbDequantDevice *dq)
{
  if (dq == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (entries); i++)
    if (dq->kernels[i] != NULL)
      clReleaseKernel (dq->kernels[i]);
  qb_device_unref (dq->device);
  g_free (dq);
}

QbDequantDevice *
qb_dequant_device_new (QbDevice *device, GError **error)
{
  g_autoptr(QbDequantDevice) dq = g_new0 (QbDequantDevice, 1);
  cl_program program;
  cl_int s = CL_SUCCESS;

  dq->device = qb_device_ref (device);
  program = qb_device_get_program (device, qb_dequant_device_source, "-cl-std=CL1.2", error);
  if (program == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (entries) && s == CL_SUCCESS; i++)
    dq->kernels[i] = clCreateKernel (program, entries[i].kernel, &s);
  if (!qb_device_check (s, "creating the dequantization kernels", error))
    return NULL;
  return g_steal_pointer (&dq);
}

cl_int
qb_dequant_device_enqueue (QbDequantDevice *dq, cl_command_queue queue, QbDType dtype,
                           cl_mem src, guint64 src_off, cl_mem dst, guint64 dst_off,
                           gint64 n_values)
{
  const QbDTypeInfo *info = qb_dtype_info (dtype);
  int e = entry_index (dtype);
  cl_ulong so = src_off, doff = dst_off, n;
  cl_kernel k;
  size_t global;
  cl_int s = CL_SUCCESS;

  if (e < 0 || info == NULL || n_values % info->block_size != 0)
    return CL_INVALID_VALUE;
  n = (cl_ulong) n_values / info->block_size;
  if (n == 0)
    return CL_SUCCESS;
  k = dq->kernels[e];
  global = (size_t) ((n + 63) / 64 * 64);
  s |= clSetKernelArg (k, 0, sizeof src, &src);
  s |= clSetKernelArg (k, 1, sizeof so, &so);
  s |= clSetKernelArg (k, 2, sizeof dst, &dst);
  s |= clSetKernelArg (k, 3, sizeof doff, &doff);
  s |= clSetKernelArg (k, 4, sizeof n, &n);
  if (s != CL_SUCCESS)
    return CL_INVALID_KERNEL_ARGS;
  return clEnqueueNDRangeKernel (queue, k, 1, NULL, &global, NULL, 0, NULL, NULL);
}
