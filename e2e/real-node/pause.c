/*
 * The pod sandbox ("pause") process for the real test node: it holds the
 * pod's namespaces, reaps the children it inherits as PID 1, and exits on
 * SIGTERM or SIGINT. Only a fallback: scripts/build-images.sh builds the
 * project's pause image under the same reference when it is present.
 * Built with gcc -static so the image needs no libc.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGTERM, &stop, 0);
    sigaction(SIGINT, &stop, 0);
    sigaction(SIGCHLD, &child, 0);
    for (;;) {
        pause();
    }
}
