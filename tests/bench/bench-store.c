/* SPDX-License-Identifier: MIT */
/* bench-store.c — how fast the experiment store writes a run and lists runs.
 *
 * Run:   meson test -C build --benchmark --suite store -v
 *   or:  build/tests/bench/bench-store [FOLDER]      (FOLDER: where the databases go; default /tmp)
 *
 * 1. Storing a run: one experiment of a 300-tensor model with full data
 *    per tensor — three 512-bin histograms and 4096 channel ranges — as a
 *    run stores it: begin, one transaction per tensor, finish.  Against two
 *    baselines measured in the same run on the same file system: the same
 *    number of write transactions of one small row each (SQLite's commit
 *    cost with the store's settings), and the same bytes written to a
 *    plain file in 300 writes and one fsync.
 * 2. Listing 10,000 experiments (all columns the experiments page shows,
 *    tags and the latest evaluation), newest first and sorted by SQNR.
 *    Against stepping a bare `SELECT * FROM experiment` over the same rows.
 * Also timed: opening that database (checks included), reading one run's
 * 300 tensors, loading all their histograms, exporting it as JSON.
 * Each figure is the median of several repetitions, as wall time and, in
 * parentheses, the process's CPU time (user + system) — the machine's load
 * average is printed first, since a loaded machine stretches wall time.
 */
#include <fcntl.h>
#include <time.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "qb-store-private.h"
#include "qb-test-store.h"

#define N_TENSORS     300
#define N_CHANNELS    4096
#define N_EXPERIMENTS 10000
#define REPEATS       5

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v, guint n)
{
  qsort (v, n, sizeof *v, compare_doubles);
  return v[n / 2];
}

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

static double
cpu_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wall and CPU seconds of a stretch of work. */
typedef struct {
  double wall;
  double cpu;
} Span;

static Span
span_start (void)
{
  return (Span) { now (), cpu_now () };
}

static Span
span_end (Span start)
{
  return (Span) { now () - start.wall, cpu_now () - start.cpu };
}

static double
median_wall (const Span *spans, guint n)
{
  double wall[REPEATS];

  for (guint i = 0; i < n; i++)
    wall[i] = spans[i].wall;
  return median (wall, n);
}

static char *
span_text (Span *spans, guint n)
{
  double wall[REPEATS], cpu[REPEATS];

  for (guint i = 0; i < n; i++)
    wall[i] = spans[i].wall, cpu[i] = spans[i].cpu;
  return g_strdup_printf ("%8.1f ms (cpu %6.1f)", median (wall, n) * 1e3, median (cpu, n) * 1e3);
}

static void
check (gboolean ok, GError *error)
{
  if (!ok)
    g_error ("%s", error ? error->message : "failed");
}

/* -- storing a run ------------------------------------------------------------------ */

static Span
store_run (QbStore *store, const QbModelRecord *model, GPtrArray *results)
{
  g_autoptr(GError) error = NULL;
  QbExperimentSpec spec = { .name = "bench", .plan_json = "{\"default_format\":\"Q4_K\"}",
                            .threads = 8, .n_tensors = N_TENSORS };
  Span t = span_start ();
  gint64 id = qb_store_begin_experiment (store, model, &spec, &error);

  check (id > 0, error);
  for (guint i = 0; i < results->len; i++)
    check (qb_store_add_tensor_result (store, id, i, 1 << 22, results->pdata[i], &error), error);
  check (qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 1, NULL, &error), error);
  return span_end (t);
}

/* The floor: as many write transactions, each changing one small row. */
static Span
empty_transactions (QbStore *store, guint n)
{
  Span t;

  sqlite3_exec (store->db, "CREATE TABLE IF NOT EXISTS bench_counter (n INTEGER); "
                           "INSERT INTO bench_counter VALUES (0)", NULL, NULL, NULL);
  t = span_start ();
  for (guint i = 0; i < n; i++)
    if (sqlite3_exec (store->db, "BEGIN IMMEDIATE; UPDATE bench_counter SET n = n + 1; COMMIT",
                      NULL, NULL, NULL) != SQLITE_OK)
      g_error ("%s", sqlite3_errmsg (store->db));
  return span_end (t);
}

/* The same bytes into a plain file: one write per tensor, one fsync. */
static Span
plain_file (const char *dir, gsize bytes_per_tensor)
{
  g_autofree char *path = g_build_filename (dir, "plain.bin", NULL);
  g_autofree guint8 *buf = g_malloc0 (bytes_per_tensor);
  Span t = span_start ();
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

  for (guint i = 0; i < N_TENSORS; i++)
    if (write (fd, buf, bytes_per_tensor) != (gssize) bytes_per_tensor)
      g_error ("write failed");
  fsync (fd);
  close (fd);
  t = span_end (t);
  g_unlink (path);
  return t;
}

