/* SPDX-License-Identifier: MIT */
/* qb-device.c — OpenCL discovery, device selection and program cache. */
#include "qb-device-private.h"

#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (qb-device-error-quark, qb_device_error)

struct _QbDevice {
  gint              ref_count;
  QbDeviceInfo     *info;
  char             *label;
  cl_device_id      id;
  cl_context        context;
  cl_command_queue  queue;
  GMutex            lock;
  GMutex            programs_lock;
  GHashTable       *programs;     /* cache key -> cl_program */
};

static void
release_program (gpointer program)
{
  clReleaseProgram (program);
}

/* ---- errors -------------------------------------------------------------- */

gboolean
qb_device_check (cl_int status, const char *what, GError **error)
{
  QbDeviceError code = QB_DEVICE_ERROR_FAILED;

  if (status == CL_SUCCESS)
    return TRUE;
  if (status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_HOST_MEMORY ||
      status == CL_INVALID_BUFFER_SIZE)
    code = QB_DEVICE_ERROR_NO_MEMORY;
  else if (status == CL_OUT_OF_RESOURCES)
    code = QB_DEVICE_ERROR_RESOURCES;
  else if (status == CL_BUILD_PROGRAM_FAILURE || status == CL_INVALID_BINARY)
    code = QB_DEVICE_ERROR_BUILD;
  g_set_error (error, QB_DEVICE_ERROR, code, "OpenCL error %d while %s", status, what);
  return FALSE;
}

/* ---- discovery ----------------------------------------------------------- */

