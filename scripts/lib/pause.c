/*
 * The sandbox ("pause") process of a pod: holds the pod's namespaces open until the runtime
 * stops it. It exits 0 on SIGTERM or SIGINT and reaps any child that is re-parented to it
 * (it is PID 1 when the pod shares its PID namespace). Built static by scripts/build-images.sh
 * into localhost/mail-pressure/pause:1, because no registry's pause image can be pulled here.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
	(void)sig;
	_exit(0);
}

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

int main(int argc, char **argv) {
	struct sigaction sa;
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("pause (mail-pressure) 1");
		return 0;
	}
	if (getpid() != 1) {
		fprintf(stderr, "pause: warning: not PID 1\n");
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stop;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		return 1;
	}
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) < 0) {
		return 2;
	}
	for (;;) {
		pause();
	}
	return 42;
}
