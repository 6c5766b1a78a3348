/* SPDX-License-Identifier: MIT */
/* test-cli-quantize.c — `quantbench quantize | plan | formats` as a user runs them. */
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "qb-model.h"
#include "qb-store.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

#define run_env qb_test_quantbench_argv

static int
run (const char * const *args, char **out, char **err)
{
  return run_env (args, NULL, out, err);
}

static void
test_formats (void)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char *args[] = { "formats", NULL };
  int status = run (args, &out, &err);

  if (status < 0)
    return;
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "Q4_K"));
  g_assert_nonnull (strstr (out, "rtn"));
  g_assert_nonnull (strstr (out, "search"));
}

static void
test_plan_and_quantize (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *exe = model ? qb_test_quantbench_path () : NULL;
  g_autofree char *dir = NULL;
  g_autofree char *plan_file = NULL;
  g_autofree char *gguf = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *root;
  JsonArray *tensors;
  int status;

  if (model == NULL || exe == NULL)
    return;
  dir = qb_test_tmpdir ();
  plan_file = g_build_filename (dir, "plan.json", NULL);
  gguf = g_build_filename (dir, "out.gguf", NULL);

  {
    const char *args[] = { "plan", model, "--preset", "Q4_K_M", "--rule", "*.ffn_up.*=Q8_0",
                           "--save", plan_file, NULL };
    status = run (args, &out, &err);
    g_assert_cmpint (status, ==, 0);
    g_assert_nonnull (strstr (out, "blk.0.ffn_down.weight"));
    g_assert_nonnull (strstr (out, "fallback: blk.0.ffn_down.weight: rows of 172 values"));
    g_assert_nonnull (strstr (out, "total: 48 tensors"));
    g_assert_true (g_file_test (plan_file, G_FILE_TEST_EXISTS));
    g_clear_pointer (&out, g_free);
    g_clear_pointer (&err, g_free);
  }
  {
    const char *args[] = { "quantize", model, "--plan", plan_file, "--threads", "2",
                           "--out", gguf, "--json", NULL };
    status = run (args, &out, &err);
    g_assert_cmpint (status, ==, 0);
  }
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  tensors = json_object_get_array_member (root, "tensors");
  g_assert_cmpuint (json_array_get_length (tensors), ==, 48);
  for (guint i = 0; i < 48; i++)
    {
      JsonObject *t = json_array_get_object_element (tensors, i);
      if (g_str_has_suffix (json_object_get_string_member (t, "name"), "ffn_up.weight"))
        g_assert_cmpstr (json_object_get_string_member (t, "format"), ==, "Q8_0");
    }
  g_assert_nonnull (strstr (json_object_get_string_member (root, "export"), "GGUF"));
  g_assert_true (g_file_test (gguf, G_FILE_TEST_EXISTS));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (root, "plan"), "preset"),
                   ==, "Q4_K_M");

  /* Usage errors: a bad rule, an unknown format, a bad output name. */
  {
    g_autofree char *o = NULL, *e = NULL;
    const char *args[] = { "quantize", model, "--rule", "nonsense", NULL };
    g_assert_cmpint (run (args, &o, &e), ==, 1);
    g_assert_nonnull (strstr (e, "PATTERN=TYPE"));
  }
  {
    g_autofree char *o = NULL, *e = NULL;
    const char *args[] = { "plan", model, "--default", "Q9_9", NULL };
    g_assert_cmpint (run (args, &o, &e), ==, 1);
    g_assert_nonnull (strstr (e, "Q9_9"));
  }
  {
    g_autofree char *o = NULL, *e = NULL;
    g_autofree char *bad = g_build_filename (dir, "out.bin", NULL);
    const char *args[] = { "quantize", model, "--out", bad, NULL };
    g_assert_cmpint (run (args, &o, &e), ==, 1);
    g_assert_nonnull (strstr (e, ".gguf or .safetensors"));
    g_assert_false (g_file_test (bad, G_FILE_TEST_EXISTS));
  }
}

