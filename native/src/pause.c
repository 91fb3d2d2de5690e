/*
 * mycontainer-pause: the process that holds a pod's namespaces, as
 * Kubernetes' pause does. It is PID 1 of the pod's pid namespace when the
 * pod shares one, so it reaps orphans; SIGTERM and SIGINT end it. It holds
 * no policy: the CRI server decides its namespaces and cgroup.
 * Built static so that its rootfs is this one file.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
  return 1;
}
