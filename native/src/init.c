/*
 * mycontainer-init: the container's init, as a plan executor.
 *
 * The runtime (runtime/init/, TypeScript) decides every step of the
 * container's start and sends them here as a program: a list of operations
 * (mount this, open that inside the rootfs, drop these capabilities, exec
 * that), each with the message to give if it fails and what to do on a
 * given errno (skip ahead, or fail with another message). This program runs
 * them in order, reports each result on the sync channel, and holds no
 * policy of its own: which mounts, which flags, which capabilities, which
 * paths, what an error says, all come from the runtime. See native/README.md
 * for why each step exists.
 *
 * It replaces a Node init: a second Node start cost 80-130 ms of CPU and
 * 40 MB per container; this costs a fork and an exec.
 *
 * Channel: fd 3 (a unix stream socket), moved out of the way at start.
 *   runtime -> init   programs: "MCP1" u32 flags u32 count, then `count` ops
 *   init -> runtime   lines:  "r IDX RESULT ERRNO [PATH]"  an op's result (flag REPORT_EACH;
 *                                                   execve's before the call, with the path)
 *                             "s NAME"               reached a SYNC op: send the next program
 *                             "m NAME"               a REPORT op (e.g. "created"), going on
 *                             "e IDX ERRNO MESSAGE"  an op failed; the init exits 127
 * An op: u32 len | u16 code | u8 store_slot | u8 nhandlers
 *        | handlers: i32 errno (-1 success, 0 any error) i32 action (>=0 skip that many ops, -1 fail) str message
 *        | str errmsg | u8 nargs | args
 * An arg: 'i' i64 | 's' str | 'n' (NULL) | 'p' i32 slot str (slot >= 0: "/proc/self/fd/<fd of slot>" + str)
 *        | 'l' u32 count, str... (a string list)
 * A str: u32 len, bytes (the decoder NUL-terminates).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Operation codes: runtime/init/ops.ts has the same table (a unit test compares them). */
#define OP_UNSHARE 1
#define OP_SETNS 2
#define OP_WRITE_FILE 3
#define OP_MOUNT 4
#define OP_UMOUNT2 5
#define OP_REMOUNT 6
#define OP_MOUNT_SETATTR 7
#define OP_OPEN_IN_ROOT 8
#define OP_CHECK_UNDER 9
#define OP_OPEN 10
#define OP_CLOSE 11
#define OP_CHDIR 12
#define OP_CHROOT 13
#define OP_PIVOT_ROOT 14
#define OP_MKNOD 15
#define OP_CHMOD 16
#define OP_LCHOWN 17
#define OP_SYMLINK 18
#define OP_UNLINK 19
#define OP_STAT_MODE 20
#define OP_COPY_TREE 21
#define OP_SETHOSTNAME 22
#define OP_SETDOMAINNAME 23
#define OP_HOOK 24
#define OP_SYNC 25
#define OP_REPORT 26
#define OP_CONSOLE 27
#define OP_ATTACH_CONSOLE 28
#define OP_FIND_EXEC 29
#define OP_WAIT_FIFO 30
#define OP_SETRLIMIT 31
#define OP_UMASK 32
#define OP_DUP2 33
#define OP_CLOEXEC_FROM 34
#define OP_SET_CLOEXEC 35
#define OP_PRCTL 36
#define OP_SETGROUPS 37
#define OP_SETRESGID 38
#define OP_SETRESUID 39
#define OP_CAPSET 40
#define OP_RESET_SIGNALS 41
#define OP_SECCOMP 42
#define OP_EXECVE 43
#define OP_FCHDIR 44
#define OP_JUMP 45
#define OP_WAIT_EOF 46

#define REPORT_EACH 1u
#define NSLOTS 64
#define MAX_ARGS 12
#define MAX_HANDLERS 8
#define MAX_LINKS 255

struct arg {
  char tag;
  int64_t i;
  char *s; /* 's', 'p' (expanded), NULL for 'n' */
  uint32_t len;
  char **list; /* 'l', NULL-terminated */
  uint32_t count;
};