/* Bytes a tensor puts in the database: its BLOBs and about 200 for the row. */
static gsize
encoded_bytes (const QbTensorResult *r)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();

  qb_histogram_encode (r->hist_original, buf);
  qb_histogram_encode (r->hist_quantized, buf);
  qb_histogram_encode (r->hist_error, buf);
  qb_channel_ranges_encode (r->n_channels, r->channel_min, r->channel_max, buf);
  return buf->len + 200;
}

static void
bench_run (const char *dir, const QbModelRecord *model)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, "run.db", NULL);
  g_autofree char *json = g_build_filename (dir, "run.json", NULL);
  g_autofree char *copy = g_build_filename (dir, "imported.db", NULL);
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_tensor_result_free);
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autoptr(QbStore) other = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  g_autofree char *a = NULL, *b = NULL, *c = NULL;
  Span t_store[REPEATS], t_empty[REPEATS], t_plain[REPEATS], t;
  const char *roles[] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                          "ffn_down", "attn_norm", "ffn_norm", "other" };
  gsize per_tensor;
  gint64 id;
  GStatBuf st;

  check (store != NULL, error);
  for (guint i = 0; i < N_TENSORS; i++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.%s.weight", i / 10, roles[i % 10]);
      g_ptr_array_add (results, qb_test_tensor_result (name, i, TRUE, N_CHANNELS));
    }
  per_tensor = encoded_bytes (results->pdata[0]);
  for (guint r = 0; r < REPEATS; r++)
    {
      t_store[r] = store_run (store, model, results);
      t_empty[r] = empty_transactions (store, N_TENSORS + 2);
      t_plain[r] = plain_file (dir, per_tensor);
    }
  g_stat (path, &st);
  a = span_text (t_store, REPEATS);
  b = span_text (t_empty, REPEATS);
  c = span_text (t_plain, REPEATS);
  printf ("Store a %u-tensor run (3 x %u-bin histograms + %u channel ranges a tensor, %.1f KiB):\n",
          N_TENSORS, QB_HISTOGRAM_BINS, N_CHANNELS, per_tensor / 1024.0);
  printf ("  store: begin, %u tensor transactions, finish  %s\n", N_TENSORS, a);
  printf ("  baseline: %u one-row write transactions       %s   store/baseline %.1fx\n",
          N_TENSORS + 2, b, median_wall (t_store, REPEATS) / median_wall (t_empty, REPEATS));
  printf ("  baseline: the same bytes to a file, one fsync  %s   store/baseline %.1fx\n",
          c, median_wall (t_store, REPEATS) / median_wall (t_plain, REPEATS));
  printf ("  database after %u runs: %.1f MiB\n\n", REPEATS, st.st_size / 1048576.0);

  /* The last run, read back. */
  {
    g_autoptr(GPtrArray) list = NULL;
    QbExperimentQuery q;

    qb_experiment_query_init (&q);
    q.limit = 1;
    list = qb_store_list_experiments (store, &q, &error);
    check (list != NULL && list->len == 1, error);
    id = ((QbExperiment *) list->pdata[0])->id;
  }
  printf ("Read it back:\n");
  t = span_start ();
  tensors = qb_store_get_tensors (store, id, &error);
  t = span_end (t);
  check (tensors != NULL && tensors->len == N_TENSORS, error);
  g_free (a);
  printf ("  its %u tensors, no histograms                  %s\n", N_TENSORS, a = span_text (&t, 1));
  t = span_start ();
  for (guint i = 0; i < tensors->len; i++)
    check (qb_store_load_tensor_data (store, tensors->pdata[i], &error), error);
  t = span_end (t);
  g_free (a);
  printf ("  every histogram and channel range              %s\n", a = span_text (&t, 1));
  t = span_start ();
  check (qb_store_export_to_file (store, &id, 1, QB_STORE_EXPORT_JSON, json, NULL, &error), error);
  t = span_end (t);
  g_stat (json, &st);
  g_free (a);
  printf ("  export as JSON (%.1f MiB)                       %s\n", st.st_size / 1048576.0, a = span_text (&t, 1));
  other = qb_store_open (copy, &error);
  check (other != NULL, error);
  t = span_start ();
  check (qb_store_import_file (other, json, NULL, NULL, &error), error);
  t = span_end (t);
  g_free (a);
  printf ("  import that JSON into another database         %s\n", a = span_text (&t, 1));
  g_clear_pointer (&store, qb_store_unref);
  g_stat (path, &st);
  t = span_start ();
  store = qb_store_open (path, &error);
  t = span_end (t);
  check (store != NULL, error);
  g_free (a);
  printf ("  open the %.1f MiB database (checks, quick_check) %s\n\n", st.st_size / 1048576.0,
          a = span_text (&t, 1));
}

/* -- listing ----------------------------------------------------------------------------- */

