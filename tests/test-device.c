/* SPDX-License-Identifier: MIT */
/* test-device.c — OpenCL discovery, selection, the program cache and the
 * errors that send work back to the CPU.  Needs an OpenCL device (PoCL's
 * CPU device in CI); without one the tests that need it skip. */
#include <string.h>

#include "qb-device-private.h"
#include "qb-test-util.h"

static const char good_source[] =
  "__kernel void twice (__global float *x) { x[get_global_id (0)] *= 2.0f; }\n";

/* The first device, or NULL after g_test_skip. */
static QbDevice *
open_first (void)
{
  g_autoptr(GPtrArray) list = qb_device_list (NULL);
  g_autoptr(GError) error = NULL;
  QbDevice *dev;

  if (list->len == 0)
    {
      g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
      return NULL;
    }
  dev = qb_device_open ("opencl:0", &error);
  g_assert_no_error (error);
  g_assert_nonnull (dev);
  return dev;
}

static void
test_spec (void)
{
  const char *good[] = { "cpu", "CPU", "gpu", "opencl:0", "opencl:12", NULL };
  const char *bad[] = { "cuda", "opencl:", "opencl:x", "opencl:-1", "gpu0", NULL };

  for (int i = 0; good[i]; i++)
    g_assert_true (qb_device_spec_valid (good[i], NULL));
  for (int i = 0; bad[i]; i++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_false (qb_device_spec_valid (bad[i], &error));
      g_assert_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, "cpu, gpu or opencl:N"));
    }
}

/* Every listed device has a name, an OpenCL version and memory. */
static void
test_list (void)
{
  g_autoptr(GPtrArray) list = qb_device_list (NULL);

  if (list->len == 0)
    {
      g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
      return;
    }
  for (guint i = 0; i < list->len; i++)
    {
      QbDeviceInfo *d = g_ptr_array_index (list, i);
      g_test_message ("opencl:%u %s (%s, %s, %s) %" G_GUINT64_FORMAT " MiB%s%s", d->index, d->name,
                      d->platform, d->version, d->driver, d->global_mem >> 20,
                      d->exact_float ? ", exact float" : "", d->fp64 ? ", fp64" : "");
      g_assert_cmpuint (d->index, ==, i);
      g_assert_cmpstr (d->name, !=, "");
      g_assert_true (g_str_has_prefix (d->version, "OpenCL "));
      g_assert_cmpuint (d->global_mem, >, 0);
      g_assert_cmpuint (d->max_alloc, >, 0);
    }
}

/* "cpu" is no device and no error; a device that is not there is an error
 * that says so. */
static void
test_open_errors (void)
{
  g_autoptr(GPtrArray) list = qb_device_list (NULL);
  g_autoptr(GError) error = NULL;
  gboolean has_gpu = FALSE;

  g_assert_null (qb_device_open ("cpu", &error));
  g_assert_no_error (error);

  g_assert_null (qb_device_open ("opencl:999", &error));
  g_assert_true (g_error_matches (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NOT_FOUND) ||
                 g_error_matches (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_PLATFORM));
  g_clear_error (&error);

  for (guint i = 0; i < list->len; i++)
    has_gpu |= ((QbDeviceInfo *) g_ptr_array_index (list, i))->is_gpu;
  if (!has_gpu)
    {
      g_assert_null (qb_device_open ("gpu", &error));
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, "gpu"));
    }
}

/* The default follows what was set; a device that cannot be opened leaves
 * the CPU with an error, never a half-open device. */
