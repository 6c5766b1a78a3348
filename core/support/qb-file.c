/* SPDX-License-Identifier: MIT */
/* qb-file.c — safe opening of inputs, outputs kept off inputs (see the header). */
#include "qb-file.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
qb_file_same (const char *a, const char *b)
{
  GStatBuf sa, sb;

  if (a == NULL || b == NULL || g_stat (a, &sa) != 0 || g_stat (b, &sb) != 0)
    return FALSE;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* TRUE when a file of folder dir is the file st describes. */
static gboolean
folder_holds (const char *dir, const GStatBuf *st)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      GStatBuf s;

      if (g_stat (path, &s) == 0 && S_ISREG (s.st_mode)
          && s.st_dev == st->st_dev && s.st_ino == st->st_ino)
        return TRUE;
    }
  return FALSE;
}

static gboolean
output_is_input (const char *out, const GStatBuf *st, const char *input)
{
  GStatBuf in;

  if (g_stat (input, &in) != 0)
    return FALSE;
  if (in.st_dev == st->st_dev && in.st_ino == st->st_ino)
    return TRUE;
  if (S_ISDIR (in.st_mode))
    return folder_holds (input, st);
  if (g_str_has_suffix (input, ".index.json"))
    {
      g_autofree char *dir = g_path_get_dirname (input);
      return folder_holds (dir, st);
    }
  return FALSE;
}

/* The folder must exist and take files: found out before the work, not
 * after hours of it. */
static gboolean
check_folder (const char *out, const char *option, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (out);
  GStatBuf st;
  int saved;

  if (g_stat (dir, &st) != 0 || !S_ISDIR (st.st_mode))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s %s: the folder %s does not exist",
                   option, out, dir);
      return FALSE;
    }
  if (access (dir, W_OK | X_OK) != 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "%s %s: cannot write in the folder %s: %s", option, out, dir, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

gboolean
qb_file_check_output (const char *out, const char *option, const char * const *inputs,
                      guint n_inputs, GError **error)
{
  GStatBuf st;

  if (out == NULL)
    return TRUE;
  if (!check_folder (out, option, error))
    return FALSE;
  /* A file that does not exist yet is no input. */
  if (g_stat (out, &st) != 0)
    return TRUE;
  if (S_ISDIR (st.st_mode))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, "%s %s is a folder, not a file name",
                   option, out);
      return FALSE;
    }
  for (guint i = 0; i < n_inputs; i++)
    if (inputs[i] != NULL && output_is_input (out, &st, inputs[i]))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                     "%s %s is the input %s (the same file): refusing to overwrite an input; "
                     "choose another name", option, out, inputs[i]);
        return FALSE;
      }
  return TRUE;
}

static gboolean
not_regular (const char *path, mode_t mode, GError **error)
{
  const char *what = S_ISDIR (mode) ? "a folder" : S_ISFIFO (mode) ? "a FIFO (named pipe)"
                     : S_ISCHR (mode) || S_ISBLK (mode) ? "a device" : S_ISSOCK (mode) ? "a socket"
                     : "not a regular file";

  g_set_error (error, G_IO_ERROR, S_ISDIR (mode) ? G_IO_ERROR_IS_DIRECTORY
                                                 : G_IO_ERROR_NOT_REGULAR_FILE,
               "%s is %s, not a file", path, what);
  return FALSE;
}

gboolean
qb_file_check_regular (const char *path, GError **error)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0 || S_ISREG (st.st_mode))
    return TRUE;
  return not_regular (path, st.st_mode, error);
}

/* Opened non-blocking (a FIFO opens at once, and is then refused). */
static int
open_regular (const char *path, GStatBuf *st, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
  int saved;

  if (fd < 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", path,
                   g_strerror (saved));
      return -1;
    }
  if (fstat (fd, st) != 0 || !S_ISREG (st->st_mode))
    {
      not_regular (path, st->st_mode, error);
      close (fd);
      return -1;
    }
  return fd;
}

