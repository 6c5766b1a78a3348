/* SPDX-License-Identifier: MIT */
/* qb-quantize-device-private.h — quantization, metrics and histograms on
 * an OpenCL device (qb-quantize-device.cl), for the tensor quantizer.
 *
 * Ported: every format whose row in the format table names a device
 * kernel (QbFormat.device_kernel: the ggml types, K-quants and IQ4 with
 * ggml's scale searches, NF4, MXFP4, FP8 and every INTn), with plain
 * rounding (method rtn), and with an importance matrix the formats whose
 * row names an importance kernel (QbFormat.device_kernel_imatrix: Q4_0,
 * Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, and Q8_0, which ignores it):
 * the same bytes and the same dequantized values as the CPU kernels.  Per
 * stripe of QB_DEVICE_STRIPE values of a row the device
 * gives the sums qb_measure_error_row adds (in double where the device
 * has it, so the host can add them in the CPU's order), and it counts the
 * three histograms as qb_hist_set_add bins them.
 *
 * The tensor goes through in slabs of rows: the host reads a slab as
 * float32, the device quantizes, dequantizes and measures it, and the
 * bytes (and the dequantized values, stripes and counts when asked) come
 * back.  A slab holding NaN or infinities is reported (nonfinite) instead
 * of trusted: the caller quantizes that tensor on the CPU.
 */
#pragma once

#include "qb-device.h"
#include "qb-format.h"

G_BEGIN_DECLS

#define QB_DEVICE_STRIPE 256   /* = QB_MEASURE_STRIPE */

/* The sums of one stripe, as the host keeps them. */
typedef struct {
  double s_xx, s_yy, s_xy, s_ee;
  float  max_err;
  float  min;
  float  max;
  gint32 n_out;
} QbDeviceStripe;

typedef struct {
  float out_lo, out_hi;          /* outlier bounds */
  guint n_bins;                  /* of each of the three histograms */
  float lo[3];                   /* x, y, x - y, as QbHistSet holds them */
  float scale[3];
} QbDeviceMeasure;

typedef struct _QbDeviceQuantizer QbDeviceQuantizer;

/* TRUE when the device has this format's kernel (plain rounding). */
gboolean            qb_device_quantize_supports   (const QbFormat           *format);

/* TRUE when it also has the kernel for rounding with importance. */
gboolean            qb_device_quantize_supports_importance (const QbFormat  *format);

/* Stripes per row of n_cols values. */
gint64              qb_device_stripes_per_row     (gint64                    n_cols);

/* Builds (or finds) the kernels and the slab buffers for rows of n_cols
 * values; tensor_absmax: max |x| of the whole tensor (per-tensor formats'
 * scale); measure NULL: the output only.  NULL with a QB_DEVICE_ERROR
 * when the device cannot take it. */
QbDeviceQuantizer  *qb_device_quantizer_new       (QbDevice                 *device,
                                                   const QbFormat           *format,
                                                   gint64                    n_cols,
                                                   gint64                    n_rows,
                                                   float                     tensor_absmax,
                                                   const QbDeviceMeasure    *measure,
                                                   GError                  **error);
void                qb_device_quantizer_free      (QbDeviceQuantizer        *dq);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbDeviceQuantizer, qb_device_quantizer_free)

/* Every row from now on is rounded with these n_cols importance weights
 * (the format's importance kernel).  FALSE with a QB_DEVICE_ERROR when
 * the format has none or the device fails. */
gboolean            qb_device_quantizer_set_importance (QbDeviceQuantizer *dq,
                                                        const float       *importance,
                                                        GError           **error);

/* Rows per slab. */
gint64              qb_device_quantizer_slab_rows (QbDeviceQuantizer        *dq);

/* One slab of n_rows rows (at most the slab's): x in, q out (the rows'
 * bytes), y out when not NULL; when measuring, stripes (n_rows ×
 * stripes_per_row) out and the histogram counts added to totals
 * (3 × n_bins).  *nonfinite: the slab held NaN or infinities, and q, y
 * and the stripes are not to be used. */
gboolean            qb_device_quantizer_run       (QbDeviceQuantizer        *dq,
                                                   const float              *x,
                                                   gint64                    n_rows,
                                                   guint8                   *q,
                                                   float                    *y,
                                                   QbDeviceStripe           *stripes,
                                                   guint64                  *totals,
                                                   gboolean                 *nonfinite,
                                                   GError                  **error);

/* Slabs run on any device since the process started: lets tests (and
 * benchmarks) tell the device path from a silent CPU fallback. */
guint64             qb_device_quantize_slabs      (void);

G_END_DECLS
