/*
 * The `sharpwsgi` command: a small launcher for SharpWsgi's native library (_sharpwsgi.so, NativeAOT), which
 * holds the whole server. The same library is the workers' CPython extension module: the supervisor that this
 * launcher runs starts each worker as the chosen python, which loads it. The library is found beside this
 * executable (dist/, a copied pair) or in ../lib/sharpwsgi/ (a wheel's venv/bin + venv/lib, the .deb's /usr).
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*sharpwsgi_main_fn)(int argc, char **argv, const char *library);

static const char *const candidates[] = {"_sharpwsgi.so", "../lib/sharpwsgi/_sharpwsgi.so"};

int main(int argc, char **argv)
{
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
