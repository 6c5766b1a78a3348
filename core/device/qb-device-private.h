/* SPDX-License-Identifier: MIT */
/* qb-device-private.h — the OpenCL handles of a QbDevice, for the engine's
 * device code in the layers above (quantize/, eval/, calib/).
 *
 * A device's queue is in order.  Enqueueing is thread-safe in OpenCL, but
 * a cl_kernel's arguments are not: code that sets arguments and runs
 * holds the device lock (qb_device_lock) for the whole step.
 */
#pragma once

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "qb-device.h"

G_BEGIN_DECLS

cl_context        qb_device_get_context  (QbDevice     *device);
cl_command_queue  qb_device_get_queue    (QbDevice     *device);
cl_device_id      qb_device_get_id       (QbDevice     *device);

void              qb_device_lock         (QbDevice     *device);
void              qb_device_unlock       (QbDevice     *device);

/* The program built from source with options, from (in this order) the
 * device's programs already built, the binary cache (XDG_CACHE_HOME/
 * quantbench/opencl, keyed by device, driver, options and source), or a
 * fresh build stored in that cache.  Owned by the device.  A build
 * failure gives QB_DEVICE_ERROR_BUILD with the compiler's log. */
cl_program        qb_device_get_program  (QbDevice     *device,
                                          const char   *source,
                                          const char   *options,
                                          GError      **error);

/* FALSE with a QB_DEVICE_ERROR for status != CL_SUCCESS; what names the
 * call ("reading the results").  Out of memory and out of resources get
 * their own codes. */
gboolean          qb_device_check        (cl_int        status,
                                          const char   *what,
                                          GError      **error);

/* A buffer of size bytes, or NULL with QB_DEVICE_ERROR_NO_MEMORY when
 * larger than the device allows. */
cl_mem            qb_device_alloc        (QbDevice     *device,
                                          cl_mem_flags  flags,
                                          gsize         size,
                                          GError      **error);

/* Fault injection for tests: the n-th device step from now (a buffer
 * allocation, or a qb_device_fault_due call in the engine's device code)
 * fails as a device out of resources would; 0 disarms. */
void              qb_device_inject_fault (guint         n);
/* Counts a step; TRUE when the injected fault is due at it. */
gboolean          qb_device_fault_due    (void);

G_END_DECLS