static void
fill (QbStore *store, const QbModelRecord *model)
{
  g_autoptr(GError) error = NULL;
  const char *tags[] = { "nightly", NULL };
  const char *formats[] = { "Q4_K", "Q5_K", "Q8_0", "Q3_K", "Q2_K" };

  for (guint k = 0; k < N_EXPERIMENTS; k++)
    {
      g_autofree char *name = g_strdup_printf ("sweep %u: %s", k, formats[k % 5]);
      g_autoptr(QbTensorResult) r = qb_test_tensor_result ("blk.0.attn_q.weight", k, FALSE, 0);
      QbExperimentSpec spec = { .name = name, .plan_json = "{\"default_format\":\"Q4_K\"}",
                                .threads = 8, .n_tensors = 1, .tags = k % 3 ? NULL : tags };
      gint64 id = qb_store_begin_experiment (store, model, &spec, &error);

      check (id > 0, error);
      check (qb_store_add_tensor_result (store, id, 0, r->n_params * 4, r, &error), error);
      check (qb_store_finish_experiment (store, id, QB_EXPERIMENT_DONE, 1, NULL, &error), error);
      if (k % 4 == 0)
        {
          g_autoptr(QbEvaluation) ev = qb_evaluation_new ();
          ev->text_hash = g_strdup ("5fc1fb01");
          ev->perplexity = 8 + (k % 97) / 10.0;
          ev->kld_mean = 0.001 * (k % 89);
          check (qb_store_set_evaluation (store, id, ev, NULL, &error), error);
        }
    }
}

static Span
list_once (QbStore *store, QbExperimentSort sort)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  QbExperimentQuery q;
  Span t;

  qb_experiment_query_init (&q);
  q.sort = sort;
  t = span_start ();
  list = qb_store_list_experiments (store, &q, &error);
  t = span_end (t);
  check (list != NULL && list->len == N_EXPERIMENTS, error);
  return t;
}

/* The floor: every column of every experiment row, stepped through. */
static Span
raw_select (QbStore *store)
{
  sqlite3_stmt *stmt = NULL;
  Span t = span_start ();
  guint n = 0;

  sqlite3_prepare_v2 (store->db, "SELECT * FROM experiment", -1, &stmt, NULL);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    {
      for (int c = 0; c < sqlite3_column_count (stmt); c++)
        (void) sqlite3_column_text (stmt, c);
      n++;
    }
  sqlite3_finalize (stmt);
  t = span_end (t);
  if (n != N_EXPERIMENTS)
    g_error ("%u rows", n);
  return t;
}

static void
bench_list (const char *dir, const QbModelRecord *model)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, "list.db", NULL);
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  Span t_list[REPEATS], t_sqnr[REPEATS], t_raw[REPEATS], t_open[REPEATS], t;
  GStatBuf st;

  check (store != NULL, error);
  t = span_start ();
  fill (store, model);
  t = span_end (t);
  printf ("List %u experiments (stored one by one through the API in %.1f s):\n",
          N_EXPERIMENTS, t.wall);
  for (guint r = 0; r < REPEATS; r++)
    {
      t_list[r] = list_once (store, QB_SORT_CREATED);
      t_sqnr[r] = list_once (store, QB_SORT_SQNR);
      t_raw[r] = raw_select (store);
    }
  g_clear_pointer (&store, qb_store_unref);
  for (guint r = 0; r < REPEATS; r++)
    {
      t_open[r] = span_start ();
      store = qb_store_open (path, &error);
      t_open[r] = span_end (t_open[r]);
      check (store != NULL, error);
      g_clear_pointer (&store, qb_store_unref);
    }
  g_stat (path, &st);
  printf ("  list, newest first                             %s\n", a = span_text (t_list, REPEATS));
  printf ("  list, sorted by SQNR                           %s\n", b = span_text (t_sqnr, REPEATS));
  printf ("  baseline: bare SELECT * FROM experiment        %s   list/baseline %.1fx\n",
          c = span_text (t_raw, REPEATS), median_wall (t_list, REPEATS) / median_wall (t_raw, REPEATS));
  printf ("  open it (%.1f MiB; checks, quick_check)          %s\n",
          st.st_size / 1048576.0, d = span_text (t_open, REPEATS));
}

static void
remove_folder (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  /* Only what this program made: the folder is its own. */
  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  const char *base = argc > 1 ? argv[1] : g_get_tmp_dir ();
  g_autofree char *dir = g_build_filename (base, "qb-bench-store-XXXXXX", NULL);
  g_autoptr(QbModelRecord) model = qb_test_model_record ("be4c4be4c4", "bench-300");
  g_autofree char *load = NULL;

  if (g_mkdtemp (dir) == NULL)
    g_error ("cannot make a folder under %s", base);
  g_file_get_contents ("/proc/loadavg", &load, NULL, NULL);
  printf ("Experiment store benchmark; databases in %s; load average %s\n",
          dir, load ? g_strstrip (load) : "unknown");
  bench_run (dir, model);
  bench_list (dir, model);
  remove_folder (dir);
  return 0;
}
