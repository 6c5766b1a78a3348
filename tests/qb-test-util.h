/* qb-test-util.h — helpers shared by the test programs. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Path of a file under ../shared (QB_SHARED_DIR), or NULL after calling
 * g_test_skip() with a message when it is absent.  Free with g_free. */
char   *qb_test_shared_path (const char *relative);
/* Reads a whole file into memory; fails the test when it cannot. */
GBytes *qb_test_read_file   (const char *path);
/* A fresh temporary directory, removed with its contents at exit. */
char   *qb_test_tmpdir      (void);

G_END_DECLS