static char *
device_string (cl_device_id id, cl_device_info what)
{
  size_t n = 0;
  char *s;

  if (clGetDeviceInfo (id, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
    return g_strdup ("");
  s = g_malloc0 (n + 1);
  if (clGetDeviceInfo (id, what, n, s, NULL) != CL_SUCCESS)
    s[0] = '\0';
  return g_strstrip (s);
}

static char *
platform_string (cl_platform_id id, cl_platform_info what)
{
  size_t n = 0;
  char *s;

  if (clGetPlatformInfo (id, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
    return g_strdup ("");
  s = g_malloc0 (n + 1);
  if (clGetPlatformInfo (id, what, n, s, NULL) != CL_SUCCESS)
    s[0] = '\0';
  return g_strstrip (s);
}

void
qb_device_info_free (QbDeviceInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  g_free (info->vendor);
  g_free (info->platform);
  g_free (info->version);
  g_free (info->driver);
  g_free (info);
}

static QbDeviceInfo *
describe (cl_platform_id platform, cl_device_id id, guint index)
{
  QbDeviceInfo *info = g_new0 (QbDeviceInfo, 1);
  cl_device_type type = 0;
  cl_ulong mem = 0, alloc = 0;
  cl_uint units = 0;
  cl_device_fp_config fp = 0, dp = 0;

  info->index = index;
  info->name = device_string (id, CL_DEVICE_NAME);
  info->vendor = device_string (id, CL_DEVICE_VENDOR);
  info->version = device_string (id, CL_DEVICE_VERSION);
  info->driver = device_string (id, CL_DRIVER_VERSION);
  info->platform = platform_string (platform, CL_PLATFORM_NAME);
  clGetDeviceInfo (id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  clGetDeviceInfo (id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
  clGetDeviceInfo (id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof alloc, &alloc, NULL);
  clGetDeviceInfo (id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
  clGetDeviceInfo (id, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
  clGetDeviceInfo (id, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof dp, &dp, NULL);
  info->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  info->global_mem = mem;
  info->max_alloc = alloc;
  info->compute_units = units;
  info->exact_float = (fp & CL_FP_DENORM) && (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT);
  info->fp64 = dp != 0;
  return info;
}

/* The OpenCL driver may install an alternate signal stack in the thread
 * that first enumerates devices (PoCL's LLVM does); AddressSanitizer then
 * aborts when that thread exits.  So the first enumeration runs on a
 * thread kept, parked, for the life of the process, never on a worker. */
static GMutex init_lock;
static GCond  init_cond;
static gboolean init_done;

static gpointer
init_thread (gpointer data)
{
  cl_uint n_platforms = 0;
  g_autofree cl_platform_id *platforms = NULL;

  if (clGetPlatformIDs (0, NULL, &n_platforms) == CL_SUCCESS && n_platforms > 0)
    {
      platforms = g_new0 (cl_platform_id, n_platforms);
      if (clGetPlatformIDs (n_platforms, platforms, NULL) == CL_SUCCESS)
        for (cl_uint p = 0; p < n_platforms; p++)
          {
            cl_uint n = 0;
            clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n);
          }
    }
  g_mutex_lock (&init_lock);
  init_done = TRUE;
  g_cond_broadcast (&init_cond);
  while (TRUE)
    g_cond_wait (&init_cond, &init_lock);
  return NULL;
}

/* FALSE when no thread could be started (a process out of threads): then
 * there is no OpenCL for this process, and everything runs on the CPU. */
static gboolean
ensure_initialized (void)
{
  static gsize once;
  static gboolean usable;

  if (g_once_init_enter (&once))
    {
      GThread *thread = g_thread_try_new ("qb-opencl-init", init_thread, NULL, NULL);

      usable = thread != NULL;
      if (thread != NULL)
        {
          g_thread_unref (thread);
          g_mutex_lock (&init_lock);
          while (!init_done)
            g_cond_wait (&init_cond, &init_lock);
          g_mutex_unlock (&init_lock);
        }
      g_once_init_leave (&once, 1);
    }
  return usable;
}

/* Every (platform, device) pair, in order; ids into *ids when not NULL. */
static GPtrArray *
enumerate (GArray *ids)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_device_info_free);
  cl_uint n_platforms = 0;
  g_autofree cl_platform_id *platforms = NULL;

  if (!ensure_initialized () ||
      clGetPlatformIDs (0, NULL, &n_platforms) != CL_SUCCESS || n_platforms == 0)
    return list;
  platforms = g_new0 (cl_platform_id, n_platforms);
  if (clGetPlatformIDs (n_platforms, platforms, NULL) != CL_SUCCESS)
    return list;
  for (cl_uint p = 0; p < n_platforms; p++)
    {
      cl_uint n = 0;
      g_autofree cl_device_id *devices = NULL;

      if (clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n) != CL_SUCCESS || n == 0)
        continue;
      devices = g_new0 (cl_device_id, n);
      if (clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, n, devices, NULL) != CL_SUCCESS)
        continue;
      for (cl_uint d = 0; d < n; d++)
        {
          g_ptr_array_add (list, describe (platforms[p], devices[d], list->len));
          if (ids != NULL)
            g_array_append_val (ids, devices[d]);
        }
    }
  return list;
}

GPtrArray *
qb_device_list (GError **error)
{
  return enumerate (NULL);
}

/* -1: "cpu"; -2: "gpu"; N: "opencl:N"; G_MININT with error if invalid. */
static int
parse_spec (const char *spec, GError **error)
{
  guint64 n = 0;

  if (spec == NULL || g_ascii_strcasecmp (spec, "cpu") == 0 || spec[0] == '\0')
    return -1;
  if (g_ascii_strcasecmp (spec, "gpu") == 0)
    return -2;
  if (g_ascii_strncasecmp (spec, "opencl:", 7) == 0 &&
      g_ascii_string_to_unsigned (spec + 7, 10, 0, 1023, &n, NULL))
    return (int) n;
  g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_INVALID,
               "'%s' is not a device: use cpu, gpu or opencl:N (see `quantbench devices`)", spec);
  return G_MININT;
}

gboolean
qb_device_spec_valid (const char *spec, GError **error)
{
  return parse_spec (spec, error) != G_MININT;
}

/* ---- opening ------------------------------------------------------------- */

static QbDevice *
device_new (QbDeviceInfo *info, cl_device_id id, GError **error)
{
  g_autoptr(QbDevice) dev = g_new0 (QbDevice, 1);
  cl_int status = CL_SUCCESS;

  dev->ref_count = 1;
  dev->info = info;
  dev->id = id;
  dev->label = g_strdup_printf ("opencl:%u (%s)", info->index, info->name);
  g_mutex_init (&dev->lock);
  g_mutex_init (&dev->programs_lock);
  dev->programs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         release_program);
  dev->context = clCreateContext (NULL, 1, &id, NULL, NULL, &status);
  if (!qb_device_check (status, "creating a context", error))
    return NULL;
  dev->queue = clCreateCommandQueue (dev->context, id, 0, &status);
  if (!qb_device_check (status, "creating a command queue", error))
    return NULL;
  return g_steal_pointer (&dev);
}

QbDevice *
qb_device_open (const char *spec, GError **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (cl_device_id));
  g_autoptr(GPtrArray) list = NULL;
  int want = parse_spec (spec, error);
  QbDeviceInfo *info = NULL;
  GError *local = NULL;
  QbDevice *dev;

  if (want == G_MININT || want == -1)
    return NULL;
  list = enumerate (ids);
  if (list->len == 0)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_PLATFORM,
                   "device %s: no OpenCL platform is installed", spec);
      return NULL;
    }
  for (guint i = 0; i < list->len && info == NULL; i++)
    {
      QbDeviceInfo *d = g_ptr_array_index (list, i);
      if ((want == -2 && d->is_gpu) || want == (int) i)
        info = d;
    }
  if (info == NULL)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NOT_FOUND,
                   want == -2 ? "device %s: no OpenCL GPU found (%u other device%s; see `quantbench devices`)"
                              : "device %s: no such OpenCL device (%u found; see `quantbench devices`)",
                   spec, list->len, list->len == 1 ? "" : "s");
      return NULL;
    }
  g_ptr_array_steal_index (list, info->index);
  dev = device_new (info, g_array_index (ids, cl_device_id, info->index), &local);
  if (dev == NULL)
    g_propagate_prefixed_error (error, local, "device %s: ", spec);
  return dev;
}