struct handler {
  int32_t err;
  int32_t action;
  char *message;
};

struct op {
  uint16_t code;
  uint8_t store;
  uint8_t nhandlers;
  struct handler h[MAX_HANDLERS];
  char *errmsg;
  uint8_t nargs;
  struct arg a[MAX_ARGS];
  char *raw; /* the op's bytes, which the strings point into */
};

static int sync_fd = -1;
static int slots[NSLOTS];
static mode_t saved_mode;
static char exe_path[4096];
static unsigned prog_flags;
static unsigned cur_index;
static int channel_closed;

/* ------------------------------------------------------------ channel */

static char out_buf[16384];
static size_t out_len;

static void flush_out(void) {
  size_t off = 0;
  while (off < out_len && !channel_closed) {
    ssize_t n = write(sync_fd, out_buf + off, out_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) channel_closed = 1; /* the runtime is gone (create has exited): go on quietly */
    else off += (size_t)n;
  }
  out_len = 0;
}

static void say(const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  if (out_len + (size_t)n > sizeof out_buf) flush_out();
  memcpy(out_buf + out_len, line, (size_t)n);
  out_len += (size_t)n;
}

static int read_full(void *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = read(sync_fd, (char *)buf + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    off += (size_t)n;
  }
  return 0;
}

/* ------------------------------------------------------------ errors */

