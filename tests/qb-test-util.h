/* SPDX-License-Identifier: MIT */
/* qb-test-util.h — helpers shared by the test programs. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Path of a file under ../shared (QB_SHARED_DIR), or NULL after calling
 * g_test_skip() with a message when it is absent.  Free with g_free. */
char   *qb_test_shared_path (const char *relative);
/* Reads a whole file into memory; fails the test when it cannot. */
GBytes *qb_test_read_file   (const char *path);
/* A file of llama.cpp's golden quantization data (../shared/golden/
 * ggml-quants/NAME), or NULL after g_test_skip() when it is absent. */
GBytes *qb_test_golden      (const char *name);
/* A fresh temporary directory, removed with its contents at exit. */
char   *qb_test_tmpdir      (void);

/* The quantbench executable of this build ($QB_BUILD_DIR/app/quantbench),
 * or NULL after g_test_skip() when it is not built. */
char   *qb_test_quantbench_path (void);
/* Runs quantbench with args (NULL-terminated) in envp (NULL: the test's
 * own environment); its output lands in *out and *err (either may be
 * NULL).  Returns the exit status, or -1 when it did not exit normally or
 * is not built (the test is then skipped).  A failure's stderr goes to the
 * test log. */
int     qb_test_quantbench_argv (const char * const *args,
                                 char              **envp,
                                 char              **out,
                                 char              **err);
/* The same with the arguments listed, then NULL. */
int     qb_test_quantbench      (char **out,
                                 char **err,
                                 ...) G_GNUC_NULL_TERMINATED;

/* From qb_test_log_keep () on, the messages logged are also kept, one a
 * line, for tests that expect one (they are still printed).  Call it once,
 * from main: GLib takes one log writer per process.  qb_test_log_clear ()
 * forgets what was kept; qb_test_log_text () is what was kept since. */
void        qb_test_log_keep  (void);
void        qb_test_log_clear (void);
const char *qb_test_log_text  (void);

G_END_DECLS
