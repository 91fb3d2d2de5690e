/*
 * mycontainer-init: what its files share (see init.c for the protocol).
 */
#ifndef MYCONTAINER_INIT_H
#define MYCONTAINER_INIT_H

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
#define OP_PAUSE 47
#define OP_FIX_STDIO 48
#define OP_MOVE_MOUNT 49

#define REPORT_EACH 1u
#define NSLOTS 64
#define SLOT_FDS_AT 128 /* see the loop in init.c */
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


/* An op's arguments: string, integer, string list. */
#define S(k) (o->a[k].s)
#define I(k) (o->a[k].i)
#define L(k) (o->a[k].list)

/* init.c: the channel, errors, the loop */
extern int sync_fd;
extern int slots[NSLOTS];
extern mode_t saved_mode;
extern char exe_path[4096];
extern unsigned prog_flags;
extern unsigned cur_index;
extern int channel_closed;
extern char detail[2048];
void say(const char *fmt, ...);
int read_full(void *buf, size_t len);
const char *errname(int e);
void die(int idx, int err, const char *message);
char *fd_path(int slot, const char *rest);

/* rootfs.c: paths inside the rootfs, mounts, files */
int make_in_root(int rootfd, const char *root, const char *unsafe, int dir, int nosymlinks, mode_t mode);
int op_open_in_root(struct op *o);
int op_check_under(struct op *o);
unsigned long statfs_to_ms(unsigned long f);
int op_remount(struct op *o);
int op_copy_tree(struct op *o);
int op_mount_setattr(struct op *o);
int op_write_file(struct op *o);
int op_find_exec(struct op *o);

/* process.c: hooks, the terminal, credentials, seccomp */
int op_hook(struct op *o);
int op_console(struct op *o);
int op_attach_console(struct op *o);
int op_setgroups(struct op *o);
int op_capset(struct op *o);
int op_reset_signals(void);
int op_seccomp(struct op *o);
int op_fix_stdio(struct op *o);
int op_cloexec_from(int first);
int op_set_cloexec(int fd, int on);

#endif