GMappedFile *
qb_file_map (const char *path, GError **error)
{
  GStatBuf st;
  int fd = open_regular (path, &st, error);
  GMappedFile *file;

  if (fd < 0)
    return NULL;
  file = g_mapped_file_new_from_fd (fd, FALSE, error);
  close (fd);
  if (file == NULL && error != NULL && *error != NULL)
    g_prefix_error (error, "%s: ", path);
  return file;
}

gboolean
qb_file_read (const char *path, gsize max_bytes, char **contents, gsize *length, GError **error)
{
  GStatBuf st;
  int fd = open_regular (path, &st, error);
  g_autofree char *buf = NULL;
  gsize done = 0;

  if (fd < 0)
    return FALSE;
  if ((guint64) st.st_size > max_bytes)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: %" G_GUINT64_FORMAT " bytes is more than the %" G_GSIZE_FORMAT
                   " this input may have", path, (guint64) st.st_size, max_bytes);
      close (fd);
      return FALSE;
    }
  buf = g_malloc ((gsize) st.st_size + 1);
  while (done < (gsize) st.st_size)
    {
      gssize n = read (fd, buf + done, (gsize) st.st_size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int saved = n < 0 ? errno : EIO;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", path,
                       n < 0 ? g_strerror (saved) : "the file shrank while being read");
          close (fd);
          return FALSE;
        }
      done += n;
    }
  close (fd);
  buf[done] = '\0';
  *contents = g_steal_pointer (&buf);
  if (length)
    *length = done;
  return TRUE;
}

/* -- temporary files ---------------------------------------------------------- */

/* The pid in NAME.tmp-PID-XXXXXX, or 0 when name is not one of path's. */
static pid_t
temp_owner (const char *base, const char *name)
{
  gsize n = strlen (base);
  const char *p;
  char *end = NULL;
  gint64 pid;

  if (strncmp (name, base, n) != 0 || !g_str_has_prefix (name + n, ".tmp-"))
    return 0;
  p = name + n + 5;
  pid = g_ascii_strtoll (p, &end, 10);
  if (end == p || *end != '-' || strlen (end + 1) != 6 || pid <= 0 || pid > G_MAXINT)
    return 0;
  return (pid_t) pid;
}

static gboolean
process_alive (pid_t pid)
{
  return kill (pid, 0) == 0 || errno == EPERM;
}

/* NAME.tmp-XXXXXX (g_mkstemp's six letters and digits): the naming of
 * versions before the PID was in it. */
static gboolean
is_old_temp (const char *base, const char *name)
{
  gsize n = strlen (base);
  const char *p;

  if (strncmp (name, base, n) != 0 || !g_str_has_prefix (name + n, ".tmp-"))
    return FALSE;
  p = name + n + 5;
  if (strlen (p) != 6)
    return FALSE;
  for (int i = 0; i < 6; i++)
    if (!g_ascii_isalnum (p[i]))
      return FALSE;
  return TRUE;
}

/* When this process started, in seconds since the epoch; 0 when unknown. */
static gint64
process_start (void)
{
  g_autofree char *stat = NULL, *sys = NULL;
  const char *p, *btime;
  guint64 ticks;
  long hz = sysconf (_SC_CLK_TCK);

  if (hz <= 0 || !g_file_get_contents ("/proc/self/stat", &stat, NULL, NULL)
      || !g_file_get_contents ("/proc/stat", &sys, NULL, NULL)
      || (p = strrchr (stat, ')')) == NULL || (btime = strstr (sys, "\nbtime ")) == NULL)
    return 0;
  /* After "pid (comm)": state is field 3, starttime field 22. */
  for (int field = 2; field < 22 && p != NULL; field++)
    p = strchr (p + 1, ' ');
  if (p == NULL)
    return 0;
  ticks = g_ascii_strtoull (p + 1, NULL, 10);
  return g_ascii_strtoll (btime + 7, NULL, 10) + (gint64) (ticks / (guint64) hz);
}

/* TRUE when some process has the file st open; *complete is FALSE when
 * the open files of some process could not be read (another user's). */
