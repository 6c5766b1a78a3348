/* SPDX-License-Identifier: MIT */
/* qb-dequant-device-private.h — ggml storage blocks turned into float32
 * on an OpenCL device (qb-dequant-device.cl), value for value what the
 * CPU's dequantizers give.  For the engine's device code (eval/). */
#pragma once

#include "qb-device-private.h"
#include "qb-dtype.h"

G_BEGIN_DECLS

typedef struct _QbDequantDevice QbDequantDevice;

/* TRUE when the device has a kernel for blocks of dtype: F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS. */
gboolean          qb_dequant_device_has     (QbDType           dtype);

/* The kernels built for device (from its program cache); NULL with a
 * QB_DEVICE_ERROR when they do not build. */
QbDequantDevice  *qb_dequant_device_new     (QbDevice         *device,
                                             GError          **error);
void              qb_dequant_device_free    (QbDequantDevice  *dq);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbDequantDevice, qb_dequant_device_free)

/* Enqueues the conversion of n_values values of dtype (a whole number of
 * blocks) stored in src from byte src_off into dst from float dst_off.
 * The kernels' arguments belong to dq: one thread at a time. */
cl_int            qb_dequant_device_enqueue (QbDequantDevice  *dq,
                                             cl_command_queue  queue,
                                             QbDType           dtype,
                                             cl_mem            src,
                                             guint64           src_off,
                                             cl_mem            dst,
                                             guint64           dst_off,
                                             gint64            n_values);

G_END_DECLS
