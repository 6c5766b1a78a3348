/* SPDX-License-Identifier: MIT */
/* test-adversarial.c — the command line against a hostile user or a damaged
 * download, reproducibly: every input is generated here from the demo
 * model (and ../shared's stories260K when present).  Each class of issue
 * 14 has a test; each case must end in a clean outcome — a located error
 * and a non-zero exit, or success — never a crash, a hang, a destroyed
 * input, a temporary file left behind or a healthy store called damaged.
 * Cases that need root (tmpfs mounts, a second user for process limits and
 * unreadable files) are skipped with a message otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qb-demo-model.h"
#include "qb-file.h"
#include "qb-format.h"
#include "qb-model.h"
#include "qb-store.h"
#include "qb-tensor-quantizer.h"
#include "qb-test-model.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

#define NOBODY 65534

/* -- running quantbench ------------------------------------------------------ */

typedef struct {
  gboolean as_nobody;     /* root only: another user, who cannot read mode 000 files */
  int      nproc;         /* > 0: RLIMIT_NPROC (enforced for that user) */
} Child;

static void
child_setup (gpointer data)
{
  const Child *c = data;

  if (c->nproc > 0)
    {
      struct rlimit r = { (rlim_t) c->nproc, (rlim_t) c->nproc };
      setrlimit (RLIMIT_NPROC, &r);
    }
  if (c->as_nobody && (setgid (NOBODY) != 0 || setuid (NOBODY) != 0))
    _exit (99);
}

/* quantbench args under `timeout` (a hang is exit 124); stderr into *err,
 * stdout into *out_text. */
static int
run_va (const Child *child, char **out_text, char **err, const char *first, va_list ap)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err_text = NULL;
  Child none = { 0 };
  const char *arg;
  int status = -1;

  if (exe == NULL)
    return -1;
  g_ptr_array_add (argv, (gpointer) "timeout");
  g_ptr_array_add (argv, (gpointer) "60");
  g_ptr_array_add (argv, exe);
  for (arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) arg);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, child_setup,
                child ? (gpointer) child : &none, &out, &err_text, &status, &error);
  g_assert_no_error (error);
  g_test_message ("quantbench %s ...: status %d: %s", first, status, err_text);
  /* No case may abort, crash or hit the timeout. */
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), !=, 124);
  g_assert_null (strstr (err_text, "GLib-ERROR"));
  g_assert_null (strstr (err_text, "AddressSanitizer"));
  g_assert_null (strstr (err_text, "runtime error"));
  if (err != NULL)
    *err = g_steal_pointer (&err_text);
  if (out_text != NULL)
    *out_text = g_steal_pointer (&out);
  return WEXITSTATUS (status);
}

static int
run_full (const Child *child, char **out, char **err, const char *first, ...)
{
  va_list ap;
  int status;

  va_start (ap, first);
  status = run_va (child, out, err, first, ap);
  va_end (ap);
  return status;
}

#define run(err, ...) run_full (NULL, NULL, err, __VA_ARGS__, NULL)
#define run_as(child, err, ...) run_full (child, NULL, err, __VA_ARGS__)
#define run_json(child, out, ...) run_full (child, out, NULL, __VA_ARGS__, NULL)

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static gboolean
is_root (const char *what)
{
  if (geteuid () == 0)
    return TRUE;
  g_test_skip (what);
  return FALSE;
}

static char *
sha (const char *path)
{
  g_autoptr(GBytes) b = qb_test_read_file (path);
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, b);
}

/* No *.tmp-* file in dir. */
static void
assert_no_temporaries (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (strstr (name, ".tmp-") != NULL)
      g_error ("temporary file left: %s/%s", dir, name);
}

/* -- inputs ------------------------------------------------------------------ */

typedef struct {
  char *dir;
  char *model;      /* demo model, F32 matrices */
  char *text;       /* a calibration / evaluation text */
} Inputs;

static void
inputs_make (Inputs *in)
{
  QbDemoModelSpec spec;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) text = g_string_new (NULL);

  in->dir = qb_test_tmpdir ();
  g_assert_no_errno (chmod (in->dir, 0777));
  in->model = g_build_filename (in->dir, "m.gguf", NULL);
  in->text = g_build_filename (in->dir, "t.txt", NULL);
  qb_demo_model_spec_init (&spec);
  spec.dtype = QB_DTYPE_F32;
  g_assert_true (qb_demo_model_write (&spec, in->model, NULL, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 400; i++)
    g_string_append_printf (text, "Once upon a time there was a model number %d. ", i);
  g_assert_true (g_file_set_contents (in->text, text->str, -1, NULL));
}

