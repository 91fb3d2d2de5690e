/*
 * mycontainer-monitor: what holds an idle container, as conmon does for
 * podman. The Node monitor (engine/monitor.ts) creates and starts the
 * container; once it has run a moment, that process execs this program in
 * its place. The pid stays, so the container's init stays its child (or its
 * orphan, reparented to it as subreaper) and the store's monitorPid is still
 * right. Handed over on the command line:
 *
 *   --pid N                 the container's init, to wait for
 *   --stdout FD --stderr FD the read ends of its output pipes, or
 *   --pty FD                the pty master
 *   --stdin FD              the write end of its stdin pipe
 *   --listen FD             the attach socket (engine/attach.ts frames)
 *   --client FD:FLAGS       a connected attach client: h = HELLO seen, i = may write stdin
 *   --log PATH --log-max-size N --log-max-files N   the CRI log (engine/logs.ts's format)
 *   -- ARGV...              what to exec when the init has exited
 *
 * Or it is there from the start (--launch): whoever creates the container
 * (the CLI, the CRI server) spawns it in place of the init, inside the
 * container's new namespaces, and it forks the init there, goes back to the
 * host's namespaces (--restore FLAG:FD, the creator's saved namespace fds),
 * and reports the init's pid ("pid N\n" on the --launch fd). Then the
 * creator goes on with the runtime's create and start over the init's own
 * channel, and says "running\n" on --control; EOF before that means the start
 * failed: the init is killed and nothing runs the exit command. --console FD
 * is the socket the init sends the pty master over; --diag FD becomes stderr
 * (monitor.log). The program is the first --launch-argc args after "--".
 *
 * It writes the CRI log, serves attach clients, and reaps. When the init has
 * exited and its output is drained (or 2 s have passed: a grandchild may hold
 * the pipes), it execs ARGV with --status, --listen and --client appended:
 * the Node monitor again, which records the exit, deletes the runtime's
 * container and applies the restart policy, as conmon's --exit-command runs
 * `podman container cleanup`. It holds no policy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* engine/attach.ts's frame types */
enum { F_HELLO = 0, F_STDIN = 1, F_STDIN_EOF = 2, F_RESIZE = 3, F_REOPEN_LOG = 4, F_STDOUT = 11, F_STDERR = 12, F_LOG_REOPENED = 15, F_READY = 16 };

#define MAX_CLIENTS 64
#define MAX_LINE (16 * 1024)          /* engine/logs.ts: longer lines are split into P parts */
#define MAX_FRAME (1024 * 1024)       /* a client frame larger than this is hostile */
#define MAX_CLIENT_BACKLOG (8 << 20)  /* a client that reads no faster than this is dropped */
#define MAX_STDIN_BACKLOG (1 << 20)   /* past this, stdin frames wait in the client's socket */

struct buf {
  char *p;
  size_t len, cap;
};

struct client {
  int fd;
  int hello, stdin_ok;
  struct buf in, out;
};

static struct client clients[MAX_CLIENTS];
static int nclients;

static const char *id = "?";
static pid_t child = -1;
static int exited, status;
static int src_fd[2] = {-1, -1}; /* stdout (or the pty master), stderr */
static int is_pty;
static int stdin_fd = -1; /* the pipe's write end, or the pty master */
static int stdin_eof;     /* close stdin once `pending` is written */
static struct buf pending;
static int listen_fd = -1;
static int console_fd = -1; /* where the init sends the pty master (launch mode) */
static int control_fd = -1; /* the creator: "running\n", or EOF if the start failed */
static int confirmed = 1;   /* launch mode: 0 until "running" */
static int attached;        /* "running attached": the creator waits for the exit and handles it */
static int debug_fd = -1;   /* --debug: each launch step as "step CALL = RESULT # WHY" on the launch fd */