QbDevice *
qb_device_ref (QbDevice *device)
{
  g_atomic_int_inc (&device->ref_count);
  return device;
}

void
qb_device_unref (QbDevice *device)
{
  if (device == NULL || !g_atomic_int_dec_and_test (&device->ref_count))
    return;
  g_hash_table_destroy (device->programs);
  if (device->queue != NULL)
    clReleaseCommandQueue (device->queue);
  if (device->context != NULL)
    clReleaseContext (device->context);
  g_mutex_clear (&device->lock);
  g_mutex_clear (&device->programs_lock);
  qb_device_info_free (device->info);
  g_free (device->label);
  g_free (device);
}

const QbDeviceInfo *
qb_device_get_info (QbDevice *device)
{
  return device->info;
}

const char *
qb_device_get_label (QbDevice *device)
{
  return device->label;
}

cl_context
qb_device_get_context (QbDevice *device)
{
  return device->context;
}

cl_command_queue
qb_device_get_queue (QbDevice *device)
{
  return device->queue;
}

cl_device_id
qb_device_get_id (QbDevice *device)
{
  return device->id;
}

void
qb_device_lock (QbDevice *device)
{
  g_mutex_lock (&device->lock);
}

void
qb_device_unlock (QbDevice *device)
{
  g_mutex_unlock (&device->lock);
}

static gint fault_countdown;   /* atomic; 0: no fault armed */

void
qb_device_inject_fault (guint n)
{
  g_atomic_int_set (&fault_countdown, (gint) n);
}

gboolean
qb_device_fault_due (void)
{
  gint n = g_atomic_int_get (&fault_countdown);

  while (n > 0 && !g_atomic_int_compare_and_exchange (&fault_countdown, n, n - 1))
    n = g_atomic_int_get (&fault_countdown);
  return n == 1;
}

cl_mem
qb_device_alloc (QbDevice *device, cl_mem_flags flags, gsize size, GError **error)
{
  cl_int status = CL_SUCCESS;
  cl_mem mem;

  if (qb_device_fault_due ())
    {
      qb_device_check (CL_MEM_OBJECT_ALLOCATION_FAILURE, "allocating device memory (injected fault)",
                       error);
      return NULL;
    }

  if (size > device->info->max_alloc || size > device->info->global_mem)
    {
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_MEMORY,
                   "%s: a buffer of %" G_GSIZE_FORMAT " MiB exceeds the device's %" G_GUINT64_FORMAT
                   " MiB per buffer", device->label, size >> 20, device->info->max_alloc >> 20);
      return NULL;
    }
  mem = clCreateBuffer (device->context, flags, MAX (size, 1), NULL, &status);
  if (!qb_device_check (status, "allocating device memory", error))
    return NULL;
  return mem;
}

/* ---- programs and their binary cache --------------------------------------- */

static char *
program_key (QbDevice *device, const char *source, const char *options)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  const char *parts[] = { device->info->platform, device->info->name, device->info->version,
                          device->info->driver, options ? options : "", source };

  for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
    g_checksum_update (sum, (const guchar *) parts[i], strlen (parts[i]) + 1);
  return g_strdup (g_checksum_get_string (sum));
}

static char *
cache_path (const char *key)
{
  return g_build_filename (g_get_user_cache_dir (), "quantbench", "opencl",
                           (char[]) { key[0], key[1], '\0' }, key, NULL);
}

/* A program from the cached binary, or NULL (a missing or stale cache
 * entry is not an error: the caller builds from source). */