static void
inputs_clear (Inputs *in)
{
  g_free (in->dir);
  g_free (in->model);
  g_free (in->text);
}

static char *
path_in (const Inputs *in, const char *name)
{
  return g_build_filename (in->dir, name, NULL);
}

/* -- output onto input -------------------------------------------------------- */

/* Every way of naming an input as an output is refused before any work,
 * and the input keeps its bytes. */
static void
test_output_onto_input (void)
{
  Inputs in;
  g_autofree char *st = NULL, *symlinked = NULL, *hard = NULL, *dotted = NULL, *sub = NULL;
  g_autofree char *plan = NULL, *db = NULL, *im = NULL, *err = NULL;
  g_autofree char *sum_model = NULL, *sum_st = NULL, *sum_plan = NULL, *sum_db = NULL;
  g_autofree char *sum_im = NULL, *sum_text = NULL;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  st = path_in (&in, "m.safetensors");
  symlinked = path_in (&in, "link.gguf");
  hard = path_in (&in, "hard.gguf");
  sub = path_in (&in, "sub");
  dotted = g_build_filename (in.dir, "sub", "..", "m.gguf", NULL);
  plan = path_in (&in, "p.json");
  db = path_in (&in, "e.db");
  im = path_in (&in, "im.gguf");
  g_assert_no_errno (g_mkdir (sub, 0755));
  g_assert_no_errno (symlink (in.model, symlinked));
  g_assert_no_errno (link (in.model, hard));
  g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "F32", "--no-save", "--no-metrics",
                        "--out", st), ==, 0);
  g_assert_cmpint (run (NULL, "plan", in.model, "--preset", "Q4_K_M", "--save", plan), ==, 0);
  g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "Q8_0", "--db", db), ==, 0);
  g_assert_cmpint (run (NULL, "imatrix", in.model, "--calib", in.text, "--calib-chunks", "2",
                        "--out", im), ==, 0);
  sum_model = sha (in.model);
  sum_st = sha (st);
  sum_plan = sha (plan);
  sum_db = sha (db);
  sum_im = sha (im);
  sum_text = sha (in.text);

  /* exit 1: refused, 2: a usage error (plan --save wants .json) */
  g_assert_cmpint (run (&err, "quantize", in.model, "--default", "Q4_0", "--no-save", "--out", in.model), ==, 1);
  g_assert_nonnull (strstr (err, "refusing to overwrite an input"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "Q4_0", "--no-save", "--out", dotted), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", symlinked, "--default", "Q4_0", "--no-save", "--out", in.model), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "Q4_0", "--no-save", "--out", symlinked), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "Q4_0", "--no-save", "--out", hard), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", st, "--default", "Q8_0", "--no-save", "--out", st), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", in.model, "--imatrix", im, "--default", "Q4_K", "--no-save",
                        "--out", im), ==, 1);
  g_assert_cmpint (run (NULL, "imatrix", in.model, "--calib", in.text, "--out", in.model), ==, 1);
  g_assert_cmpint (run (NULL, "plan", in.model, "--preset", "Q4_K_M", "--save", in.model), ==, 2);
  g_assert_cmpint (run (NULL, "plan", in.model, "--plan", plan, "--save", plan), ==, 1);
  g_assert_cmpint (run (NULL, "experiments", "export", "--all", "--db", db, "--out", db), ==, 1);
  /* an output folder that does not exist: refused before the work */
  {
    g_autofree char *missing = g_build_filename (in.dir, "no", "such", "im.dat", NULL);
    g_assert_cmpint (run (&err, "imatrix", in.model, "--calib", in.text, "--out", missing), ==, 1);
    g_assert_nonnull (strstr (err, "does not exist"));
  }
  /* The window's chart export goes through the same check. */
  {
    const char *inputs[] = { in.model, db };
    g_autoptr(GError) error = NULL;
    g_assert_false (qb_file_check_output (symlinked, "Export", inputs, 2, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  }

  g_assert_cmpstr (sha (in.model), ==, sum_model);
  g_assert_cmpstr (sha (st), ==, sum_st);
  g_assert_cmpstr (sha (plan), ==, sum_plan);
  g_assert_cmpstr (sha (db), ==, sum_db);
  g_assert_cmpstr (sha (im), ==, sum_im);
  g_assert_cmpstr (sha (in.text), ==, sum_text);
  assert_no_temporaries (in.dir);
  inputs_clear (&in);
}

/* -- non-finite values × every format ---------------------------------------- */

/* NaN and infinities in one tensor, quantized to every format of the
 * registry (under the sanitizers in the ASan build): counted, metrics
 * undefined, never a crash or an over-read; the CLI and eval say so. */
static void
test_non_finite_every_format (void)
{
  Inputs in;
  const char *tensor = "blk.0.attn_q.weight";
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autofree float *importance = NULL;
  const QbTensor *t;
  guint index = 0, n_formats = 0;

  inputs_make (&in);
  qb_test_poison_tensor (in.model, tensor, 3, NAN);
  qb_test_poison_tensor (in.model, tensor, 70, INFINITY);
  qb_test_poison_tensor (in.model, tensor, 900, -INFINITY);
  model = qb_model_open (in.model, &error);
  g_assert_no_error (error);
  t = qb_model_find_tensor (model, tensor, &index);
  importance = g_new (float, t->ne[0]);
  for (gint64 j = 0; j < t->ne[0]; j++)
    importance[j] = 1.0f + (float) (j % 5);
  for (guint k = 0; k < qb_format_count (); k++)
    for (int imp = 0; imp < 2; imp++)
      {
        QbQuantizeSpec spec = { .format = qb_format_get (k), .importance = imp ? importance : NULL };
        g_autoptr(QbTensorResult) r = NULL;

        if (!qb_format_fits (spec.format, t->ne[0]))
          continue;
        r = qb_tensor_quantize (model, index, &spec, workers, NULL, NULL, NULL, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpint (r->n_nonfinite, ==, 3);
        if (!isnan (r->metrics.sqnr_db) || !isnan (r->metrics.rmse_rel))
          g_error ("%s: SQNR %g, RMSE %g for a tensor holding NaN", spec.format->name,
                   r->metrics.sqnr_db, r->metrics.rmse_rel);
        n_formats += imp == 0;
      }
  g_test_message ("%u formats", n_formats);
  g_assert_cmpuint (n_formats, ==, qb_format_count ());

  /* The command line: the count in --json, the error metrics null. */
  {
    g_autofree char *exe = qb_test_quantbench_path ();
    const char *args[] = { "quantize", in.model, "--default", "Q4_0", "--no-save", "--json", NULL };
    g_autoptr(JsonParser) parser = json_parser_new ();
    JsonArray *tensors;

    if (exe == NULL)
      return;
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &out, &err), ==, 0);
    g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
    tensors = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "tensors");
    for (guint i = 0; i < json_array_get_length (tensors); i++)
      {
        JsonObject *o = json_array_get_object_element (tensors, i);
        if (g_strcmp0 (json_object_get_string_member (o, "name"), tensor) != 0)
          continue;
        g_assert_cmpint (json_object_get_int_member (o, "n_nonfinite"), ==, 3);
        g_assert_true (json_object_get_null_member (o, "sqnr_db"));
      }
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (&err, "eval", in.model, "--text", in.text, "--ctx", "64", "--chunks", "1",
                          "--no-cache"), ==, 1);
    g_assert_nonnull (strstr (err, "not finite"));
  }
  inputs_clear (&in);
}

