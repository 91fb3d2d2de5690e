/*
 * mycontainer-init, rootfs: paths opened or made inside the rootfs (openat2 RESOLVE_IN_ROOT,
 * with a fallback walk), mounts and remounts, files. Ops of init.c's loop.
 */
#include "init.h"

/* ------------------------------------------------------------ paths inside the rootfs */

/* Like runtime/linux/securejoin.ts: every lookup is done by the kernel inside ROOT. */
static int open_beneath(int rootfd, const char *root, const char *rel, int flags, uint64_t resolve) {
  struct open_how how = {.flags = (uint64_t)(flags | O_PATH | O_CLOEXEC), .mode = 0, .resolve = resolve | RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how);
  if (fd < 0) return -1;
  /* Belt and braces: where the kernel's walk ended must be inside the root. */
  char link[64], real[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, real, sizeof real - 1);
  if (n < 0) return fd;
  real[n] = 0;
  size_t rl = strlen(root);
  if (!(strncmp(real, root, rl) == 0 && (real[rl] == 0 || real[rl] == '/' || (rl == 1 && root[0] == '/')))) {
    close(fd);
    snprintf(detail, sizeof detail, "%s resolved to %s, outside %s", rel, real, root);
    errno = EXDEV;
    return -1;
  }
  return fd;
}

/* Components of a path, "." and empty ones dropped. */
static int split(const char *path, char ***out) {
  char *copy = strdup(path);
  int n = 0, cap = 16;
  char **v = malloc(sizeof(char *) * (size_t)cap);
  if (!copy || !v) return -1;
  for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0) continue;
    if (n == cap) {
      cap *= 2;
      v = realloc(v, sizeof(char *) * (size_t)cap);
      if (!v) return -1;
    }
    v[n++] = c;
  }
  *out = v;
  return n;
}

static void join_into(char *buf, size_t size, char **parts, int n) {
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    if (i) strncat(buf, "/", size - strlen(buf) - 1);
    strncat(buf, parts[i], size - strlen(buf) - 1);
  }
}

/*
 * mkdir -p REL inside ROOT (dir=1), or make REL an existing file, empty if
 * new (dir=0). Symlinks on the way are followed, but only inside the root:
 * each component is looked at without following it (O_NOFOLLOW), a link's
 * target is spliced into the remaining path, an absolute one from the root.
 */
int make_in_root(int rootfd, const char *root, const char *unsafe, int dir, int nosymlinks, mode_t mode) {
  char **pending;
  int np = split(unsafe, &pending);
  if (np < 0) return -1;
  char *done[4096];
  int nd = 0, links = 0;
  char rel[4096];
  /* pending is consumed from the front; links push their components in front of it. */
  char **queue = pending;
  int qn = np;
  while (qn > 0) {
    char *comp = queue[0];
    queue++;
    qn--;
    if (strcmp(comp, "..") == 0) {
      if (nd > 0) nd--;
      continue;
    }
    done[nd] = comp;
    join_into(rel, sizeof rel, done, nd + 1);
    int last = qn == 0;
    int fd = open_beneath(rootfd, root, rel, O_NOFOLLOW, nosymlinks ? RESOLVE_NO_SYMLINKS : 0);
    if (fd < 0) {
      if (errno != ENOENT) return -1;
      /* Missing: make it in its parent, opened inside the root. */
      char prel[4096];
      join_into(prel, sizeof prel, done, nd);
      int pfd = open_beneath(rootfd, root, prel, O_DIRECTORY, nosymlinks ? RESOLVE_NO_SYMLINKS : 0);
      if (pfd < 0) return -1;
      int r;
      if (last && !dir) {
        char at[64];
        snprintf(at, sizeof at, "/proc/self/fd/%d/%s", pfd, comp);
        /* O_NOFOLLOW: a symlink that appeared here is refused, not followed out of the root. */
        r = open(at, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode ? mode : 0644);
        if (r >= 0) close(r);
      } else {
        char at[4200];
        snprintf(at, sizeof at, "/proc/self/fd/%d/%s", pfd, comp);
        r = mkdir(at, mode ? mode : 0755);
      }
      int e = errno;
      close(pfd);
      if (r < 0 && e != EEXIST) {
        errno = e;
        return -1;
      }
      if (r < 0) { /* made meanwhile: look again */
        if (++links > MAX_LINKS) {
          errno = ELOOP;
          return -1;
        }
        queue--;
        qn++;
        continue;
      }
      nd++;
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
      close(fd);
      return -1;
    }
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
      close(fd);
      if (n < 0) return -1;
      target[n] = 0;
      if (nosymlinks) {
        errno = ELOOP;
        return -1;
      }
      if (++links > MAX_LINKS) {
        errno = ELOOP;
        return -1;
      }
      char **tparts;
      int tn = split(target, &tparts);
      if (tn < 0) return -1;
      char **merged = malloc(sizeof(char *) * (size_t)(tn + qn + 1));
      if (!merged) return -1;
      memcpy(merged, tparts, sizeof(char *) * (size_t)tn);
      memcpy(merged + tn, queue, sizeof(char *) * (size_t)qn);
      queue = merged;
      qn += tn;
      if (target[0] == '/') nd = 0;
      continue;
    }
    close(fd);
    if (!last && !S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      return -1;
    }
    nd++;
  }
  join_into(rel, sizeof rel, done, nd);
  return open_beneath(rootfd, root, rel, dir ? O_DIRECTORY : 0, nosymlinks ? RESOLVE_NO_SYMLINKS : 0);
}

