/* SPDX-License-Identifier: MIT */
/* qb-device.h — OpenCL devices: discovery, selection, the process default.
 *
 * The engine runs on CPU threads unless a device is selected; a selected
 * device takes the work whose kernels are ported (see core/README.md) and
 * everything else stays on CPU in the same job.  A device that cannot be
 * used (no OpenCL platform, no such device, kernels that do not build, too
 * little memory, an error mid-run) gives a message and the CPU path, never
 * a different result.
 *
 * Device specifications, as `--device` and QB_DEVICE take them:
 *   "cpu"        no device (the default)
 *   "gpu"        the first GPU of any platform
 *   "opencl:N"   device N of qb_device_list() (any kind, PoCL's CPU device too)
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QB_DEVICE_ERROR (qb_device_error_quark ())

typedef enum {
  QB_DEVICE_ERROR_INVALID,      /* not a device specification */
  QB_DEVICE_ERROR_NO_PLATFORM,  /* no OpenCL platform installed */
  QB_DEVICE_ERROR_NOT_FOUND,    /* no such device */
  QB_DEVICE_ERROR_UNSUPPORTED,  /* lacks what exact results need */
  QB_DEVICE_ERROR_NO_MEMORY,    /* too little device memory */
  QB_DEVICE_ERROR_BUILD,        /* a kernel failed to build */
  QB_DEVICE_ERROR_RESOURCES,    /* out of resources while running */
  QB_DEVICE_ERROR_FAILED,       /* any other OpenCL error */
} QbDeviceError;

GQuark qb_device_error_quark (void);

/* One OpenCL device as discovered. */
typedef struct {
  guint    index;          /* N of "opencl:N" */
  char    *name;
  char    *vendor;
  char    *platform;       /* platform name */
  char    *version;        /* CL_DEVICE_VERSION, "OpenCL 1.2 ..." */
  char    *driver;         /* CL_DRIVER_VERSION */
  gboolean is_gpu;
  guint64  global_mem;     /* bytes */
  guint64  max_alloc;      /* bytes of the largest single buffer */
  guint    compute_units;
  gboolean exact_float;    /* denormals and correctly rounded division:
                            * what bit-exact quantization needs */
  gboolean fp64;
} QbDeviceInfo;

void          qb_device_info_free      (QbDeviceInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbDeviceInfo, qb_device_info_free)

/* Every device of every platform, in platform order (QbDeviceInfo*).
 * Empty, not an error, when no platform is installed. */
GPtrArray    *qb_device_list           (GError      **error);

/* TRUE when spec is "cpu", "gpu" or "opencl:N"; does not look for it. */
gboolean      qb_device_spec_valid     (const char   *spec,
                                        GError      **error);

typedef struct _QbDevice QbDevice;

/* Opens the device spec names, with a context and a queue.  "cpu" gives
 * NULL without an error; NULL with error when the device cannot be used. */
QbDevice     *qb_device_open           (const char   *spec,
                                        GError      **error);
QbDevice     *qb_device_ref            (QbDevice     *device);
void          qb_device_unref          (QbDevice     *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbDevice, qb_device_unref)

const QbDeviceInfo *qb_device_get_info (QbDevice     *device);
/* "opencl:0 (NAME)", for results and messages. */
const char   *qb_device_get_label      (QbDevice     *device);

/* The process-wide device the engine uses: set by --device or the
 * preferences, else QB_DEVICE from the environment, else none ("cpu").
 * Setting a spec that cannot be opened prints why and keeps the CPU.
 * Returns FALSE (with error) when spec is not valid or cannot be opened. */
gboolean      qb_device_set_default    (const char   *spec,
                                        GError      **error);
/* TRUE when the default was set (qb_device_set_default) or QB_DEVICE is in
 * the environment: a preference applied at startup then yields to it. */
gboolean      qb_device_default_is_explicit (void);
/* A new reference to the default device, or NULL for the CPU. */
QbDevice     *qb_device_dup_default    (void);
/* "cpu" or the default device's label: what results record. */
char         *qb_device_dup_default_label (void);

G_END_DECLS