/* -- nested and huge JSON --------------------------------------------------- */

static char *
deep_json (const char *dir, const char *name, const char *prefix, int depth)
{
  g_autoptr(GString) s = g_string_new (prefix);
  char *path = g_build_filename (dir, name, NULL);

  for (int i = 0; i < depth; i++)
    g_string_append_c (s, '[');
  g_assert_true (g_file_set_contents (path, s->str, s->len, NULL));
  return path;
}

/* Nesting bombs reach no recursive parser: a plan, an import, a
 * tokenizer.json; a plan file larger than any plan is refused unread. */
static void
test_nested_json (void)
{
  Inputs in;
  g_autofree char *plan = NULL, *import = NULL, *tok = NULL, *huge = NULL, *db = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) t = NULL;
  int fd;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  plan = deep_json (in.dir, "deep-plan.json", "{\"version\":1,\"rules\":", 80000);
  import = deep_json (in.dir, "deep-import.json", "{\"format\":\"quantbench-experiments\",\"experiments\":", 100000);
  tok = deep_json (in.dir, "tokenizer.json", "{\"model\":", 100000);
  huge = path_in (&in, "huge.json");
  db = path_in (&in, "e.db");

  g_assert_cmpint (run (&err, "plan", in.model, "--plan", plan), ==, 1);
  g_assert_nonnull (strstr (err, "nested deeper"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&err, "experiments", "import", "--db", db, import), ==, 1);
  g_assert_nonnull (strstr (err, "nested deeper"));
  t = qb_tokenizer_new_from_hf_json (tok, &error);
  g_assert_null (t);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "nested deeper"));

  fd = g_open (huge, O_CREAT | O_WRONLY, 0644);
  g_assert_cmpint (fd, >=, 0);
  g_assert_no_errno (ftruncate (fd, (off_t) 17 << 20));
  close (fd);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&err, "plan", in.model, "--plan", huge), ==, 1);
  g_assert_nonnull (strstr (err, "more than"));
  inputs_clear (&in);
}