/* One launch step for the creator's --debug trace (runtime/linux/spawn.ts reads it). */
static void step(const char *why, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void step(const char *why, int r, const char *fmt, ...) {
  if (debug_fd < 0) return;
  int err = errno;
  char call[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(call, sizeof call, fmt, ap);
  va_end(ap);
  if (r < 0) dprintf(debug_fd, "step %s = -1 %s # %s\n", call, strerrorname_np(err) ? strerrorname_np(err) : "?", why);
  else dprintf(debug_fd, "step %s = %d # %s\n", call, r, why);
  errno = err;
}

static const char *log_path;
static long long log_max_size, log_max_files = 1, log_size;
static int log_fd = -1;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  dprintf(2, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ monitor %.12s: %s\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
          tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, id, msg);
}

static void put(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      note("out of memory");
      _exit(1);
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void consume(struct buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
  if (b->len == 0 && b->cap > 65536) { /* give a burst's memory back */
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* --- the CRI log: engine/logs.ts's CriLogWriter, byte for byte --- */

static int log_open(void) {
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return -1;
  struct stat st;
  log_size = fstat(fd, &st) == 0 ? st.st_size : 0;
  return fd;
}

static void log_rotate(void) {
  close(log_fd);
  long long keep = log_max_files > 1 ? log_max_files : 1;
  char from[4096], to[4096];
  for (long long i = keep - 1; i >= 1; i--) {
    if (i == 1) snprintf(from, sizeof from, "%s", log_path);
    else snprintf(from, sizeof from, "%s.%lld", log_path, i - 1);
    snprintf(to, sizeof to, "%s.%lld", log_path, i);
    rename(from, to); /* ENOENT: not there yet */
  }
  if (keep == 1) unlink(log_path);
  log_fd = log_open();
  log_size = 0;
  if (log_fd < 0) note("cannot open the log %s after rotating it: %s", log_path, strerror(errno));
}

static void log_flush(struct buf *b) {
  if (b->len == 0 || log_fd < 0) return;
  if (write_all(log_fd, b->p, b->len) < 0) note("cannot write the log %s: %s", log_path, strerror(errno));
  log_size += (long long)b->len;
  b->len = 0;
}

static void log_write(const char *stream, const char *data, size_t n) {
  static struct buf batch;
  char ts[64];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  gmtime_r(&now.tv_sec, &tm);
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, now.tv_nsec);
  size_t pos = 0;
  while (pos < n) {
    const char *nl = memchr(data + pos, '\n', n - pos);
    size_t len;
    const char *tag;
    size_t skip;
    if (nl && (size_t)(nl - (data + pos)) <= MAX_LINE) {
      len = (size_t)(nl - (data + pos));
      tag = "F";
      skip = len + 1;
    } else {
      len = n - pos < MAX_LINE ? n - pos : MAX_LINE;
      tag = "P";
      skip = len;
    }
    char head[96];
    int h = snprintf(head, sizeof head, "%s %s %s ", ts, stream, tag);
    long long line = h + (long long)len + 1;
    /* one write per file: rotation falls between lines, never inside one */
    if (log_max_size > 0 && log_size + (long long)batch.len + line > log_max_size && log_size + (long long)batch.len > 0) {
      log_flush(&batch);
      log_rotate();
    }
    put(&batch, head, (size_t)h);
    put(&batch, data + pos, len);
    put(&batch, "\n", 1);
    pos += skip;
  }
  log_flush(&batch);
}

/* --- attach clients --- */

static void drop_client(int i) {
  close(clients[i].fd);
  free(clients[i].in.p);
  free(clients[i].out.p);
  clients[i] = clients[--nclients];
}

static void client_flush(struct client *c) {
  while (c->out.len > 0) {
    ssize_t w = write(c->fd, c->out.p, c->out.len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* EAGAIN: POLLOUT later; an error shows on the next read */
    }
    consume(&c->out, (size_t)w);
  }
}

static void send_frame(struct client *c, int type, const void *p, size_t n) {
  unsigned char head[5] = {(unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  put(&c->out, head, 5);
  put(&c->out, p, n);
  client_flush(c);
}

static void output(int which, const char *p, size_t n) {
  log_write(which == 0 ? "stdout" : "stderr", p, n);
  for (int i = nclients - 1; i >= 0; i--) {
    if (!clients[i].hello) continue;
    send_frame(&clients[i], which == 0 ? F_STDOUT : F_STDERR, p, n);
    if (clients[i].out.len > MAX_CLIENT_BACKLOG) drop_client(i);
  }
}

/* The value of "key":N in a small JSON object (HELLO, RESIZE), or -1. */
static long json_int(const char *json, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *at = strstr(json, pat);
  return at ? strtol(at + strlen(pat), NULL, 10) : -1;
}

/* Handles one frame; returns -1 to drop the client. */
static int on_frame(struct client *c, int type, const char *p, size_t n) {
  char json[256];
  size_t k = n < sizeof json - 1 ? n : sizeof json - 1;
  switch (type) {
  case F_HELLO:
    memcpy(json, p, k);
    json[k] = 0;
    c->hello = 1;
    c->stdin_ok = strstr(json, "\"stdin\":true") != NULL;
    send_frame(c, F_READY, "", 0); /* counted from here: a start waiting for this client may go */
    break;
  case F_STDIN:
    if (c->stdin_ok && stdin_fd >= 0 && !stdin_eof) put(&pending, p, n);
    break;
  case F_STDIN_EOF:
    if (c->stdin_ok && !is_pty) stdin_eof = 1; /* a terminal has no EOF but ^D */
    break;
  case F_RESIZE:
    if (is_pty && src_fd[0] >= 0) {
      memcpy(json, p, k);
      json[k] = 0;
      struct winsize ws = {.ws_row = (unsigned short)json_int(json, "rows"), .ws_col = (unsigned short)json_int(json, "cols")};
      ioctl(src_fd[0], TIOCSWINSZ, &ws); /* the pty may be gone */
    }
    break;
  case F_REOPEN_LOG: {
    /* CRI ReopenContainerLog: kubelet renamed the file away */
    char err[512] = "";
    int fd = log_open();
    if (fd < 0) snprintf(err, sizeof err, "cannot reopen the log %s: %s", log_path, strerror(errno));
    else {
      if (log_fd >= 0) close(log_fd);
      log_fd = fd;
    }
    send_frame(c, F_LOG_REOPENED, err, strlen(err));
    break;
  }
  default:
    break;
  }
  return 0;
}

static int client_read(struct client *c) {
  char b[65536];
  ssize_t n = read(c->fd, b, sizeof b);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0) return -1;
  put(&c->in, b, (size_t)n);
  while (c->in.len >= 5) {
    const unsigned char *h = (const unsigned char *)c->in.p;
    size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
    if (len > MAX_FRAME) return -1;
    if (c->in.len < 5 + len) break;
    if (on_frame(c, h[0], c->in.p + 5, len) < 0) return -1;
    consume(&c->in, 5 + len);
  }
  return 0;
}

static void add_client(int fd, int hello, int stdin_ok) {
  if (nclients == MAX_CLIENTS) {
    close(fd);
    return;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  clients[nclients++] = (struct client){.fd = fd, .hello = hello, .stdin_ok = stdin_ok};
}

/* --- the container --- */

static void reap(void) {
  int st;
  pid_t p;
  /* we may be subreaper: orphans of the container come here too */
  while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
    if (p != child) continue;
    exited = 1;
    status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
}

static void source_read(int which) {
  char b[65536];
  ssize_t n = read(src_fd[which], b, sizeof b);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { /* EOF, or EIO from a pty whose last slave closed */
    close(src_fd[which]);
    if (is_pty && stdin_fd == src_fd[which]) stdin_fd = -1;
    src_fd[which] = -1;
    return;
  }
  output(which, b, (size_t)n);
}

static void stdin_write(void) {
  while (pending.len > 0) {
    ssize_t w = write(stdin_fd, pending.p, pending.len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      pending.len = 0; /* the container closed its stdin */
      break;
    }
    consume(&pending, (size_t)w);
  }
  if (stdin_eof && !is_pty && stdin_fd >= 0) {
    close(stdin_fd);
    stdin_fd = -1;
  }
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The pty master from the init (SCM_RIGHTS), as runtime/linux/terminal.ts sends it. */
static void console_read(void) {
  char data[256];
  char ctl[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  ssize_t n = recvmsg(console_fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    int master;
    memcpy(&master, CMSG_DATA(c), sizeof master);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    src_fd[0] = stdin_fd = master;
    is_pty = 1;
  }
  close(console_fd);
  console_fd = -1;
}

static void control_read(void) {
  char b[64];
  ssize_t n = read(control_fd, b, sizeof b);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0 && !confirmed && memmem(b, (size_t)n, "running", 7)) {
    confirmed = 1;
    attached = memmem(b, (size_t)n, "attached", 8) != NULL;
    if (attached) return; /* keep it: the exit goes back that way */
  }
  if (n > 0 && !confirmed) return;
  if (n > 0) return; /* nothing else is said before the exit */
  close(control_fd);
  control_fd = -1;
  attached = 0; /* the creator is gone: the exit command handles the exit */
  if (confirmed) return;
  /* The creator gave up (or died) before the start: no container to keep. */
  if (!exited) kill(child, SIGKILL);
  while (!exited) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0 && errno != EINTR) break;
    if (p == child) exited = 1;
  }
  _exit(0);
}

static int parse_fd(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || (*end != 0 && *end != ':') || v < 0 || v > 1 << 20) {
    dprintf(2, "mycontainer-monitor: bad fd \"%s\"\n", s);
    exit(2);
  }
  return (int)v;
}

/* Every fd this process keeps, from the command line; the rest (the init's stdio, its channel) is closed after the fork. */
static int keep_fd(int fd) {
  if (fd == src_fd[0] || fd == src_fd[1] || fd == stdin_fd || fd == listen_fd || fd == console_fd || fd == control_fd) return 1;
  for (int i = 0; i < nclients; i++)
    if (clients[i].fd == fd) return 1;
  return 0;
}

/*
 * --launch: fork the init here, inside the namespaces we were spawned in,
 * then leave them (so that the init's pivot_root and the pod's network are
 * not ours) and report its pid.
 */
static void launch(char **program, int launch_fd, int diag_fd, const char **restore, int nrestore, const char *pidns) {
  /* orphans of the container (nsexec forks the init and exits) come to us */
  int sr = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  step("orphans of the container (nsexec's PID 1) come to the monitor", sr, "prctl(PR_SET_CHILD_SUBREAPER, 1)");
  if (sr < 0) note("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
  int ours[] = {src_fd[0], src_fd[1], stdin_fd, listen_fd, console_fd, control_fd, launch_fd, diag_fd};
  for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
    if (ours[i] >= 0) fcntl(ours[i], F_SETFD, FD_CLOEXEC);
  for (int i = 0; i < nrestore; i++) fcntl(atoi(strchr(restore[i], ':') + 1), F_SETFD, FD_CLOEXEC);
  /* The init's pid namespace: the creator cannot enter it for us (its child would be born in it, as PID 1). */
  int own_pidns = -1;
  if (pidns) {
    own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    int r;
    if (!strcmp(pidns, "new")) {
      r = unshare(CLONE_NEWPID);
      step("linux.namespaces: a new pid namespace, entered here so that only the init is born in it", r, "unshare(CLONE_NEWPID)");
    } else {
      int fd = open(pidns, O_RDONLY | O_CLOEXEC);
      r = fd < 0 ? -1 : setns(fd, CLONE_NEWPID);
      step("linux.namespaces: join the pid namespace, here so that only the init is born in it", r, "setns(open(\"%s\"), CLONE_NEWPID)", pidns);
      if (fd >= 0) close(fd);
    }
    if (own_pidns < 0 || r < 0) {
      dprintf(launch_fd, "error mycontainer-monitor: enter the pid namespace %s: %s\n", pidns, strerror(errno));
      _exit(1);
    }
  }
  pid_t pid = fork();
  if (pid != 0) step("the init, the monitor's child; it setsid()s and execs the program", pid, "fork()");
  if (pid < 0) {
    dprintf(launch_fd, "error mycontainer-monitor: fork: %s\n", strerror(errno));
    _exit(1);
  }
  /* our later children (none, but the exit command's) are the host's again */
  if (own_pidns >= 0 && pid > 0) {
    int r = setns(own_pidns, CLONE_NEWPID);
    step("the monitor's later children are the host's again", r, "setns(own pid namespace, CLONE_NEWPID)");
    if (r < 0) note("setns back to our pid namespace: %s", strerror(errno));
    close(own_pidns);
  }
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, &(sigset_t){0}, NULL);
    setsid(); /* the init leads its own session, as runc's does */
    execv(program[0], program);
    dprintf(2, "mycontainer-monitor: exec %s: %s\n", program[0], strerror(errno));
    _exit(127);
  }
  child = pid;
  for (int i = 0; i < nrestore; i++) {
    long flag = strtol(restore[i], NULL, 0);
    int fd = atoi(strchr(restore[i], ':') + 1);
    int r = setns(fd, (int)flag);
    const char *name = flag == CLONE_NEWNS ? "CLONE_NEWNS" : flag == CLONE_NEWUTS ? "CLONE_NEWUTS" : flag == CLONE_NEWIPC ? "CLONE_NEWIPC"
                     : flag == CLONE_NEWNET ? "CLONE_NEWNET" : flag == CLONE_NEWCGROUP ? "CLONE_NEWCGROUP" : flag == CLONE_NEWPID ? "CLONE_NEWPID" : "?";
    step("back to the host's namespace: the container's are the init's alone", r, "setns(%d, %s)", fd, name);
    if (r < 0) {
      dprintf(launch_fd, "error mycontainer-monitor: setns back to the host's namespace 0x%lx: %s\n", flag, strerror(errno));
      kill(pid, SIGKILL);
      _exit(1);
    }
    close(fd);
  }
  if (chdir("/") < 0) note("chdir /: %s", strerror(errno));
  debug_fd = -1; /* the rest is no step of the launch */
  /* Not the container's stdio: our copies would keep its pipes open. */
  if (diag_fd >= 0) dup2(diag_fd, 2), close(diag_fd);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) dup2(null, 0), dup2(null, 1), close(null);
  dprintf(launch_fd, "pid %d\n", pid);
  close(launch_fd);
  DIR *d = opendir("/proc/self/fd");
  int dfd = d ? dirfd(d) : -1;
  int doomed[256], ndoomed = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL && ndoomed < 256) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd <= 2 || fd == dfd || keep_fd(fd)) continue;
    doomed[ndoomed++] = fd;
  }
  if (d) closedir(d);
  for (int i = 0; i < ndoomed; i++) close(doomed[i]);
}

