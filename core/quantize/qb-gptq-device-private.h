/* SPDX-License-Identifier: MIT */
/* qb-gptq-device-private.h — GPTQ's matrix work on the selected OpenCL
 * device (qb-gptq-device.c), for qb-gptq.c.
 *
 * The rounding of each column stays on the host (the formats' grids); the
 * O(rows · cols²) parts go to the device through CLBlast: the lazy batch
 * updates (W[:, i2:] −= E · U[i1:i2, i2:], SGEMM) with W kept on the
 * device for the whole chunk of rows, only the next batch's columns coming
 * back, and the guard's quadratic forms (E · XᵀX, DGEMM).  The device is
 * used by one chunk at a time (the device lock); the other workers round
 * their columns meanwhile.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QbGptqDevice     QbGptqDevice;
typedef struct _QbGptqDeviceRows QbGptqDeviceRows;

/* U (n × n floats, upper, work order) and, when gram is given, XᵀX
 * (n × n doubles: on devices with fp64) uploaded to the default device.
 * NULL without a selected device (silently), or with a message when the
 * device cannot hold them. */
QbGptqDevice     *qb_gptq_device_new       (const char        *tensor_name,
                                            const float       *u,
                                            const double      *gram,
                                            gint64             n);
void              qb_gptq_device_free      (QbGptqDevice      *gd);
/* After a failure the tensor's remaining chunks stay on the CPU. */
gboolean          qb_gptq_device_usable    (QbGptqDevice      *gd);
void              qb_gptq_device_failed    (QbGptqDevice      *gd,
                                            const GError      *error);

/* A chunk's rows W (R × n, work order) uploaded for its batches; err has
 * rows of block floats. */
QbGptqDeviceRows *qb_gptq_device_rows_new  (QbGptqDevice      *gd,
                                            const float       *w,
                                            gint64             R,
                                            gint64             block,
                                            GError           **error);
/* Columns [i1, i2) of W as the updates left them, into w (R × n). */
gboolean          qb_gptq_device_rows_fetch (QbGptqDeviceRows *dr,
                                            float             *w,
                                            gint64             i1,
                                            gint64             i2,
                                            GError           **error);
/* W[:, i2:] −= err[:, 0:i2−i1] · U[i1:i2, i2:] */
gboolean          qb_gptq_device_rows_update (QbGptqDeviceRows *dr,
                                            const float       *err,
                                            gint64             i1,
                                            gint64             i2,
                                            GError           **error);
void              qb_gptq_device_rows_free (QbGptqDeviceRows  *dr);

/* out[i] = e_i · XᵀX · e_iᵀ for the m rows of e (m × n doubles); FALSE
 * (error set when the device failed) when the device has no XᵀX. */
gboolean          qb_gptq_device_quadratic_forms (QbGptqDevice *gd,
                                            const double      *e,
                                            gint64             m,
                                            double            *out,
                                            GError           **error);

/* Batch updates and guard products run on a device since the process
 * started: lets tests tell the device path from a silent CPU fallback. */
guint64           qb_gptq_device_updates   (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbGptqDeviceRows, qb_gptq_device_rows_free)

G_END_DECLS
