/*
 * The `sharpwsgi` command: a small launcher for SharpWsgi's native library (_sharpwsgi.so, NativeAOT), which
 * holds the whole server. The same library is the workers' CPython extension module: the supervisor that this
 * launcher runs starts each worker as the chosen python, which loads it. The library is found beside this
 * executable (dist/, a copied pair) or in ../lib/sharpwsgi/ (a wheel's venv/bin + venv/lib, the .deb's /usr).
 * Two things are done here because they cannot be done once .NET runs: detaching for --daemon (forking a running
 * runtime is unsafe) and making room for a process title (--name) before anything reads the environment.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Set by a supervisor started with --daemon when it starts this launcher again to become the daemon
 * (src/SharpWsgi/Supervisor/Daemon.cs): the write end of the pipe on which the daemon says it is ready. */
#define DAEMON_STATUS_VARIABLE "SHARPWSGI_DAEMON_STATUS_FD"

/*
 * The classic daemon: fork (the parent exits, so the caller's wait ends and the child is no group leader), a new
 * session without a controlling terminal, fork again (no session leader, so opening a terminal can never make it
 * ours), stdin from /dev/null. stdout and stderr stay until the server is ready, so start-up problems still reach
 * the terminal; the server sends them to /dev/null (or the error log) once it serves.
 */
static int detach(void)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid > 0) _exit(0);
    if (setsid() < 0) return -1;
    pid = fork();
    if (pid < 0) return -1;
    if (pid > 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0) return -1;
    if (null > 0) close(null);
    return 0;
}

/*
 * Process titles: ps and /proc/PID/cmdline show the memory of the argument strings, and the environment strings
 * follow them. Nothing has read the environment yet, so its strings are copied to the heap and the whole stretch
 * becomes room for a title longer than the command line (nginx does the same). /proc/PID/environ shows what the
 * title overwrote, if it ever needs the room.
 */
static char *title_start, *arguments_end;
static size_t title_room;

static void prepare_title_room(int argc, char **argv)
{
    char *end = argv[0];
    for (int i = 0; i < argc && argv[i] == end; i++) end += strlen(argv[i]) + 1;
    arguments_end = end;
    for (char **variable = environ; *variable != NULL && *variable == end; variable++) {
        size_t size = strlen(*variable) + 1;
        char *copy = malloc(size);
        if (copy == NULL) break;
        memcpy(copy, *variable, size);
        *variable = copy;
        end += size;
    }
    title_start = argv[0];
    title_room = (size_t)(end - argv[0]);
}

/* Called by the supervisor (Process/ProcessTitle.cs, through dlsym): the title, cut on a UTF-8 character boundary
 * to fit. The kernel shows the whole argument area (a shorter title is NUL-padded to its end), or, when the title
 * runs past it (its last byte is no longer NUL), everything up to the first NUL. */
__attribute__((visibility("default"))) void sharpwsgi_set_title(const char *title)
{
    if (title_room == 0) return;
    size_t length = strlen(title);
    if (length >= title_room) {
        length = title_room - 1;
        while (length > 0 && ((unsigned char)title[length] & 0xC0) == 0x80) length--;
    }
    size_t arguments_room = (size_t)(arguments_end - title_start);
    memcpy(title_start, title, length);
    memset(title_start + length, 0, (length < arguments_room ? arguments_room : length + 1) - length);
}

typedef int (*sharpwsgi_main_fn)(int argc, char **argv, const char *library);

static const char *const candidates[] = {"_sharpwsgi.so", "../lib/sharpwsgi/_sharpwsgi.so"};

int main(int argc, char **argv)
{
    if (getenv(DAEMON_STATUS_VARIABLE) != NULL && detach() != 0) {
        perror("sharpwsgi: error: cannot detach from the terminal (--daemon)");
        return 1;
    }
    prepare_title_room(argc, argv);
    char self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX], library[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "sharpwsgi: error: cannot find this executable's path (/proc/self/exe): is /proc mounted?\n");
        return 1;
    }
    self[n] = '\0';
    strcpy(dir, self);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) *slash = '\0';

    library[0] = '\0';
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, candidates[i]);
        if (realpath(path, library) != NULL) break;
        library[0] = '\0';
    }
    if (library[0] == '\0') {
        fprintf(stderr, "sharpwsgi: error: SharpWsgi's library is missing: looked for %s/_sharpwsgi.so and "
                        "%s/../lib/sharpwsgi/_sharpwsgi.so. Reinstall sharpwsgi (from a clone: ./publish.sh).\n",
                dir, dir);
        return 1;
    }
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, "sharpwsgi: error: cannot load %s: %s. Reinstall sharpwsgi.\n", library, dlerror());
        return 1;
    }
    sharpwsgi_main_fn entry = (sharpwsgi_main_fn)dlsym(handle, "sharpwsgi_main");
    if (entry == NULL) {
        fprintf(stderr, "sharpwsgi: error: %s is not SharpWsgi's library (no sharpwsgi_main). Reinstall it.\n",
                library);
        return 1;
    }
    return entry(argc - 1, argv + 1, library);
}