/* -- thread counts ------------------------------------------------------------ */

static QbExperiment *
only_experiment (const char *db)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = qb_store_open_readonly (db, &error);
  QbExperiment *e;

  g_assert_no_error (error);
  e = qb_store_get_experiment (store, 1, &error);
  g_assert_no_error (error);
  return e;
}

/* Absurd counts are a usage error; a process limit gives fewer threads,
 * never an abort, an experiment left running or a temporary file. */
static void
test_threads (void)
{
  Inputs in;
  g_autofree char *db = NULL, *out = NULL;
  const char *bad[] = { "2147483647", "100000", "-1" };

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  db = path_in (&in, "e.db");
  out = path_in (&in, "q.gguf");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "Q4_0", "--no-save", "--threads", bad[i]), ==, 2);
      g_assert_cmpint (run (NULL, "inspect", in.model, "--stats", "--threads", bad[i]), ==, 2);
      g_assert_cmpint (run (NULL, "eval", in.model, "--text", in.text, "--threads", bad[i]), ==, 2);
      g_assert_cmpint (run (NULL, "imatrix", in.model, "--calib", in.text, "--out", out,
                            "--threads", bad[i]), ==, 2);
    }
  {
    /* Without a limit the run has what it asked for, and says only that. */
    g_autofree char *json = NULL;
    g_autoptr(JsonObject) o = NULL;

    g_assert_cmpint (run_json (NULL, &json, "quantize", in.model, "--default", "Q4_0", "--no-save",
                               "--json", "--threads", "3"), ==, 0);
    o = parse_object (json);
    g_assert_cmpint (json_object_get_int_member (o, "threads"), ==, 3);
    g_assert_false (json_object_has_member (o, "threads_requested"));
  }
  if (!is_root ("process limits: not root (RLIMIT_NPROC is tested as another user)"))
    {
      inputs_clear (&in);
      return;
    }
  {
    /* 64 threads under a limit of 30 processes for the user. */
    Child limited = { TRUE, 30 };
    g_autoptr(QbExperiment) e = NULL;
    g_autofree char *json = NULL;
    g_autoptr(JsonObject) o = NULL;

    /* --json says how many threads the run had, and what was asked. */
    g_assert_cmpint (run_json (&limited, &json, "quantize", in.model, "--default", "Q4_0",
                               "--no-save", "--json", "--threads", "64"), ==, 0);
    o = parse_object (json);
    g_test_message ("under RLIMIT_NPROC 30: %" G_GINT64_FORMAT " threads of %" G_GINT64_FORMAT,
                    json_object_get_int_member (o, "threads"),
                    json_object_get_int_member_with_default (o, "threads_requested", -1));
    g_assert_cmpint (json_object_get_int_member (o, "threads"), >=, 1);
    g_assert_cmpint (json_object_get_int_member (o, "threads"), <=, 30);
    g_assert_cmpint (json_object_get_int_member (o, "threads_requested"), ==, 64);

    g_assert_cmpint (run_as (&limited, NULL, "quantize", in.model, "--default", "Q4_0", "--db", db,
                             "--out", out, "--threads", "64", NULL), ==, 0);
    e = only_experiment (db);
    g_assert_cmpint (e->status, ==, QB_EXPERIMENT_DONE);
    g_assert_cmpint (run_as (&limited, NULL, "inspect", in.model, "--stats", "--threads", "64", NULL), ==, 0);
    g_assert_cmpint (run_as (&limited, NULL, "eval", in.model, "--text", in.text, "--ctx", "64",
                             "--chunks", "1", "--no-cache", "--threads", "64", NULL), ==, 0);
    assert_no_temporaries (in.dir);
  }
  inputs_clear (&in);
}

