/*
 * mycontainer-nsexec: the one step a multi-threaded Node process cannot take.
 *
 * The kernel lets only a single-threaded process enter a new user namespace
 * (unshare(CLONE_NEWUSER) and setns() to a user namespace return EINVAL
 * otherwise), and Node always runs several threads. So the runtime spawns
 * this small program instead of its init; it enters the user namespace,
 * lets the runtime write the id maps, creates the other namespaces inside it
 * (so that the user namespace owns them), forks PID 1 when a new pid
 * namespace is asked for, reports that pid, and execs the init.
 *
 * It makes no decision: the flags, the namespace paths, the seal's target
 * and mount flags come from the runtime (runtime/linux/spawn.ts), which
 * also writes the maps.
 *
 * usage: mycontainer-nsexec SYNC_FD CLONE_FLAGS USERNS_PATH|- SEAL_TARGET|- SEAL_FLAGS [JOIN...] -- PROGRAM [ARGS...]
 *
 * JOIN (rootless): FLAG:PATH, a namespace setns()ed into once inside the
 * user namespace; joining a pid namespace means forking, as a new one does.
 *
 * SEAL_TARGET (rootless): an empty file PROGRAM is bind-mounted onto, then
 * remounted with SEAL_FLAGS (read-only), in the new mount namespace; the
 * init is executed from there.
 *
 * Protocol on SYNC_FD (a unix socket, one line per message):
 *   nsexec -> runtime   "maps PID\n"   write /proc/PID/{uid,gid}_map now
 *   runtime -> nsexec   "go\n"         maps are written (or "no\n": give up)
 *   nsexec -> runtime   "pid PID\n"    the init's pid, in the runtime's pid namespace
 *   nsexec -> runtime   "error MSG\n"  something failed; nsexec exits 1
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int sync_fd = -1;

static void say(const char *fmt, long v, const char *s) {
  char buf[512];
  int n = s ? snprintf(buf, sizeof buf, fmt, s) : snprintf(buf, sizeof buf, fmt, v);
  if (n > 0 && write(sync_fd, buf, (size_t)n) < 0) _exit(1);
}

static void fail(const char *what) {
  char msg[400];
  snprintf(msg, sizeof msg, "error nsexec: %s: %s\n", what, strerror(errno));
  say("%s", 0, msg);
  _exit(1);
}

int main(int argc, char **argv) {
  int dd = 6;
  while (dd < argc && strcmp(argv[dd], "--") != 0) dd++;
  if (argc < 8 || dd + 1 >= argc) {
    fprintf(stderr, "usage: %s SYNC_FD CLONE_FLAGS USERNS_PATH|- SEAL_TARGET|- SEAL_FLAGS [JOIN...] -- PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  sync_fd = atoi(argv[1]);
  long flags = strtol(argv[2], NULL, 0);
  const char *userns = argv[3];
  const char *seal = argv[4];
  unsigned long seal_flags = strtoul(argv[5], NULL, 0);
  const char *program = argv[dd + 1];

  if (strcmp(userns, "-") != 0) {
    /* Join an existing user namespace. */
    int fd = open(userns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open user namespace");
    if (setns(fd, CLONE_NEWUSER) < 0) fail("setns(CLONE_NEWUSER)");
    close(fd);
  } else if (flags & CLONE_NEWUSER) {
    if (unshare(CLONE_NEWUSER) < 0) fail("unshare(CLONE_NEWUSER)");
    /* The runtime writes our maps from outside; wait for it. */
    say("maps %ld\n", (long)getpid(), NULL);
    char buf[8] = {0};
    ssize_t n = read(sync_fd, buf, sizeof buf - 1);
    if (n <= 0 || strncmp(buf, "go", 2) != 0) _exit(1);
  }
  /* Become root of the user namespace (uid 0 must be mapped). */
  if (setresgid(0, 0, 0) < 0) fail("setresgid(0)");
  if (setresuid(0, 0, 0) < 0) fail("setresuid(0)");

  /* Rootless: setns() to namespaces the user namespace owns needs its capabilities, which only we have. */
  int joined_pid = 0;
  for (int i = 6; i < dd; i++) {
    char *path;
    long nsflag = strtol(argv[i], &path, 0);
    int fd = *path == ':' ? open(path + 1, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 || setns(fd, (int)nsflag) < 0) fail(argv[i]);
    close(fd);
    if (nsflag == CLONE_NEWPID) joined_pid = 1;
  }

  long rest = flags & ~(long)CLONE_NEWUSER;
  if (rest && unshare((int)rest) < 0) fail("unshare(namespaces)");

  if (strcmp(seal, "-") != 0) {
    /* Rootless: only inside the user namespace may this mount namespace be changed (see README). */
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail("seal: make / rslave");
    if (mount(program, seal, NULL, MS_BIND, NULL) < 0) fail("seal: bind the init's program");
    if (mount(NULL, seal, NULL, seal_flags, NULL) < 0) fail("seal: remount it read-only");
    program = seal;
  }

  if ((rest & CLONE_NEWPID) || joined_pid) {
    /* The first child of a new pid namespace is its PID 1, a child of a joined one is in it: fork. */
    pid_t pid = fork();
    if (pid < 0) fail("fork");
    if (pid > 0) {
      say("pid %ld\n", (long)pid, NULL);
      _exit(0);
    }
    /* The init leads its own session, as runc's does (and TIOCSCTTY needs it). */
    setsid();
  } else {
    say("pid %ld\n", (long)getpid(), NULL);
  }
  close(sync_fd);
  execv(program, &argv[dd + 1]);
  /* The runtime has the pid already; the init's own channel reports nothing, so say it here. */
  fprintf(stderr, "mycontainer-nsexec: exec %s: %s\n", program, strerror(errno));
  return 127;
}