/*
 * OPEN_IN_ROOT(root, unsafe, how, nosymlinks, directory, like) -> fd
 * how: 0 open | 1 mkdir -p | 2 file | 3 as LIKE is (a bind source: a
 * directory for a directory, else a file).
 */
int op_open_in_root(struct op *o) {
  int64_t how = I(2);
  if (how == 3) {
    struct stat st;
    if (stat(S(5), &st) < 0) {
      if (errno == ENOENT) snprintf(detail, sizeof detail, "the bind source %s does not exist", S(5));
      return -1;
    }
    how = S_ISDIR(st.st_mode) ? 1 : 2;
  }
  int rootfd = open(S(0), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return -1;
  int fd;
  uint64_t resolve = I(3) ? RESOLVE_NO_SYMLINKS : 0;
  if (how == 0) {
    char **parts;
    int n = split(S(1), &parts);
    char rel[4096];
    if (n < 0) return -1;
    join_into(rel, sizeof rel, parts, n);
    fd = open_beneath(rootfd, S(0), rel, I(4) ? O_DIRECTORY : 0, resolve);
  } else {
    fd = make_in_root(rootfd, S(0), S(1), how == 1, (int)I(3), 0);
  }
  int e = errno;
  close(rootfd);
  errno = e;
  return fd;
}

/*
 * CHECK_UNDER(path, root, prefix, allowed...): where PATH (an fd's magic
 * link) really leads, as seen from ROOT, must not be PREFIX or under it,
 * unless it is one of ALLOWED. (runc refuses mounts into /proc that a
 * symlink in the image would carry there.)
 */
int op_check_under(struct op *o) {
  char real[4096];
  ssize_t n = readlink(S(0), real, sizeof real - 1);
  if (n < 0) return -1;
  real[n] = 0;
  size_t rl = strlen(S(1));
  const char *inner = real + (strncmp(real, S(1), rl) == 0 ? rl : 0);
  if (!*inner) inner = "/";
  size_t pl = strlen(S(2));
  if (strncmp(inner, S(2), pl) != 0 || (inner[pl] != 0 && inner[pl] != '/')) return 0;
  for (char **a = L(3); a && *a; a++)
    if (strcmp(*a, inner) == 0) return 0;
  snprintf(detail, sizeof detail, "(resolved to %s): it cannot be mounted inside %s", inner, S(2));
  errno = EPERM;
  return -1;
}

/* ------------------------------------------------------------ mounts */

unsigned long statfs_to_ms(unsigned long f) {
  unsigned long ms = 0;
  if (f & ST_RDONLY) ms |= MS_RDONLY;
  if (f & ST_NOSUID) ms |= MS_NOSUID;
  if (f & ST_NODEV) ms |= MS_NODEV;
  if (f & ST_NOEXEC) ms |= MS_NOEXEC;
  if (f & ST_SYNCHRONOUS) ms |= MS_SYNCHRONOUS;
  if (f & ST_MANDLOCK) ms |= MS_MANDLOCK;
  if (f & ST_NOATIME) ms |= MS_NOATIME;
  if (f & ST_NODIRATIME) ms |= MS_NODIRATIME;
  if (f & ST_RELATIME) ms |= MS_RELATIME;
  return ms;
}

/*
 * REMOUNT(target, flags, cleared, lock_source, data, keep): MS_REMOUNT with
 * FLAGS plus the KEEP flags the target has now. On EPERM (flags the kernel
 * locked, in a user namespace), once more with LOCK_SOURCE's lockable flags
 * added, unless CLEARED names one of them; then the flags used are the
 * result (runtime/linux/remount.ts does the same in TypeScript).
 */
int op_remount(struct op *o) {
  unsigned long flags = (unsigned long)I(1), cleared = (unsigned long)I(2), keep = (unsigned long)I(5);
  struct statfs sf;
  if (keep) {
    if (statfs(S(0), &sf) < 0) return -1;
    flags |= statfs_to_ms((unsigned long)sf.f_flags) & keep;
  }
  if (mount(NULL, S(0), NULL, flags, S(4)) == 0) return 0;
  if (errno != EPERM) return -1;
  const unsigned long lockable = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME;
  const unsigned long atime = MS_NOATIME | MS_RELATIME | MS_STRICTATIME;
  if (statfs(S(3), &sf) < 0) return -1;
  unsigned long src = statfs_to_ms((unsigned long)sf.f_flags);
  errno = EPERM;
  if (src & lockable & cleared) return -1;
  unsigned long retry = flags | (src & lockable);
  if ((flags & atime) == 0) retry |= src & atime;
  if (retry == flags) return -1;
  if (mount(NULL, S(0), NULL, retry, S(4)) < 0) return -1;
  return (int)retry; /* tells the runtime which flags were kept */
}

/* Copies what FROM (a directory) holds into TO: tmpcopyup. */
static int copy_tree(int from, int to) {
  DIR *d = fdopendir(from);
  if (!d) return -1;
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(from, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = -1;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      if (mkdirat(to, e->d_name, st.st_mode & 07777) < 0 && errno != EEXIST) rc = -1;
      int f = rc ? -1 : openat(from, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int t = f < 0 ? -1 : openat(to, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (f < 0 || t < 0 || copy_tree(f, t) < 0) rc = -1;
      if (t >= 0) close(t);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(from, e->d_name, target, sizeof target - 1);
      if (n < 0) rc = -1;
      else {
        target[n] = 0;
        if (symlinkat(target, to, e->d_name) < 0) rc = -1;
      }
    } else if (S_ISREG(st.st_mode)) {
      int f = openat(from, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      int t = f < 0 ? -1 : openat(to, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
      char buf[65536];
      ssize_t n;
      while (t >= 0 && (n = read(f, buf, sizeof buf)) > 0)
        if (write(t, buf, (size_t)n) != n) {
          rc = -1;
          break;
        }
      if (f < 0 || t < 0) rc = -1;
      if (f >= 0) close(f);
      if (t >= 0) close(t);
    } else {
      if (mknodat(to, e->d_name, st.st_mode, st.st_rdev) < 0) rc = -1;
    }
    if (rc == 0) {
      fchownat(to, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      utimensat(to, e->d_name, ts, AT_SYMLINK_NOFOLLOW);
    }
  }
  closedir(d);
  return rc;
}

int op_copy_tree(struct op *o) {
  int from = open(S(0), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (from < 0) return -1;
  int to = open(S(1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (to < 0) {
    close(from);
    return -1;
  }
  int rc = copy_tree(from, to);
  int e = errno;
  close(to);
  errno = e;
  return rc;
}

int op_mount_setattr(struct op *o) {
  struct {
    uint64_t set, clr, propagation, userns_fd;
  } attr = {(uint64_t)I(2), (uint64_t)I(3), 0, 0};
  return (int)syscall(SYS_mount_setattr, AT_FDCWD, S(0), (unsigned)I(1), &attr, sizeof attr);
}

/* ------------------------------------------------------------ files */

int op_write_file(struct op *o) {
  int fd = open(S(0), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, S(1), o->a[1].len);
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)o->a[1].len ? 0 : -1;
}

/* FIND_EXEC(candidates): the first regular file with an execute bit, as execvp would take. */
int op_find_exec(struct op *o) {
  int seen = 0;
  for (char **c = L(0); c && *c; c++) {
    struct stat st;
    if (stat(*c, &st) < 0) continue;
    seen = 1;
    if (S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
      snprintf(exe_path, sizeof exe_path, "%s", *c);
      return 0;
    }
  }
  errno = seen ? EACCES : ENOENT;
  return -1;
}