static gboolean
open_by_any_process (const GStatBuf *st, gboolean *complete)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *pid;

  *complete = proc != NULL;
  while (proc != NULL && (pid = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *fd_dir = NULL;
      g_autoptr(GDir) fds = NULL;
      const char *fd;

      if (!g_ascii_isdigit (pid[0]))
        continue;
      fd_dir = g_build_filename ("/proc", pid, "fd", NULL);
      if ((fds = g_dir_open (fd_dir, 0, NULL)) == NULL)
        {
          /* A process that ended meanwhile is no reader; one we may not
           * look into could be. */
          if (g_file_test (fd_dir, G_FILE_TEST_EXISTS))
            *complete = FALSE;
          continue;
        }
      while ((fd = g_dir_read_name (fds)) != NULL)
        {
          g_autofree char *link = g_build_filename (fd_dir, fd, NULL);
          GStatBuf target;

          if (g_stat (link, &target) == 0 && target.st_dev == st->st_dev
              && target.st_ino == st->st_ino)
            return TRUE;
        }
    }
  return FALSE;
}

/* An old-naming temporary is removed only when it is provably a leftover:
 * a regular file of this user, last written before this process started,
 * and open in no process (every process's open files were seen). */
static gboolean
old_temp_is_stale (const char *full)
{
  GStatBuf st;
  gint64 start = process_start ();
  gboolean complete = FALSE;

  if (g_lstat (full, &st) != 0 || !S_ISREG (st.st_mode) || st.st_uid != geteuid ()
      || start == 0 || (gint64) st.st_mtime >= start)
    return FALSE;
  return !open_by_any_process (&st, &complete) && complete;
}

GPtrArray *
qb_file_clean_stale_temps (const char *path, GPtrArray **left)
{
  GPtrArray *removed = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (left != NULL)
    *left = g_ptr_array_new_with_free_func (g_free);
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      pid_t pid = temp_owner (base, name);
      g_autofree char *full = NULL;

      if (is_old_temp (base, name))
        {
          full = g_build_filename (dir, name, NULL);
          if (old_temp_is_stale (full) && g_unlink (full) == 0)
            g_ptr_array_add (removed, g_steal_pointer (&full));
          else if (left != NULL)
            g_ptr_array_add (*left, g_steal_pointer (&full));
          continue;
        }
      if (pid == 0 || pid == getpid () || process_alive (pid))
        continue;
      full = g_build_filename (dir, name, NULL);
      if (g_unlink (full) == 0)
        g_ptr_array_add (removed, g_steal_pointer (&full));
    }
  return removed;
}

static gpointer
release_file (gpointer fd)
{
  close (GPOINTER_TO_INT (fd));
  return NULL;
}

int
qb_file_rename_over (const char *tmp_path, const char *path)
{
  /* Held open across the rename, the replaced file is freed at its last
   * close, on the thread below (inline when no thread can be made).  A
   * process that exits first closes it at exit: nothing is left behind. */
  int old = open (path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int rc = g_rename (tmp_path, path), saved = errno;
  struct stat st;
  GThread *thread = NULL;

  if (old < 0)
    return rc;
  if (rc == 0 && fstat (old, &st) == 0 && S_ISREG (st.st_mode) && st.st_nlink == 0)
    thread = g_thread_try_new ("qb-release", release_file, GINT_TO_POINTER (old), NULL);
  if (thread != NULL)
    g_thread_unref (thread);
  else
    close (old);
  errno = saved;
  return rc;
}

int
qb_file_create_temp (const char *path, int mode, char **tmp_path, GError **error)
{
  g_autoptr(GPtrArray) stale = qb_file_clean_stale_temps (path, NULL);
  g_autofree char *tmp = g_strdup_printf ("%s.tmp-%d-XXXXXX", path, (int) getpid ());
  int fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, mode);
  int saved;

  if (fd < 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "%s: cannot create a temporary file beside it: %s", path, g_strerror (saved));
      return -1;
    }
  *tmp_path = g_steal_pointer (&tmp);
  return fd;
}