/* -- FIFO, folder and unreadable paths ----------------------------------------- */

/* Never a hang in open(), never a read of a folder: a clean error. */
static void
test_paths (void)
{
  Inputs in;
  g_autofree char *fifo = NULL, *folder = NULL, *secret = NULL, *out = NULL;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  fifo = path_in (&in, "fifo.gguf");
  folder = path_in (&in, "folder");
  out = path_in (&in, "o.dat");
  g_assert_no_errno (mkfifo (fifo, 0666));
  g_assert_no_errno (g_mkdir (folder, 0777));

  g_assert_cmpint (run (NULL, "inspect", fifo), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", fifo, "--default", "Q4_0", "--no-save"), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", folder, "--default", "Q4_0", "--no-save"), ==, 1);
  g_assert_cmpint (run (NULL, "eval", in.model, "--text", fifo, "--chunks", "1", "--no-cache"), ==, 1);
  g_assert_cmpint (run (NULL, "eval", in.model, "--text", folder, "--chunks", "1", "--no-cache"), ==, 1);
  g_assert_cmpint (run (NULL, "imatrix", in.model, "--calib", fifo, "--out", out), ==, 1);
  g_assert_cmpint (run (NULL, "plan", in.model, "--plan", fifo), ==, 1);
  g_assert_cmpint (run (NULL, "quantize", in.model, "--imatrix", fifo, "--no-save"), ==, 1);
  g_assert_cmpint (run (NULL, "experiments", "import", "--db", out, fifo), ==, 1);

  if (is_root ("unreadable files: not root (read as another user)"))
    {
      Child nobody = { TRUE, 0 };
      secret = path_in (&in, "secret.gguf");
      g_assert_true (g_file_set_contents (secret, "GGUF", 4, NULL));
      g_assert_no_errno (chmod (secret, 0));
      g_assert_cmpint (run_as (&nobody, NULL, "inspect", secret, NULL), ==, 1);
      g_assert_cmpint (run_as (&nobody, NULL, "eval", in.model, "--text", secret, "--no-cache", NULL), ==, 1);
    }
  inputs_clear (&in);
}

/* -- full and read-only database folders -------------------------------------- */

static gboolean
mount_tmpfs (const char *dir, const char *options)
{
  if (mount ("tmpfs", dir, "tmpfs", 0, options) == 0)
    return TRUE;
  g_test_skip_printf ("cannot mount a tmpfs (%s)", g_strerror (errno));
  return FALSE;
}

/* A full disk: the run fails (exit 1, experiment failed), reading still
 * works, and nothing calls the store damaged. */
static void
test_full_disk (void)
{
  Inputs in;
  g_autofree char *mnt = NULL, *db = NULL, *err = NULL;
  g_autoptr(QbExperiment) e = NULL;

  if (qb_test_quantbench_path () == NULL || !is_root ("full disk: not root (needs a small tmpfs)"))
    return;
  inputs_make (&in);
  mnt = path_in (&in, "full");
  db = g_build_filename (mnt, "e.db", NULL);
  g_assert_no_errno (g_mkdir (mnt, 0777));
  /* Room for the schema and a begun experiment, not for the run: the
   * size grows with the schema (version 5's study tables took 400k to 480k, version 8's
   * per-expert study costs to 488k, version 9's per-expert metrics to 496k, version
   * 10's per-expert moments to 504k). */
  if (!mount_tmpfs (mnt, "size=504k"))
    return;
  g_assert_cmpint (run (&err, "quantize", in.model, "--default", "Q4_0", "--db", db), ==, 1);
  g_assert_nonnull (strstr (err, "full"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&err, "experiments", "list", "--db", db), ==, 0);
  g_assert_null (strstr (err, "damaged"));
  e = only_experiment (db);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_FAILED);
  g_assert_cmpuint (e->n_tensors_done, <, e->n_tensors);
  g_clear_pointer (&e, qb_experiment_free);
  g_assert_no_errno (umount (mnt));
  inputs_clear (&in);
}

