// Installed setuid root in the rootfs: prints who it runs as, and the
// capabilities and no_new_privs flag the kernel gave it at execve.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  char line[256];
  printf("suid-probe: uid=%d euid=%d", getuid(), geteuid());
  FILE *f = fopen("/proc/self/status", "r");
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "NoNewPrivs:", 11)) {
      line[strcspn(line, "\n")] = 0;
      for (char *p = line; *p; p++) if (*p == '\t') *p = ' ';
      printf(" %s", line);
    }
  }
  printf("\n");
  return geteuid() == 0 ? 0 : 1;
}