static cl_program
load_cached (QbDevice *device, const char *path, const char *options)
{
  g_autofree char *bytes = NULL;
  gsize n = 0;
  cl_int status = CL_SUCCESS, binary_status = CL_SUCCESS;
  const unsigned char *bin;
  cl_program program;

  if (!g_file_get_contents (path, &bytes, &n, NULL) || n == 0)
    return NULL;
  bin = (const unsigned char *) bytes;
  program = clCreateProgramWithBinary (device->context, 1, &device->id, &n, &bin,
                                       &binary_status, &status);
  if (status != CL_SUCCESS || binary_status != CL_SUCCESS)
    {
      if (program != NULL)
        clReleaseProgram (program);
      return NULL;
    }
  if (clBuildProgram (program, 1, &device->id, options, NULL, NULL) != CL_SUCCESS)
    {
      clReleaseProgram (program);
      return NULL;
    }
  return program;
}

/* Best effort: a cache that cannot be written only costs the next build. */
static void
store_cached (QbDevice *device, cl_program program, const char *path)
{
  size_t n = 0;
  g_autofree unsigned char *bin = NULL;
  g_autofree char *dir = g_path_get_dirname (path);

  if (clGetProgramInfo (program, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0)
    return;
  bin = g_malloc (n);
  if (clGetProgramInfo (program, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS)
    return;
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents (path, (const char *) bin, n, NULL);
}

static cl_program
build_source (QbDevice *device, const char *source, const char *options, GError **error)
{
  cl_int status = CL_SUCCESS;
  cl_program program = clCreateProgramWithSource (device->context, 1, &source, NULL, &status);
  size_t n = 0;
  g_autofree char *log = NULL;

  if (!qb_device_check (status, "creating a program", error))
    return NULL;
  status = clBuildProgram (program, 1, &device->id, options, NULL, NULL);
  if (status == CL_SUCCESS)
    return program;
  clGetProgramBuildInfo (program, device->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  log = g_malloc0 (n + 1);
  if (n > 0)
    clGetProgramBuildInfo (program, device->id, CL_PROGRAM_BUILD_LOG, n, log, NULL);
  clReleaseProgram (program);
  g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_BUILD,
               "%s: the kernels failed to build (OpenCL error %d): %.2000s",
               device->label, status, g_strstrip (log));
  return NULL;
}

cl_program
qb_device_get_program (QbDevice *device, const char *source, const char *options,
                       GError **error)
{
  g_autofree char *key = program_key (device, source, options);
  g_autofree char *path = NULL;
  cl_program program;

  g_mutex_lock (&device->programs_lock);
  program = g_hash_table_lookup (device->programs, key);
  if (program == NULL)
    {
      path = cache_path (key);
      program = load_cached (device, path, options);
      if (program == NULL)
        {
          program = build_source (device, source, options, error);
          if (program != NULL)
            store_cached (device, program, path);
        }
      if (program != NULL)
        g_hash_table_insert (device->programs, g_strdup (key), program);
    }
  g_mutex_unlock (&device->programs_lock);
  return program;
}

/* ---- the process default ------------------------------------------------- */

static GMutex default_lock;
static gboolean default_chosen;
static QbDevice *default_device;

/* Under default_lock. */
static gboolean
choose_default (const char *spec, GError **error)
{
  g_autoptr(GError) local = NULL;

  g_clear_pointer (&default_device, qb_device_unref);
  default_chosen = TRUE;
  if (!qb_device_spec_valid (spec, error))
    return FALSE;
  default_device = qb_device_open (spec, &local);
  if (local != NULL)
    {
      g_message ("%s; running on the CPU", local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}

gboolean
qb_device_set_default (const char *spec, GError **error)
{
  gboolean ok;

  g_mutex_lock (&default_lock);
  ok = choose_default (spec, error);
  g_mutex_unlock (&default_lock);
  return ok;
}

gboolean
qb_device_default_is_explicit (void)
{
  gboolean chosen;

  g_mutex_lock (&default_lock);
  chosen = default_chosen;
  g_mutex_unlock (&default_lock);
  return chosen || g_getenv ("QB_DEVICE") != NULL;
}

QbDevice *
qb_device_dup_default (void)
{
  QbDevice *dev;

  g_mutex_lock (&default_lock);
  if (!default_chosen)
    {
      const char *env = g_getenv ("QB_DEVICE");
      g_autoptr(GError) error = NULL;
      if (!choose_default (env, &error) && error->code == QB_DEVICE_ERROR_INVALID)
        g_message ("QB_DEVICE: %s; running on the CPU", error->message);
    }
  dev = default_device ? qb_device_ref (default_device) : NULL;
  g_mutex_unlock (&default_lock);
  return dev;
}

char *
qb_device_dup_default_label (void)
{
  g_autoptr(QbDevice) dev = qb_device_dup_default ();

  return g_strdup (dev ? qb_device_get_label (dev) : "cpu");
}