/* A read-only folder: reading commands work read-only, writing ones name
 * the folder, a mistyped --db creates nothing. */
static void
test_read_only (void)
{
  Inputs in;
  g_autofree char *mnt = NULL, *db = NULL, *err = NULL, *typo = NULL, *sum = NULL;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  typo = path_in (&in, "typo.db");
  g_assert_cmpint (run (NULL, "experiments", "list", "--db", typo), ==, 1);
  g_assert_false (g_file_test (typo, G_FILE_TEST_EXISTS));
  if (!is_root ("read-only folder: not root (needs a tmpfs mounted read-only)"))
    return;
  mnt = path_in (&in, "ro");
  db = g_build_filename (mnt, "e.db", NULL);
  g_assert_no_errno (g_mkdir (mnt, 0777));
  if (!mount_tmpfs (mnt, "size=4m"))
    return;
  g_assert_cmpint (run (NULL, "quantize", in.model, "--default", "Q4_0", "--db", db), ==, 0);
  sum = sha (db);
  g_assert_no_errno (mount ("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=4m"));
  g_assert_cmpint (run (&err, "experiments", "list", "--db", db), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&err, "experiments", "show", "1", "--db", db), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (&err, "quantize", in.model, "--default", "Q4_0", "--db", db), ==, 1);
  g_assert_null (strstr (err, "damaged"));
  g_assert_nonnull (strstr (err, "cannot write"));
  g_assert_cmpstr (sha (db), ==, sum);
  g_assert_no_errno (umount (mnt));
  inputs_clear (&in);
}

/* -- signals during --out ------------------------------------------------------- */

static GPid
spawn_quantize (const char *model, const char *out, const char *db)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  const char *argv[] = { exe, "quantize", model, "--default", "Q4_K", "--db", db, "--out", out, NULL };
  g_autoptr(GError) error = NULL;
  GPid pid = 0;

  g_spawn_async (NULL, (char **) argv, NULL,
                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                 NULL, NULL, &pid, &error);
  g_assert_no_error (error);
  return pid;
}

static gboolean
has_temporary (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (strstr (name, ".tmp-") != NULL)
      return TRUE;
  return FALSE;
}

static guint
count_entries (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

/* SIGINT, SIGTERM and SIGHUP while the output is being written: exit 130,
 * no temporary file, the experiment cancelled.  SIGKILL leaves one, which
 * the next run removes and names. */
static void
test_signals (void)
{
  Inputs in;
  const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGKILL };
  g_autofree char *big = NULL, *out = NULL, *db = NULL, *err = NULL;
  QbDemoModelSpec spec;
  g_autoptr(GError) error = NULL;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  big = path_in (&in, "big.gguf");
  out = path_in (&in, "q.gguf");
  db = path_in (&in, "e.db");
  qb_demo_model_spec_init (&spec);
  spec.n_params = 40 * 1000 * 1000;   /* long enough to catch mid-write */
  g_assert_true (qb_demo_model_write (&spec, big, NULL, NULL, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (sigs); i++)
    {
      GPid pid = spawn_quantize (big, out, db);
      int status = 0;

      for (int k = 0; k < 2000 && !has_temporary (in.dir); k++)
        g_usleep (5000);
      if (!has_temporary (in.dir))
        {
          waitpid (pid, &status, 0);
          g_test_incomplete ("the run ended before its temporary file was seen");
          continue;
        }
      kill (pid, sigs[i]);
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      g_test_message ("signal %d: status %d", sigs[i], status);
      if (sigs[i] == SIGKILL)
        {
          g_assert_true (WIFSIGNALED (status));
          g_assert_true (has_temporary (in.dir));
          /* The next run removes what the killed one left, and says so. */
          g_assert_cmpint (run (&err, "quantize", in.model, "--default", "Q4_0", "--no-save",
                                "--out", out), ==, 0);
          g_assert_nonnull (strstr (err, "left by an interrupted run"));
        }
      else
        {
          g_assert_true (WIFEXITED (status));
          g_assert_cmpint (WEXITSTATUS (status), ==, 130);
        }
      assert_no_temporaries (in.dir);
    }
  {
    g_autoptr(GError) e2 = NULL;
    g_autoptr(QbStore) store = qb_store_open (db, &e2);
    g_autoptr(GPtrArray) list = NULL;
    QbExperimentQuery q = { 0 };

    g_assert_no_error (e2);
    list = qb_store_list_experiments (store, &q, &e2);
    g_assert_no_error (e2);
    /* cancelled by the signals; the killed one is marked interrupted */
    for (guint i = 0; i < list->len; i++)
      {
        QbExperiment *e = g_ptr_array_index (list, i);
        g_assert_cmpint (e->status, !=, QB_EXPERIMENT_RUNNING);
        g_assert_cmpint (e->status, !=, QB_EXPERIMENT_DONE);
      }
  }
  inputs_clear (&in);
}

/* TRUE once process pid handles sig (its SigCgt mask in /proc): the
 * command has installed its handlers and started its work. */
static gboolean
handles_signal (GPid pid, int sig)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents (path, &status, NULL, NULL)
      || (line = strstr (status, "\nSigCgt:")) == NULL)
    return FALSE;
  return (g_ascii_strtoull (line + 8, NULL, 16) >> (sig - 1)) & 1;
}

