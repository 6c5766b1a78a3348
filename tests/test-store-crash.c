/* SPDX-License-Identifier: MIT */
/* test-store-crash.c — a process killed with SIGKILL while it writes an
 * experiment leaves a sound database holding every tensor it committed,
 * and the experiment is marked interrupted the next time the database
 * opens. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qb-store-private.h"
#include "qb-test-store.h"
#include "qb-test-util.h"

#define MAX_TENSORS 100000

/* The child: stores tensors as fast as it can, and after each commit
 * tells the parent its number through the pipe.  It never stops by
 * itself before being killed (MAX_TENSORS is far away). */
static void G_GNUC_NORETURN
child_writer (const char *path, int fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = qb_store_open (path, &error);
  g_autoptr(QbModelRecord) model = qb_test_model_record ("c4a54c4a54", "m");
  QbExperimentSpec spec = { .name = "killed", .plan_json = "{}", .n_tensors = MAX_TENSORS };
  gint64 id;

  if (store == NULL || (id = qb_store_begin_experiment (store, model, &spec, &error)) == 0)
    _exit (3);
  if (write (fd, &id, sizeof id) != sizeof id)
    _exit (4);
  for (guint32 i = 0; i < MAX_TENSORS; i++)
    {
      g_autofree char *name = g_strdup_printf ("tensor.%u", i);
      g_autoptr(QbTensorResult) r = qb_test_tensor_result (name, i, TRUE, 128);

      if (!qb_store_add_tensor_result (store, id, i, 0, r, &error))
        _exit (5);
      if (write (fd, &i, sizeof i) != sizeof i)
        _exit (6);
    }
  _exit (7);
}

static gboolean
read_all (int fd, void *buf, gsize len)
{
  gsize got = 0;

  while (got < len)
    {
      gssize n = read (fd, (char *) buf + got, len - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      got += n;
    }
  return TRUE;
}

static void
kill_while_writing (guint kill_after)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "crash.db", NULL);
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) e = NULL;
  g_autoptr(GPtrArray) tensors = NULL;
  g_autoptr(GHashTable) reported = g_hash_table_new (NULL, NULL);
  sqlite3_stmt *stmt = NULL;
  int fds[2];
  gint64 id = 0;
  guint32 n;
  guint last = 0;
  pid_t child;
  int status;

  g_assert_cmpint (pipe (fds), ==, 0);
  child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      close (fds[0]);
      child_writer (path, fds[1]);
    }
  close (fds[1]);
  g_assert_true (read_all (fds[0], &id, sizeof id));
  /* Kill it in the middle of its stream of transactions. */
  while (g_hash_table_size (reported) < kill_after && read_all (fds[0], &n, sizeof n))
    g_hash_table_add (reported, GUINT_TO_POINTER (n + 1));
  g_assert_cmpint (kill (child, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  /* Commits it reported before dying are still in the pipe. */
  while (read_all (fds[0], &n, sizeof n))
    g_hash_table_add (reported, GUINT_TO_POINTER (n + 1));
  close (fds[0]);
  g_assert_cmpuint (g_hash_table_size (reported), >=, kill_after);

  store = qb_store_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_prepare_v2 (store->db, "PRAGMA integrity_check", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (stmt, 0), ==, "ok");
  sqlite3_finalize (stmt);

  e = qb_store_get_experiment (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_INTERRUPTED);
  tensors = qb_store_get_tensors (store, id, &error);
  g_assert_no_error (error);
  /* Every reported commit is there; at most one more (committed, killed
   * before it could report), and nothing else. */
  g_assert_cmpuint (tensors->len, >=, g_hash_table_size (reported));
  g_assert_cmpuint (tensors->len, <=, g_hash_table_size (reported) + 1);
  g_assert_cmpuint (e->n_tensors_done, ==, tensors->len);
  for (guint i = 0; i < tensors->len; i++)
    {
      QbStoredTensor *t = g_ptr_array_index (tensors, i);
      g_autofree char *name = g_strdup_printf ("tensor.%u", i);
      g_autoptr(QbTensorResult) expected = qb_test_tensor_result (name, i, TRUE, 128);

      g_assert_cmpuint (t->position, ==, i);
      g_assert_true (i == tensors->len - 1 || g_hash_table_contains (reported, GUINT_TO_POINTER (i + 1)));
      g_assert_true (qb_store_load_tensor_data (store, t, &error));
      qb_test_assert_same_result (t->result, expected);
      last = i;
    }
  g_assert_cmpint (e->totals.n_params, >, 0);
  g_test_message ("killed after %u reported commits; %u tensors stored", g_hash_table_size (reported),
                  last + 1);
}

static void
test_kill (void)
{
  /* Three kills at different moments of the stream. */
  kill_while_writing (5);
  kill_while_writing (23);
  kill_while_writing (61);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/crash/sigkill", test_kill);
  return g_test_run ();
}