/* The headless demo: inspect and a Q4_K_M quantization of the built-in
 * model, generated into a fresh cache folder. */
static void
test_demo (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "XDG_CACHE_HOME", dir, TRUE);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char *args[] = { "demo", NULL };
  int status = run_env (args, envp, &out, &err);

  if (status < 0)
    return;
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "$ quantbench inspect"));
  g_assert_nonnull (strstr (out, "architecture"));
  g_assert_nonnull (strstr (out, "--preset Q4_K_M"));
  g_assert_nonnull (strstr (out, "blk.0.attn_v.weight"));
  g_assert_nonnull (strstr (out, "Q6_K"));
  g_assert_nonnull (strstr (out, "Q4_K"));
  g_assert_nonnull (strstr (out, "total: "));
}

/* Every run is saved as an experiment unless --no-save: a finished one as
 * done with all its tensors, one whose export fails as failed with the
 * reason. */
static void
test_save (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *db = g_build_filename (dir, "runs.db", NULL);
  g_autofree char *db2 = g_build_filename (dir, "unused.db", NULL);
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
  g_autofree char *out3 = NULL, *err3 = NULL, *out4 = NULL, *err4 = NULL;
  g_autofree char *out5 = NULL, *err5 = NULL, *bad_contents = NULL;
  g_autofree char *bad_db = g_build_filename (dir, "notes.db", NULL);
  g_autofree char *bad_out = g_build_filename (dir, "q.gguf", NULL);
  const char *make[] = { "demo-model", "--out", model_path, NULL };
  const char *save[] = { "quantize", model_path, "--default", "Q8_0", "--db", db, "--name", "mine", NULL };
  const char *no_save[] = { "quantize", model_path, "--default", "Q4_0", "--no-save", "--db", db2, NULL };
  const char *fail[] = { "quantize", model_path, "--default", "Q4_0", "--db", db,
                         "--out", "/nonexistent-dir/q.gguf", NULL };
  const char *bad_store[] = { "quantize", model_path, "--default", "Q4_0", "--db", bad_db,
                              "--out", bad_out, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) done = NULL, failed = NULL;

  if (run (make, &out, &err) < 0)
    return;
  g_assert_cmpint (run (save, &out2, &err2), ==, 0);
  g_assert_nonnull (strstr (out2, "saved as experiment 1 in"));
  g_assert_cmpint (run (no_save, &out3, &err3), ==, 0);
  g_assert_null (strstr (out3, "saved as"));
  g_assert_false (g_file_test (db2, G_FILE_TEST_EXISTS));
  /* An --out that cannot be written is refused before any work, and
   * leaves no experiment (a run failing later is stored as failed: see
   * test-adversarial's full disk). */
  g_assert_cmpint (run (fail, &out4, &err4), ==, 1);
  g_assert_nonnull (strstr (err4, "nonexistent-dir"));
  /* A --db that is not a database (opened while the first tensors are
   * quantized): the store's error, no output, the file untouched. */
  g_assert_true (g_file_set_contents (bad_db, "my notes, not a database\n", -1, NULL));
  g_assert_cmpint (run (bad_store, &out5, &err5), ==, 1);
  g_assert_nonnull (strstr (err5, "not a SQLite database"));
  g_assert_false (g_file_test (bad_out, G_FILE_TEST_EXISTS));
  {
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    const char *name;
    while ((name = g_dir_read_name (d)) != NULL)
      g_assert_false (g_str_has_prefix (name, "q.gguf"));
  }
  g_assert_true (g_file_get_contents (bad_db, &bad_contents, NULL, NULL));
  g_assert_cmpstr (bad_contents, ==, "my notes, not a database\n");

  model = qb_model_open (model_path, &error);
  g_assert_no_error (error);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  done = qb_store_get_experiment (store, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (done->name, ==, "mine");
  g_assert_cmpint (done->status, ==, QB_EXPERIMENT_DONE);
  g_assert_cmpuint (done->n_tensors_done, ==, qb_model_get_n_tensors (model));
  g_assert_nonnull (strstr (done->plan_json, "Q8_0"));
  g_assert_cmpfloat (done->totals.bpw, >, 8.0);
  failed = qb_store_get_experiment (store, 2, &error);
  g_assert_null (failed);
  g_clear_error (&error);
}

/* A model of one tensor and a --db that is not a database: the store is
 * opened while that tensor is quantized and fails after the run handed it
 * over; still no output (it was renamed into place), the file untouched. */
static void
test_bad_store_one_tensor (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model = g_build_filename (dir, "one.safetensors", NULL);
  g_autofree char *db = g_build_filename (dir, "notes.db", NULL);
  g_autofree char *q = g_build_filename (dir, "q.gguf", NULL);
  g_autofree char *out = NULL, *err = NULL, *contents = NULL;
  const char *args[] = { "quantize", model, "--default", "Q8_0", "--db", db, "--out", q, NULL };
  const gint64 shape[] = { 64, 256 };
  g_autofree float *w = g_new (float, 64 * 256);
  QbTestSafetensors *st = qb_test_safetensors_new ();
  int status;

  for (int i = 0; i < 64 * 256; i++)
    w[i] = (float) ((i * 37) % 101 - 50) / 500.0f;
  qb_test_safetensors_add (st, "model.layers.0.mlp.down_proj.weight", 2, shape, w);
  qb_test_safetensors_write (st, model);
  g_assert_true (g_file_set_contents (db, "my notes, not a database\n", -1, NULL));
  status = run (args, &out, &err);
  if (status < 0)
    return;
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "not a SQLite database"));
  g_assert_false (g_file_test (q, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_get_contents (db, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "my notes, not a database\n");
}

/* Automatic names say what the plan is and never repeat for one model;
 * --out naming the model itself is refused before anything is written. */
static void
test_names_and_self (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *db = g_build_filename (dir, "runs.db", NULL);
  g_autofree char *out = NULL, *err = NULL, *before = NULL, *after = NULL;
  const char *make[] = { "demo-model", "--out", model_path, NULL };
  const char *again[] = { "quantize", model_path, "--default", "Q4_0", "--rule", "blk.*.ffn_down.weight=Q6_K",
                          "--db", db, "--no-metrics", NULL };
  const char *self[] = { "quantize", model_path, "--default", "Q4_0", "--no-save", "--out", model_path, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) first = NULL, second = NULL;
  gsize n_before, n_after;

  if (run (make, &out, &err) < 0)
    return;
  for (int i = 0; i < 2; i++)
    {
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (run (again, &out, &err), ==, 0);
    }
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  first = qb_store_get_experiment (store, 1, &error);
  g_assert_no_error (error);
  second = qb_store_get_experiment (store, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (first->name, ==, "Q4_0 + 1 rule (Q6_K)");
  g_assert_cmpstr (second->name, ==, "Q4_0 + 1 rule (Q6_K) (2)");

  g_assert_true (g_file_get_contents (model_path, &before, &n_before, NULL));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (self, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "(the same file): refusing to overwrite an input"));
  g_assert_true (g_file_get_contents (model_path, &after, &n_after, NULL));
  g_assert_cmpuint (n_after, ==, n_before);
  g_assert_true (memcmp (before, after, n_before) == 0);
}

/* `--device`: a run on the OpenCL device writes the same GGUF as the CPU
 * run and records the device with the experiment; a device that is not
 * one is a usage error.  (Skips the device run without OpenCL.) */
static void
test_device (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *db = g_build_filename (dir, "runs.db", NULL);
  g_autofree char *cpu_gguf = g_build_filename (dir, "cpu.gguf", NULL);
  g_autofree char *dev_gguf = g_build_filename (dir, "dev.gguf", NULL);
  g_autofree char *out = NULL, *err = NULL, *list = NULL, *out2 = NULL, *err2 = NULL;
  g_autofree char *out3 = NULL, *err3 = NULL;
  const char *make[] = { "demo-model", "--out", model_path, NULL };
  const char *devices[] = { "devices", NULL };
  const char *bad[] = { "quantize", model_path, "--default", "Q4_0", "--no-save", "--device", "cuda:0", NULL };
  const char *cpu[] = { "quantize", model_path, "--default", "Q4_0", "--no-save", "--out", cpu_gguf, NULL };
  const char *dev[] = { "quantize", model_path, "--default", "Q4_0", "--db", db, "--out", dev_gguf,
                        "--device", "opencl:0", NULL };
  g_autoptr(GBytes) a = NULL, b = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GError) error = NULL;

  if (run (make, &out, &err) < 0)
    return;
  g_assert_cmpint (run (devices, &list, NULL), ==, 0);
  g_assert_nonnull (strstr (list, "cpu"));
  g_assert_cmpint (run (bad, NULL, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "cpu, gpu or opencl:N"));
  if (strstr (list, "opencl:0") == NULL)
    {
      g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
      return;
    }
  g_assert_cmpint (run (cpu, NULL, NULL), ==, 0);
  g_assert_cmpint (run (dev, &out3, &err3), ==, 0);
  a = qb_test_read_file (cpu_gguf);
  b = qb_test_read_file (dev_gguf);
  g_assert_true (g_bytes_equal (a, b));
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, 1, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (e->backend, "opencl:0 ("));
}