static GPid
spawn (const char * const *args)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  GPid pid = 0;

  g_ptr_array_add (argv, exe);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_async (NULL, (char **) argv->pdata, NULL,
                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                 NULL, NULL, &pid, &error);
  g_assert_no_error (error);
  return pid;
}

/* Sends sig once the command handles it and `ready` (may be NULL) says
 * its work is under way; the exit status, or -1 when the command ended
 * before (the case is then incomplete, not passed). */
static int
signal_when_ready (GPid pid, int sig, gboolean (*ready) (const char *), const char *dir)
{
  int status = 0;

  for (int k = 0; k < 4000 && !(handles_signal (pid, sig) && (ready == NULL || ready (dir))); k++)
    g_usleep (5000);
  if (!handles_signal (pid, sig) || (ready != NULL && !ready (dir)))
    {
      waitpid (pid, &status, 0);
      g_test_incomplete ("the command ended before it could be signalled");
      return -1;
    }
  if (ready == NULL)
    g_usleep (300 * 1000);   /* into the work: the model is read, the text tokenized */
  kill (pid, sig);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_test_message ("signal %d: status %d", sig, status);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

/* eval and imatrix --out stop as quantize does: SIGINT, SIGTERM and SIGHUP
 * cancel the work, exit 130, and leave no temporary file — the float
 * model's log-probability cache being written is removed, no importance
 * matrix is written — and nothing is stored with the experiment. */
static void
test_signals_eval_imatrix (void)
{
  Inputs in;
  const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
  g_autofree char *big = NULL, *cache = NULL, *im = NULL, *db = NULL, *id = NULL;
  QbDemoModelSpec spec;
  g_autoptr(GError) error = NULL;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  big = path_in (&in, "big.gguf");
  cache = path_in (&in, "cache");
  im = path_in (&in, "im.dat");
  db = path_in (&in, "e.db");
  qb_demo_model_spec_init (&spec);
  spec.n_params = 40 * 1000 * 1000;   /* seconds of work, to be caught in */
  g_assert_true (qb_demo_model_write (&spec, big, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_no_errno (g_mkdir (cache, 0700));
  g_assert_cmpint (run (NULL, "quantize", big, "--default", "Q8_0", "--db", db), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (sigs); i++)
    {
      /* --kld writes the float model's cache as it goes: signalled once
       * its temporary file is there. */
      const char *eval[] = { "eval", big, "--text", in.text, "--ctx", "64", "--kld",
                             "--cache-dir", cache, "--threads", "2", NULL };
      const char *eval_experiment[] = { "eval", big, "--text", in.text, "--ctx", "64", "--kld",
                                        "--cache-dir", cache, "--db", db, "--experiment", "1",
                                        "--threads", "2", NULL };
      const char *imatrix[] = { "imatrix", big, "--calib", in.text, "--out", im, "--threads", "2",
                                "--calib-no-cache", NULL };
      int status;

      status = signal_when_ready (spawn (i == 1 ? eval_experiment : eval), sigs[i], has_temporary,
                                  cache);
      if (status >= 0)
        g_assert_cmpint (status, ==, 130);
      assert_no_temporaries (cache);
      g_assert_cmpuint (count_entries (cache), ==, 0);

      status = signal_when_ready (spawn (imatrix), sigs[i], NULL, NULL);
      if (status >= 0)
        g_assert_cmpint (status, ==, 130);
      assert_no_temporaries (in.dir);
      g_assert_false (g_file_test (im, G_FILE_TEST_EXISTS));
    }
  {
    g_autoptr(QbExperiment) e = only_experiment (db);
    g_assert_null (e->evaluation);   /* the signalled evaluation stored nothing */
  }
  inputs_clear (&in);
}

/* Temporaries in the naming of earlier versions (OUT.tmp-XXXXXX, no PID)
 * are named on the next run to that output; removed only when provably
 * left over (this user's, older than the run, open nowhere — as root,
 * where every process's open files can be seen), kept otherwise. */
static char *
make_file (const Inputs *in, const char *name, gint64 age_seconds)
{
  char *path = path_in (in, name);
  struct timespec times[2];

  g_assert_true (g_file_set_contents (path, "partial output", -1, NULL));
  clock_gettime (CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= age_seconds;
  times[1] = times[0];
  g_assert_no_errno (utimensat (AT_FDCWD, path, times, 0));
  return path;
}

static void
test_old_temporaries (void)
{
  Inputs in;
  g_autofree char *out = NULL, *err = NULL, *stale = NULL, *busy = NULL, *fresh = NULL;
  g_autofree char *foreign = NULL, *other = NULL;
  gboolean root = geteuid () == 0;
  int fd;

  if (qb_test_quantbench_path () == NULL)
    return;
  inputs_make (&in);
  out = path_in (&in, "q.gguf");
  stale = make_file (&in, "q.gguf.tmp-Ab12Cd", 3600);
  busy = make_file (&in, "q.gguf.tmp-Xy34Zw", 3600);     /* held open below */
  fresh = make_file (&in, "q.gguf.tmp-Fr35h1", -3600);   /* newer than the run */
  other = make_file (&in, "q.gguf.tmp-notes", 3600);     /* not the pattern: a user's file */
  if (root)
    {
      foreign = make_file (&in, "q.gguf.tmp-N0b0dy", 3600);
      g_assert_no_errno (chown (foreign, NOBODY, NOBODY));
    }
  fd = open (busy, O_RDONLY);
  g_assert_cmpint (fd, >=, 0);

  g_assert_cmpint (run (&err, "quantize", in.model, "--default", "Q4_0", "--no-save", "--out", out),
                   ==, 0);
  close (fd);
  /* Every one is named; the user's own file is not. */
  g_assert_nonnull (strstr (err, stale));
  g_assert_nonnull (strstr (err, busy));
  g_assert_nonnull (strstr (err, fresh));
  g_assert_null (strstr (err, other));
  if (root)
    {
      g_assert_nonnull (strstr (err, foreign));
      g_assert_true (g_file_test (foreign, G_FILE_TEST_EXISTS));
      /* Provably left over: removed, and said so. */
      g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
      g_assert_nonnull (strstr (err, "removed"));
    }
  else
    g_test_message ("not root: other users' open files cannot be seen, so nothing is removed");
  g_assert_true (g_file_test (busy, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (fresh, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (out, G_FILE_TEST_IS_REGULAR));
  inputs_clear (&in);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/adversarial/output-onto-input", test_output_onto_input);
  g_test_add_func ("/adversarial/non-finite-every-format", test_non_finite_every_format);
  g_test_add_func ("/adversarial/nested-json", test_nested_json);
  g_test_add_func ("/adversarial/threads", test_threads);
  g_test_add_func ("/adversarial/paths", test_paths);
  g_test_add_func ("/adversarial/full-disk", test_full_disk);
  g_test_add_func ("/adversarial/read-only", test_read_only);
  g_test_add_func ("/adversarial/signals", test_signals);
  g_test_add_func ("/adversarial/signals-eval-imatrix", test_signals_eval_imatrix);
  g_test_add_func ("/adversarial/old-temporaries", test_old_temporaries);
  return g_test_run ();
}
