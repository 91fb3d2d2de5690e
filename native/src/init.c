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
 *                             "s NAME VALUE"         reached a PAUSE op (VALUE: its slot's fd); the
 *                                                   runtime answers one byte, and the program goes on
 *                             "m NAME"               a REPORT op (e.g. "created"), going on
 *                             "e IDX ERRNO MESSAGE"  an op failed; the init exits 127
 * An op: u32 len | u16 code | u8 store_slot | u8 nhandlers
 *        | handlers: i32 errno (-1 success, 0 any error) i32 action (>=0 skip that many ops, -1 fail) str message
 *        | str errmsg | u8 nargs | args
 * An arg: 'i' i64 | 's' str | 'n' (NULL) | 'p' i32 slot str (slot >= 0: "/proc/self/fd/<fd of slot>" + str)
 *        | 'l' u32 count, str... (a string list)
 * A str: u32 len, bytes (the decoder NUL-terminates).
 */
#include "init.h"

int sync_fd = -1;
int slots[NSLOTS];
mode_t saved_mode;
char exe_path[4096];
unsigned prog_flags;
unsigned cur_index;
int channel_closed;

/* ------------------------------------------------------------ channel */

static char out_buf[16384];
static size_t out_len;

static void flush_out(void) {
  size_t off = 0;
  while (off < out_len && !channel_closed) {
    /* send, not write: after the reset of signals (finalize) a write to a
     * runtime gone away would be SIGPIPE's default, death. */
    ssize_t n = send(sync_fd, out_buf + off, out_len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) channel_closed = 1; /* the runtime is gone (create has exited): go on quietly */
    else off += (size_t)n;
  }
  out_len = 0;
}

void say(const char *fmt, ...) {
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

int read_full(void *buf, size_t len) {
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

const char *errname(int e) {
  static char buf[16];
  for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
    if (errnames[i].num == e) return errnames[i].name;
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

/* A hook or a check composes its own message; the others get "ERRNO (text)". */
char detail[2048];

void die(int idx, int err, const char *message) {
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

char *fd_path(int slot, const char *rest) {
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
  /* A detached tree (open_tree by the runtime) attached at a path; 0x4: MOVE_MOUNT_F_EMPTY_PATH, 0x10: MOVE_MOUNT_T_SYMLINKS. */
  case OP_MOVE_MOUNT: return (int)syscall(SYS_move_mount, (int)I(0), "", AT_FDCWD, S(1), 0x4u | 0x10u);
  case OP_UMOUNT2: return umount2(S(0), (int)I(1));
  case OP_REMOUNT: return op_remount(o);
  case OP_MOUNT_SETATTR: return op_mount_setattr(o);
  case OP_OPEN_IN_ROOT: return op_open_in_root(o);
  case OP_CHECK_UNDER: return op_check_under(o);
  case OP_OPEN: return open(S(0), (int)I(1) | O_CLOEXEC, (mode_t)I(2));
  case OP_JUMP: return 0;
  case OP_PAUSE: {
    /*
     * The runtime must act on something only we hold (the seccomp listener
     * fd, which it takes with pidfd_getfd) before we go on.
     */
    char go;
    say("s %s %d\n", S(0), slot_ok(o, 1) ? slots[I(1)] : -1);
    flush_out();
    if (channel_closed || read_full(&go, 1) < 0) {
      errno = ECONNRESET;
      return -1;
    }
    return 0;
  }
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
  case OP_FIX_STDIO: return op_fix_stdio(o);
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
      if (r >= 0 && o->store != 0xff) {
        /* Slots live above the fds the process gets (3.. for --preserve-fds,
         * dup2'd before exec.fifo is waited on), where nothing lands on them.
         * Not the seccomp listener: it comes after those dup2s, and a close
         * under a filter that notifies close would wait for an agent that
         * has not got the listener yet. */
        int high = r < SLOT_FDS_AT && o->code != OP_SECCOMP ? fcntl(r, F_DUPFD_CLOEXEC, SLOT_FDS_AT) : -1;
        if (high >= 0) {
          close(r);
          r = high;
        }
        slots[o->store] = r;
      }
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