/* The experiment's stored-tensor count, read while another process writes
 * (WAL: a reader never waits for the writer); -1 before it exists. */
static gint64
tensors_stored (const char *db)
{
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;

  if (!g_file_test (db, G_FILE_TEST_EXISTS) || (store = qb_store_open (db, NULL)) == NULL
      || (e = qb_store_get_experiment (store, 1, NULL)) == NULL)
    return -1;
  return e->n_tensors_done;
}

/* SIGINT in the middle of a run: quantize stops cleanly (exit status 130)
 * and the experiment is kept as cancelled with the tensors it finished. */
static void
test_interrupt (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *db = g_build_filename (dir, "runs.db", NULL);
  g_autofree char *exe = qb_test_quantbench_path ();
  const char *make[] = { "demo-model", "--params", "20M", "--out", model_path, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;
  GPid pid;
  int wait_status;
  gint64 deadline;

  if (exe == NULL || qb_test_quantbench_argv (make, NULL, NULL, NULL) != 0)
    return;
  {
    /* Q2_K on one thread: the slowest kernel, so the run lasts. */
    const char *argv[] = { exe, "quantize", model_path, "--default", "Q2_K", "--threads", "1",
                           "--db", db, NULL };
    g_assert_true (g_spawn_async (NULL, (char **) argv, NULL,
                                  G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL
                                  | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, &error));
  }
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (tensors_stored (db) < 1 && g_get_monotonic_time () < deadline)
    g_usleep (2000);
  kill (pid, SIGINT);
  g_assert_cmpint (waitpid (pid, &wait_status, 0), ==, pid);
  g_spawn_close_pid (pid);

  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  e = qb_store_get_experiment (store, 1, &error);
  g_assert_no_error (error);
  if (e->status == QB_EXPERIMENT_DONE)
    {
      g_test_skip ("the run finished before the signal arrived");
      return;
    }
  g_assert_true (WIFEXITED (wait_status));
  g_assert_cmpint (WEXITSTATUS (wait_status), ==, 130);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_CANCELLED);
  g_assert_cmpuint (e->n_tensors_done, >=, 1);
  g_assert_cmpuint (e->n_tensors_done, <, e->n_tensors);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/formats", test_formats);
  g_test_add_func ("/cli/plan-and-quantize", test_plan_and_quantize);
  g_test_add_func ("/cli/demo", test_demo);
  g_test_add_func ("/cli/save", test_save);
  g_test_add_func ("/cli/bad-store-one-tensor", test_bad_store_one_tensor);
  g_test_add_func ("/cli/names-and-self", test_names_and_self);
  g_test_add_func ("/cli/interrupt", test_interrupt);
  g_test_add_func ("/cli/device", test_device);
  return g_test_run ();
}