int main(int argc, char **argv) {
  char **exit_argv = NULL;
  int nexit = 0;
  int launch_fd = -1, launch_argc = 0, diag_fd = -1, nrestore = 0;
  const char *restore[16];
  const char *pidns = NULL;
  int debug = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--")) {
      exit_argv = argv + i + 1;
      nexit = argc - i - 1;
      break;
    }
    if (!v) {
      dprintf(2, "mycontainer-monitor: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--id")) id = v;
    else if (!strcmp(a, "--pid")) child = (pid_t)parse_fd(v);
    else if (!strcmp(a, "--stdout")) src_fd[0] = parse_fd(v);
    else if (!strcmp(a, "--stderr")) src_fd[1] = parse_fd(v);
    else if (!strcmp(a, "--pty")) src_fd[0] = stdin_fd = parse_fd(v), is_pty = 1;
    else if (!strcmp(a, "--stdin")) stdin_fd = parse_fd(v);
    else if (!strcmp(a, "--listen")) listen_fd = parse_fd(v);
    else if (!strcmp(a, "--client")) {
      const char *flags = strchr(v, ':');
      add_client(parse_fd(v), flags && strchr(flags, 'h') != NULL, flags && strchr(flags, 'i') != NULL);
    } else if (!strcmp(a, "--log")) log_path = v;
    else if (!strcmp(a, "--launch")) launch_fd = parse_fd(v);
    else if (!strcmp(a, "--launch-argc")) launch_argc = atoi(v);
    else if (!strcmp(a, "--control")) control_fd = parse_fd(v), confirmed = 0;
    else if (!strcmp(a, "--console")) console_fd = parse_fd(v);
    else if (!strcmp(a, "--diag")) diag_fd = parse_fd(v);
    else if (!strcmp(a, "--pidns")) pidns = v;
    else if (!strcmp(a, "--debug")) debug = atoi(v);
    else if (!strcmp(a, "--restore")) {
      if (nrestore < 16) restore[nrestore++] = v;
    }
    else if (!strcmp(a, "--log-max-size")) log_max_size = atoll(v);
    else if (!strcmp(a, "--log-max-files")) log_max_files = atoll(v);
    else {
      dprintf(2, "mycontainer-monitor: unknown option %s\n", a);
      return 2;
    }
  }
  char **program = NULL;
  if (launch_fd >= 0) {
    if (launch_argc <= 0 || launch_argc >= nexit) {
      dprintf(2, "mycontainer-monitor: --launch needs --launch-argc N and the program before the exit command\n");
      return 2;
    }
    program = exit_argv;
    exit_argv += launch_argc;
    nexit -= launch_argc;
    child = 1; /* set by launch() */
  }
  if (child <= 0 || !log_path || !exit_argv || nexit == 0) {
    dprintf(2, "usage: mycontainer-monitor --pid N --log PATH [--stdout FD --stderr FD | --pty FD] [--stdin FD] [--listen FD] [--client FD:FLAGS]... -- EXIT-COMMAND...\n");
    return 2;
  }
  /* Node ignored these; the container gets its signals through `kill` */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_SETMASK, &chld, NULL); /* exactly SIGCHLD blocked, whatever Node's thread had */
  if (program) {
    if (debug) debug_fd = launch_fd;
    char *prog[launch_argc + 1];
    memcpy(prog, program, sizeof(char *) * (size_t)launch_argc);
    prog[launch_argc] = NULL;
    launch(prog, launch_fd, diag_fd, restore, nrestore, pidns);
  }
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    note("signalfd: %s", strerror(errno));
    return 1;
  }
  log_fd = log_open();
  if (log_fd < 0) note("cannot open the log %s: %s", log_path, strerror(errno));
  for (int w = 0; w < 2; w++)
    if (src_fd[w] >= 0) fcntl(src_fd[w], F_SETFL, fcntl(src_fd[w], F_GETFL) | O_NONBLOCK), fcntl(src_fd[w], F_SETFD, FD_CLOEXEC);
  if (stdin_fd >= 0) fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK), fcntl(stdin_fd, F_SETFD, FD_CLOEXEC);
  if (listen_fd >= 0) fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK), fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
  if (console_fd >= 0) fcntl(console_fd, F_SETFL, fcntl(console_fd, F_GETFL) | O_NONBLOCK);
  if (control_fd >= 0) fcntl(control_fd, F_SETFL, fcntl(control_fd, F_GETFL) | O_NONBLOCK);
  reap(); /* it may have exited before we were exec'd: its zombie waits */

  long long drain_until = -1;
  for (;;) {
    if (exited && drain_until < 0) drain_until = now_ms() + 2000;
    int drained = exited && ((src_fd[0] < 0 && src_fd[1] < 0) || now_ms() >= drain_until);
    if (drained && confirmed) break;
    struct pollfd pf[6 + MAX_CLIENTS];
    int n = 0;
    pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    for (int w = 0; w < 2; w++) pf[n++] = (struct pollfd){.fd = drained ? -1 : src_fd[w], .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = console_fd, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = control_fd, .events = POLLIN};
    int stdin_slot = -1;
    if (stdin_fd >= 0 && (pending.len > 0 || stdin_eof)) {
      stdin_slot = n;
      pf[n++] = (struct pollfd){.fd = stdin_fd, .events = POLLOUT};
    }
    int base = n;
    for (int i = 0; i < nclients; i++) {
      short ev = clients[i].out.len > 0 ? POLLOUT : 0;
      if (pending.len < MAX_STDIN_BACKLOG) ev |= POLLIN; /* else: backpressure */
      pf[n++] = (struct pollfd){.fd = clients[i].fd, .events = ev};
    }
    long long left = drain_until - now_ms();
    int timeout = !exited || drained ? -1 : left > 0 ? (int)left : 0;
    if (poll(pf, (nfds_t)n, timeout) < 0) {
      if (errno == EINTR) continue;
      note("poll: %s", strerror(errno));
      return 1;
    }
    if (pf[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      reap();
    }
    for (int w = 0; w < 2; w++)
      if (src_fd[w] >= 0 && pf[2 + w].revents) source_read(w);
    if (console_fd >= 0 && pf[4].revents) console_read();
    if (control_fd >= 0 && pf[5].revents) control_read();
    if (stdin_slot >= 0 && stdin_fd >= 0 && pf[stdin_slot].revents) stdin_write();
    /* clients, from the last: drop_client moves the last one into the hole */
    for (int i = nclients - 1; i >= 0; i--) {
      short re = pf[base + i].revents;
      if (!re) continue;
      if (re & POLLOUT) client_flush(&clients[i]);
      if ((re & (POLLIN | POLLHUP | POLLERR)) && client_read(&clients[i]) < 0) drop_client(i);
    }
    if (stdin_fd >= 0 && (pending.len > 0 || stdin_eof)) stdin_write();
    if (listen_fd >= 0 && pf[1].revents & POLLIN) {
      int fd;
      while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) add_client(fd, 0, 0);
    }
  }

  /* What clients still have to read, then back to Node with the status and the sockets. */
  long long flush_until = now_ms() + 1000;
  for (int i = 0; i < nclients; i++) {
    while (clients[i].out.len > 0 && now_ms() < flush_until) {
      struct pollfd p = {.fd = clients[i].fd, .events = POLLOUT};
      if (poll(&p, 1, (int)(flush_until - now_ms())) <= 0 || (p.revents & (POLLERR | POLLHUP))) break;
      client_flush(&clients[i]);
    }
  }
  if (attached && control_fd >= 0) {
    /*
     * A foreground `run` waits on the other end: it handles the exit in its
     * own process ("done"), or leaves it to the exit command ("yours", or
     * EOF if it died), e.g. for a restart policy.
     */
    char msg[64];
    int len = snprintf(msg, sizeof msg, "exited %d\n", status);
    fcntl(control_fd, F_SETFL, fcntl(control_fd, F_GETFL) & ~O_NONBLOCK);
    char reply[64] = "";
    if (write_all(control_fd, msg, (size_t)len) == 0) {
      ssize_t r;
      while ((r = read(control_fd, reply, sizeof reply - 1)) < 0 && errno == EINTR) {
      }
      reply[r > 0 ? r : 0] = 0;
    }
    if (strstr(reply, "done")) return 0;
  }
  char **av = calloc((size_t)nexit + 5 + 2 * (size_t)nclients + 1, sizeof *av);
  char num[3][32];
  int k = 0;
  for (int i = 0; i < nexit; i++) av[k++] = exit_argv[i];
  snprintf(num[0], sizeof num[0], "%d", status);
  av[k++] = "--status";
  av[k++] = num[0];
  if (listen_fd >= 0) {
    fcntl(listen_fd, F_SETFD, 0);
    snprintf(num[1], sizeof num[1], "%d", listen_fd);
    av[k++] = "--listen";
    av[k++] = num[1];
  }
  for (int i = 0; i < nclients; i++) {
    char *s = malloc(32);
    snprintf(s, 32, "%d:%s%s", clients[i].fd, clients[i].hello ? "h" : "", clients[i].stdin_ok ? "i" : "");
    fcntl(clients[i].fd, F_SETFL, fcntl(clients[i].fd, F_GETFL) & ~O_NONBLOCK);
    fcntl(clients[i].fd, F_SETFD, 0);
    av[k++] = "--client";
    av[k++] = s;
  }
  av[k] = NULL;
  if (log_fd >= 0) close(log_fd);
  sigprocmask(SIG_SETMASK, &(sigset_t){0}, NULL); /* Node must see its children's SIGCHLD */
  signal(SIGINT, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  execv(av[0], av);
  note("the container exited with %d, and the exit command %s cannot run: %s", status, av[0], strerror(errno));
  return 1;
}
