/*
 * mycontainer-init, process: hooks, the terminal, credentials, capabilities, signals,
 * seccomp. Ops of init.c's loop.
 */
#include "init.h"

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
int op_hook(struct op *o) {
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
    /* runc's words ("error running hook ...: signal: bad system call"), which its users grep for. */
    char sig[64];
    snprintf(sig, sizeof sig, "%s", strsignal(WTERMSIG(status)));
    for (char *c = sig; *c; c++) *c = (char)tolower((unsigned char)*c);
    snprintf(detail, sizeof detail, "%s: error running hook %s: killed by signal %d (%s)", S(0), S(1), WTERMSIG(status), sig);
    errno = 0;
    return -1;
  }
  if (WEXITSTATUS(status) != 0) {
    snprintf(detail, sizeof detail, "%s: error running hook %s: exited with status %d%s%s", S(0), S(1), WEXITSTATUS(status), got ? ": " : "", out);
    errno = 0;
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------ terminal */

/* CONSOLE(socket_fd, rows, cols) -> the pty slave: a new pty in the container's devpts, its master sent to the caller. */
int op_console(struct op *o) {
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

int op_attach_console(struct op *o) {
  int slave = slots[I(0)];
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return -1;
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) return -1;
  if (slave > 2) close(slave);
  slots[I(0)] = -1;
  return 0;
}

/* ------------------------------------------------------------ process */

int op_setgroups(struct op *o) {
  gid_t gids[65536];
  uint32_t n = o->a[0].count;
  for (uint32_t i = 0; i < n; i++) gids[i] = (gid_t)strtoul(L(0)[i], NULL, 10);
  /* The raw syscalls, as the Node init did: credentials of this thread, nothing to broadcast. */
  return (int)syscall(SYS_setgroups, (size_t)n, gids);
}

int op_capset(struct op *o) {
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

int op_reset_signals(void) {
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

/*
 * runc's fixStdioPermissions: stdio (the pty slave, pipes) becomes the
 * process user's, keeping its group (the pty's is devpts' gid=5), so that a
 * non-root process can reopen /dev/stdout or its tty. Not /dev/null, and
 * (unlike runc) not a regular file or directory: a host file given as stdio
 * stays its owner's. Errors that mean "not ours to change" are skipped, as runc.
 */
int op_fix_stdio(struct op *o) {
  uid_t uid = (uid_t)I(0);
  struct stat null, s;
  int have_null = stat("/dev/null", &null) == 0;
  for (int fd = 0; fd < 3; fd++) {
    if (fstat(fd, &s) < 0 || s.st_uid == uid) continue;
    if (have_null && S_ISCHR(s.st_mode) && s.st_rdev == null.st_rdev) continue;
    if (S_ISREG(s.st_mode) || S_ISDIR(s.st_mode)) continue;
    if (fchown(fd, uid, s.st_gid) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS) return -1;
  }
  return 0;
}

int op_seccomp(struct op *o) {
  struct sock_fprog prog = {.len = (unsigned short)(o->a[1].len / 8), .filter = (struct sock_filter *)S(1)};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)I(0), &prog);
}

int op_cloexec_from(int first) {
  if (syscall(SYS_close_range, (unsigned)first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
  for (int fd = first; fd < 65536; fd++) {
    int f = fcntl(fd, F_GETFD);
    if (f >= 0) fcntl(fd, F_SETFD, f | FD_CLOEXEC);
  }
  return 0;
}

int op_set_cloexec(int fd, int on) {
  int f = fcntl(fd, F_GETFD);
  if (f < 0) return -1;
  return fcntl(fd, F_SETFD, on ? f | FD_CLOEXEC : f & ~FD_CLOEXEC);
}