static const struct { int num; const char *name; } errnames[] = {
  {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"}, {EIO, "EIO"}, {ENXIO, "ENXIO"},
  {E2BIG, "E2BIG"}, {ENOEXEC, "ENOEXEC"}, {EBADF, "EBADF"}, {ECHILD, "ECHILD"}, {EAGAIN, "EAGAIN"},
  {ENOMEM, "ENOMEM"}, {EACCES, "EACCES"}, {EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"},
  {EXDEV, "EXDEV"}, {ENODEV, "ENODEV"}, {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"}, {EINVAL, "EINVAL"},
  {EMFILE, "EMFILE"}, {ENOTTY, "ENOTTY"}, {ETXTBSY, "ETXTBSY"}, {ENOSPC, "ENOSPC"}, {EROFS, "EROFS"},
  {EPIPE, "EPIPE"}, {ENAMETOOLONG, "ENAMETOOLONG"}, {ENOSYS, "ENOSYS"}, {ENOTEMPTY, "ENOTEMPTY"},
  {ELOOP, "ELOOP"}, {EUSERS, "EUSERS"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {ETIMEDOUT, "ETIMEDOUT"},
};

static const char *errname(int e) {
  static char buf[16];
  for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
    if (errnames[i].num == e) return errnames[i].name;
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

/* A hook or a check composes its own message; the others get "ERRNO (text)". */
static char detail[2048];

static void die(int idx, int err, const char *message) {
  say("e %d %d %s\n", idx, err, message);
  flush_out();
  /* After `create` has exited nobody reads the channel: say it on stderr, as runc does. */
  if (channel_closed) dprintf(2, "mycontainer init: %s\n", message);
  _exit(127);
}

/* ------------------------------------------------------------ decoding */

static int take(char **p, char *end, void *out, size_t n) {
  if ((size_t)(end - *p) < n) return -1;
  memcpy(out, *p, n);
  *p += n;
  return 0;
}

/* Each string is copied out and NUL-terminated. */
static int take_str(char **p, char *end, char **out, uint32_t *len) {
  uint32_t n;
  if (take(p, end, &n, 4) < 0 || (size_t)(end - *p) < n) return -1;
  char *s = malloc(n + 1);
  if (!s) return -1;
  memcpy(s, *p, n);
  s[n] = 0;
  *p += n;
  *out = s;
  if (len) *len = n;
  return 0;
}

static char *fd_path(int slot, const char *rest) {
  char *s;
  if (slot < 0 || slot >= NSLOTS || slots[slot] < 0) return NULL;
  if (asprintf(&s, "/proc/self/fd/%d%s", slots[slot], rest) < 0) return NULL;
  return s;
}

static int decode(char *raw, uint32_t len, struct op *o) {
  char *p = raw, *end = raw + len;
  memset(o, 0, sizeof *o);
  o->raw = raw;
  if (take(&p, end, &o->code, 2) < 0 || take(&p, end, &o->store, 1) < 0 || take(&p, end, &o->nhandlers, 1) < 0) return -1;
  if (o->nhandlers > MAX_HANDLERS) return -1;
  for (int i = 0; i < o->nhandlers; i++) {
    if (take(&p, end, &o->h[i].err, 4) < 0 || take(&p, end, &o->h[i].action, 4) < 0) return -1;
    if (take_str(&p, end, &o->h[i].message, NULL) < 0) return -1;
  }
  if (take_str(&p, end, &o->errmsg, NULL) < 0 || take(&p, end, &o->nargs, 1) < 0 || o->nargs > MAX_ARGS) return -1;
  for (int i = 0; i < o->nargs; i++) {
    struct arg *a = &o->a[i];
    if (take(&p, end, &a->tag, 1) < 0) return -1;
    switch (a->tag) {
    case 'i':
      if (take(&p, end, &a->i, 8) < 0) return -1;
      break;
    case 's':
      if (take_str(&p, end, &a->s, &a->len) < 0) return -1;
      break;
    case 'n':
      break;
    case 'p': {
      int32_t slot;
      char *rest;
      if (take(&p, end, &slot, 4) < 0 || take_str(&p, end, &rest, &a->len) < 0) return -1;
      a->i = slot;
      a->s = rest; /* expanded when the op runs: the slot is filled by an earlier op */
      break;
    }
    case 'l':
      if (take(&p, end, &a->count, 4) < 0 || a->count > 65536) return -1;
      a->list = calloc(a->count + 1, sizeof(char *));
      if (!a->list) return -1;
      for (uint32_t k = 0; k < a->count; k++)
        if (take_str(&p, end, &a->list[k], NULL) < 0) return -1;
      break;
    default:
      return -1;
    }
  }
  return 0;
}

/* Expands 'p' args now that earlier ops have filled their slots. */
static int expand_paths(struct op *o) {
  for (int i = 0; i < o->nargs; i++) {
    struct arg *a = &o->a[i];
    if (a->tag != 'p' || a->i < 0) continue;
    char *s = fd_path((int)a->i, a->s);
    if (!s) {
      errno = EBADF;
      return -1;
    }
    a->s = s;
    a->i = -1;
  }
  return 0;
}

#define S(k) (o->a[k].s)
#define I(k) (o->a[k].i)
#define L(k) (o->a[k].list)

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
static int make_in_root(int rootfd, const char *root, const char *unsafe, int dir, int nosymlinks, mode_t mode) {
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
static int op_open_in_root(struct op *o) {
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
static int op_check_under(struct op *o) {
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

static unsigned long statfs_to_ms(unsigned long f) {
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
static int op_remount(struct op *o) {
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

static int op_copy_tree(struct op *o) {
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

static int op_mount_setattr(struct op *o) {
  struct {
    uint64_t set, clr, propagation, userns_fd;
  } attr = {(uint64_t)I(2), (uint64_t)I(3), 0, 0};
  return (int)syscall(SYS_mount_setattr, AT_FDCWD, S(0), (unsigned)I(1), &attr, sizeof attr);
}

/* ------------------------------------------------------------ files */

static int op_write_file(struct op *o) {
  int fd = open(S(0), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, S(1), o->a[1].len);
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)o->a[1].len ? 0 : -1;
}

/* FIND_EXEC(candidates): the first regular file with an execute bit, as execvp would take. */
static int op_find_exec(struct op *o) {
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

/* ------------------------------------------------------------ hooks */

/* Milliseconds left of a timeout started at T0: -1 without one, 0 once it is over. */
static int ms_left(const struct timespec *t0, int64_t timeout_ms) {
  if (timeout_ms < 0) return -1;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t spent = (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
  return spent >= timeout_ms ? 0 : (int)(timeout_ms - spent);
}

/*
 * HOOK(field, path, args, env, timeout, state): runs an OCI hook with the
 * state on its stdin, and fails (with its stderr) on a non-zero exit, a
 * signal, or the timeout.
 */
static int op_hook(struct op *o) {
  int in[2], err[2], ex[2];
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(err[1], 2);
    char **argv = L(2)[0] ? L(2) : (char *[]){S(1), NULL};
    execve(S(1), argv, L(3));
    int e = errno;
    if (write(ex[1], &e, sizeof e) < 0) _exit(127);
    _exit(127);
  }
  close(in[0]);
  close(err[1]);
  close(ex[1]);
  /* A hook that exits without reading its stdin gives EPIPE here: its exit status is what counts. */
  for (size_t off = 0; off < o->a[5].len;) {
    ssize_t n = write(in[1], S(5) + off, o->a[5].len - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(in[1]);
  char out[1024];
  size_t got = 0;
  int64_t timeout_ms = I(4) > 0 ? I(4) * 1000 : -1;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int timed_out = 0;
  for (;;) {
    int wait_ms = ms_left(&t0, timeout_ms);
    if (wait_ms == 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {err[0], POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    char buf[512];
    ssize_t n = read(err[0], buf, sizeof buf);
    if (n <= 0) break;
    size_t k = (size_t)n < sizeof out - 1 - got ? (size_t)n : sizeof out - 1 - got;
    memcpy(out + got, buf, k);
    got += k;
  }
  close(err[0]);
  int status = 0;
  /* The hook closed its stderr; it may still run: wait for it, within the timeout. */
  while (!timed_out) {
    pid_t w = waitpid(pid, &status, timeout_ms >= 0 ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return -1;
    if (ms_left(&t0, timeout_ms) == 0) timed_out = 1;
    else usleep(1000);
  }
  if (timed_out) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    close(ex[0]);
    snprintf(detail, sizeof detail, "%s: hook %s timed out after %llds", S(0), S(1), (long long)I(4));
    errno = ETIMEDOUT;
    return -1;
  }
  int exec_errno = 0;
  ssize_t en = read(ex[0], &exec_errno, sizeof exec_errno);
  close(ex[0]);
  if (en == (ssize_t)sizeof exec_errno) {
    snprintf(detail, sizeof detail, "%s: cannot run hook %s: %s (%s)", S(0), S(1), errname(exec_errno), strerror(exec_errno));
    errno = exec_errno;
    return -1;
  }
  while (got > 0 && isspace((unsigned char)out[got - 1])) got--;
  out[got] = 0;
  if (WIFSIGNALED(status)) {
    snprintf(detail, sizeof detail, "%s: hook %s killed by signal %d", S(0), S(1), WTERMSIG(status));
    errno = 0;
    return -1;
  }
  if (WEXITSTATUS(status) != 0) {
    snprintf(detail, sizeof detail, "%s: hook %s exited with status %d%s%s", S(0), S(1), WEXITSTATUS(status), got ? ": " : "", out);
    errno = 0;
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ terminal */

/* CONSOLE(socket_fd, rows, cols) -> the pty slave: a new pty in the container's devpts, its master sent to the caller. */
static int op_console(struct op *o) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  int unlock = 0;
  unsigned n;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &n) < 0) return -1;
  char name[64];
  snprintf(name, sizeof name, "/dev/pts/%u", n);
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return -1;
  if (I(1) > 0 || I(2) > 0) {
    struct winsize ws = {.ws_row = (unsigned short)I(1), .ws_col = (unsigned short)I(2)};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) return -1;
  }
  char payload[] = "/dev/ptmx";
  struct iovec iov = {payload, sizeof payload - 1};
  char ctrl[CMSG_SPACE(sizeof(int))];
  memset(ctrl, 0, sizeof ctrl);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof(int));
  if (sendmsg((int)I(0), &msg, 0) < 0) return -1;
  close(master);
  close((int)I(0));
  return slave;
}

static int op_attach_console(struct op *o) {
  int slave = slots[I(0)];
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return -1;
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) return -1;
  if (slave > 2) close(slave);
  slots[I(0)] = -1;
  return 0;
}

/* ------------------------------------------------------------ process */

static int op_setgroups(struct op *o) {
  gid_t gids[65536];
  uint32_t n = o->a[0].count;
  for (uint32_t i = 0; i < n; i++) gids[i] = (gid_t)strtoul(L(0)[i], NULL, 10);
  /* The raw syscalls, as the Node init did: credentials of this thread, nothing to broadcast. */
  return (int)syscall(SYS_setgroups, (size_t)n, gids);
}

static int op_capset(struct op *o) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  uint64_t e = (uint64_t)I(0), p = (uint64_t)I(1), i = (uint64_t)I(2);
  d[0].effective = (uint32_t)e;
  d[1].effective = (uint32_t)(e >> 32);
  d[0].permitted = (uint32_t)p;
  d[1].permitted = (uint32_t)(p >> 32);
  d[0].inheritable = (uint32_t)i;
  d[1].inheritable = (uint32_t)(i >> 32);
  return (int)syscall(SYS_capset, &h, d);
}

static int op_reset_signals(void) {
  /*
   * The raw syscall: glibc's sigaction refuses 32 and 33 (its own), yet
   * an ignored 32 inherited from the caller would survive execve too.
   */
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } ksa = {SIG_DFL, 0, NULL, 0};
  for (int s = 1; s <= 64; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, s, &ksa, NULL, sizeof ksa.mask);
  }
  sigset_t none;
  sigemptyset(&none);
  return sigprocmask(SIG_SETMASK, &none, NULL);
}

static int op_seccomp(struct op *o) {
  struct sock_fprog prog = {.len = (unsigned short)(o->a[1].len / 8), .filter = (struct sock_filter *)S(1)};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)I(0), &prog);
}

static int op_cloexec_from(int first) {
  if (syscall(SYS_close_range, (unsigned)first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
  for (int fd = first; fd < 65536; fd++) {
    int f = fcntl(fd, F_GETFD);
    if (f >= 0) fcntl(fd, F_SETFD, f | FD_CLOEXEC);
  }
  return 0;
}

static int op_set_cloexec(int fd, int on) {
  int f = fcntl(fd, F_GETFD);
  if (f < 0) return -1;
  return fcntl(fd, F_SETFD, on ? f | FD_CLOEXEC : f & ~FD_CLOEXEC);
}

/* ------------------------------------------------------------ the loop */

static int slot_ok(struct op *o, int k) {
  return o->nargs > k && o->a[k].i >= 0 && o->a[k].i < NSLOTS && slots[o->a[k].i] >= 0;
}

static int run_op(struct op *o) {
  if (expand_paths(o) < 0) return -1;
  if ((o->code == OP_FCHDIR || o->code == OP_WAIT_FIFO || o->code == OP_ATTACH_CONSOLE) && !slot_ok(o, 0)) {
    errno = EBADF;
    return -1;
  }
  if (o->store != 0xff && o->store >= NSLOTS) {
    errno = EINVAL;
    return -1;
  }
  switch (o->code) {
  case OP_UNSHARE: return unshare((int)I(0));
  case OP_SETNS: {
    int fd = open(S(0), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    /* A thread with its own fs_struct may change mount namespace; we are single-threaded. */
    int r = setns(fd, (int)I(1));
    int e = errno;
    close(fd);
    errno = e;
    return r;
  }
  case OP_WRITE_FILE: return op_write_file(o);
  case OP_MOUNT: return mount(S(0), S(1), S(2), (unsigned long)I(3), S(4));
  case OP_UMOUNT2: return umount2(S(0), (int)I(1));
  case OP_REMOUNT: return op_remount(o);
  case OP_MOUNT_SETATTR: return op_mount_setattr(o);
  case OP_OPEN_IN_ROOT: return op_open_in_root(o);
  case OP_CHECK_UNDER: return op_check_under(o);
  case OP_OPEN: return open(S(0), (int)I(1) | O_CLOEXEC, (mode_t)I(2));
  case OP_JUMP: return 0;
  case OP_WAIT_EOF: {
    /*
     * Until the runtime process is gone: its userland then can no longer
     * reap us, so our exit goes to the caller's subreaper (conmon, a shim).
     */
    char buf[256];
    ssize_t n;
    flush_out();
    while ((n = read(sync_fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    }
    channel_closed = 1;
    return 0;
  }
  case OP_CLOSE: {
    if (I(0) < 0 || I(0) >= NSLOTS) return 0;
    int fd = slots[I(0)];
    slots[I(0)] = -1;
    return fd >= 0 ? close(fd) : 0;
  }
  case OP_CHDIR: return chdir(S(0));
  case OP_FCHDIR: return fchdir(slots[I(0)]);
  case OP_CHROOT: return chroot(S(0));
  case OP_PIVOT_ROOT: return (int)syscall(SYS_pivot_root, S(0), S(1));
  case OP_MKNOD: return mknod(S(0), (mode_t)I(1), makedev((unsigned)I(2), (unsigned)I(3)));
  case OP_CHMOD: return chmod(S(0), I(1) < 0 ? saved_mode & 07777 : (mode_t)I(1));
  case OP_LCHOWN: return lchown(S(0), (uid_t)I(1), (gid_t)I(2));
  case OP_SYMLINK: return symlink(S(0), S(1));
  case OP_UNLINK: return unlink(S(0));
  case OP_STAT_MODE: {
    struct stat st;
    if (stat(S(0), &st) < 0) return -1;
    saved_mode = st.st_mode;
    return (int)(st.st_mode & 07777);
  }
  case OP_COPY_TREE: return op_copy_tree(o);
  case OP_SETHOSTNAME: return sethostname(S(0), o->a[0].len);
  case OP_SETDOMAINNAME: return setdomainname(S(0), o->a[0].len);
  case OP_HOOK: return op_hook(o);
  case OP_CONSOLE: return op_console(o);
  case OP_ATTACH_CONSOLE: return op_attach_console(o);
  case OP_FIND_EXEC: return op_find_exec(o);
  case OP_WAIT_FIFO: {
    int fd = slots[I(0)];
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    flush_out();
    do r = poll(&p, 1, -1);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    char c;
    if (read(fd, &c, 1) < 0) return -1;
    close(fd);
    slots[I(0)] = -1;
    return 0;
  }
  case OP_SETRLIMIT: {
    struct rlimit rl = {(rlim_t)(uint64_t)I(1), (rlim_t)(uint64_t)I(2)};
    return setrlimit((int)I(0), &rl);
  }
  case OP_UMASK: umask((mode_t)I(0)); return 0;
  case OP_DUP2: return dup2((int)I(0), (int)I(1)) < 0 ? -1 : 0;
  case OP_CLOEXEC_FROM: return op_cloexec_from((int)I(0));
  case OP_SET_CLOEXEC: return op_set_cloexec((int)I(0), (int)I(1));
  case OP_PRCTL: return prctl((int)I(0), (unsigned long)I(1), (unsigned long)I(2), 0UL, 0UL);
  case OP_SETGROUPS: return op_setgroups(o);
  case OP_SETRESGID: return (int)syscall(SYS_setresgid, (gid_t)I(0), (gid_t)I(0), (gid_t)I(0));
  case OP_SETRESUID: return (int)syscall(SYS_setresuid, (uid_t)I(0), (uid_t)I(0), (uid_t)I(0));
  case OP_CAPSET: return op_capset(o);
  case OP_RESET_SIGNALS: return op_reset_signals();
  case OP_SECCOMP: return op_seccomp(o);
  case OP_EXECVE:
    /* Reported before the call: a successful execve does not return. */
    if (prog_flags & REPORT_EACH) say("r %u 0 0 %s\n", cur_index, exe_path);
    flush_out();
    return execve(exe_path, L(0), L(1));
  default:
    errno = ENOSYS;
    return -1;
  }
}

/* Reads one program; returns its ops, or NULL at EOF (the runtime went away). */
static struct op *read_program(uint32_t *count) {
  char head[12];
  if (read_full(head, sizeof head) < 0) return NULL;
  if (memcmp(head, "MCP1", 4) != 0) {
    errno = EPROTO;
    die(-1, EPROTO, "init: the runtime sent something that is not a program");
  }
  memcpy(&prog_flags, head + 4, 4);
  memcpy(count, head + 8, 4);
  struct op *ops = calloc(*count ? *count : 1, sizeof *ops);
  if (!ops) die(-1, ENOMEM, "init: out of memory");
  for (uint32_t i = 0; i < *count; i++) {
    uint32_t len;
    if (read_full(&len, 4) < 0) return NULL;
    char *raw = malloc(len + 1);
    if (!raw || read_full(raw, len) < 0) return NULL;
    if (decode(raw, len, &ops[i]) < 0) die((int)i, EPROTO, "init: a malformed operation in the program");
  }
  return ops;
}

int main(void) {
  for (int i = 0; i < NSLOTS; i++) slots[i] = -1;
  /* The channel leaves fd 3: --preserve-fds fills 3.. before the last steps. */
  sync_fd = fcntl(3, F_DUPFD_CLOEXEC, 100);
  if (sync_fd < 0) return 1;
  close(3);
  signal(SIGPIPE, SIG_IGN); /* a runtime gone away is EPIPE, not death */

  for (;;) {
    uint32_t count;
    struct op *ops = read_program(&count);
    if (!ops) _exit(1); /* the runtime died before the container was made: nothing is left behind */
    for (uint32_t i = 0; i < count; i++) {
      struct op *o = &ops[i];
      if (o->code == OP_SYNC) {
        say("s %s\n", o->nargs ? S(0) : "");
        flush_out();
        break; /* the next program follows */
      }
      if (o->code == OP_REPORT) {
        say("m %s\n", o->nargs ? S(0) : "");
        flush_out();
        continue;
      }
      detail[0] = 0;
      errno = 0;
      cur_index = i;
      int r = run_op(o);
      int e = r < 0 ? errno : 0;
      if (r >= 0 && o->store != 0xff) slots[o->store] = r;
      if (prog_flags & REPORT_EACH) say("r %u %d %d\n", i, r < 0 ? -1 : r, e);
      /* The first handler that matches decides: skip ahead, or fail with its message. */
      int handled = 0;
      for (int k = 0; k < o->nhandlers && !handled; k++) {
        struct handler *h = &o->h[k];
        int match = r < 0 ? (h->err == 0 || h->err == e) : h->err == -1;
        if (!match) continue;
        handled = 1;
        if (h->action >= 0) {
          i += (uint32_t)h->action;
        } else {
          die((int)i, e, h->message[0] ? h->message : o->errmsg);
        }
      }
      if (handled || r >= 0) continue;
      char msg[4096];
      if (detail[0]) snprintf(msg, sizeof msg, "%s%s%s", o->errmsg, !o->errmsg[0] ? "" : detail[0] == '(' ? " " : ": ", detail);
      else {
        const char *text = strerror(e);
        char lower[256];
        snprintf(lower, sizeof lower, "%s", text);
        lower[0] = (char)tolower((unsigned char)lower[0]);
        snprintf(msg, sizeof msg, "%s: %s (%s)", o->errmsg, errname(e), lower);
      }
      die((int)i, e, msg);
    }
  }
}