static void
test_default (void)
{
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *label = NULL;
  QbDevice *dev;

  g_assert_true (qb_device_set_default ("cpu", &error));
  g_assert_no_error (error);
  g_assert_null (qb_device_dup_default ());
  label = qb_device_dup_default_label ();
  g_assert_cmpstr (label, ==, "cpu");

  g_assert_false (qb_device_set_default ("opencl:999", &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_null (qb_device_dup_default ());

  g_assert_false (qb_device_set_default ("cuda:0", &error));
  g_assert_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_INVALID);
  g_clear_error (&error);

  list = qb_device_list (NULL);
  if (list->len == 0)
    return;
  g_assert_true (qb_device_set_default ("opencl:0", &error));
  g_assert_no_error (error);
  dev = qb_device_dup_default ();
  g_assert_nonnull (dev);
  g_clear_pointer (&label, g_free);
  label = qb_device_dup_default_label ();
  g_assert_true (g_str_has_prefix (label, "opencl:0 ("));
  qb_device_unref (dev);
  g_assert_true (qb_device_set_default ("cpu", NULL));
}

/* A kernel that does not compile is an error carrying the compiler's log. */
static void
test_build_failure (void)
{
  g_autoptr(QbDevice) dev = open_first ();
  g_autoptr(GError) error = NULL;

  if (dev == NULL)
    return;
  g_assert_null (qb_device_get_program (dev, "__kernel void broken (__global float *x) { y = 1; }\n",
                                        "", &error));
  g_assert_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_BUILD);
  g_test_message ("%s", error->message);
}

/* A program is built once per device and kept as a binary under
 * XDG_CACHE_HOME; a second device object loads it from there, and it
 * runs. */
static void
test_program_cache (void)
{
  g_autoptr(QbDevice) dev = open_first ();
  g_autoptr(QbDevice) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *source = NULL;
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "quantbench", "opencl", NULL);
  float x[4] = { 1, 2, 3, -4 };
  size_t global = 4;
  cl_program program;
  cl_kernel kernel;
  cl_mem buf;
  cl_int status;

  if (dev == NULL)
    return;
  source = g_strdup (good_source);
  program = qb_device_get_program (dev, source, "", &error);
  g_assert_no_error (error);
  g_assert_true (program == qb_device_get_program (dev, source, "", &error));
  g_assert_true (g_file_test (dir, G_FILE_TEST_IS_DIR));
  {
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    g_assert_nonnull (d);
    g_assert_nonnull (g_dir_read_name (d));
  }

  again = qb_device_open ("opencl:0", &error);
  g_assert_no_error (error);
  program = qb_device_get_program (again, source, "", &error);
  g_assert_no_error (error);
  kernel = clCreateKernel (program, "twice", &status);
  g_assert_cmpint (status, ==, CL_SUCCESS);
  buf = qb_device_alloc (again, CL_MEM_READ_WRITE, sizeof x, &error);
  g_assert_no_error (error);
  clEnqueueWriteBuffer (qb_device_get_queue (again), buf, CL_TRUE, 0, sizeof x, x, 0, NULL, NULL);
  clSetKernelArg (kernel, 0, sizeof buf, &buf);
  g_assert_cmpint (clEnqueueNDRangeKernel (qb_device_get_queue (again), kernel, 1, NULL, &global,
                                           NULL, 0, NULL, NULL), ==, CL_SUCCESS);
  clEnqueueReadBuffer (qb_device_get_queue (again), buf, CL_TRUE, 0, sizeof x, x, 0, NULL, NULL);
  g_assert_cmpfloat (x[0], ==, 2);
  g_assert_cmpfloat (x[3], ==, -8);
  clReleaseMemObject (buf);
  clReleaseKernel (kernel);
}

/* A buffer larger than the device allows is refused up front. */
static void
test_too_large (void)
{
  g_autoptr(QbDevice) dev = open_first ();
  g_autoptr(GError) error = NULL;

  if (dev == NULL)
    return;
  g_assert_null (qb_device_alloc (dev, CL_MEM_READ_WRITE,
                                  qb_device_get_info (dev)->global_mem + 1, &error));
  g_assert_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_NO_MEMORY);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/device/spec", test_spec);
  g_test_add_func ("/device/list", test_list);
  g_test_add_func ("/device/open-errors", test_open_errors);
  g_test_add_func ("/device/default", test_default);
  g_test_add_func ("/device/build-failure", test_build_failure);
  g_test_add_func ("/device/program-cache", test_program_cache);
  g_test_add_func ("/device/too-large", test_too_large);
  return g_test_run ();
}
