"""Builds an interpreter without a shared libpython, for the startup test of that error.

Run with a statically linked interpreter (Debian's /usr/bin/python3 links libpython into the executable):
    /usr/bin/python3 tests/apps/startup/make_static_python.py DEST
It makes DEST/bin/pythonX.Y (a copy of the running executable), DEST/lib/pythonX.Y (symlinks to the stdlib) and a
sysconfig data module saying what a --disable-shared build says: Py_ENABLE_SHARED=0, LDLIBRARY=libpythonX.Y.a and
no libpython*.so in LIBDIR. Prints the new interpreter's path. Exits 3 (and says why) when the running interpreter
is itself linked against a shared libpython, since a copy of it would then not be a static interpreter.
"""
import os
import shutil
import subprocess
import sys
import sysconfig


def main(dest):
    exe = os.path.realpath(sys.executable)
    ldd = subprocess.run(['ldd', exe], capture_output=True, text=True).stdout
    if 'libpython' in ldd:
        print(f'{exe} is linked against a shared libpython; no static interpreter to copy', file=sys.stderr)
        return 3
    ver = '%d.%d' % sys.version_info[:2]
    stdlib = sysconfig.get_paths()['stdlib']

    bindir = os.path.join(dest, 'bin')
    libdir = os.path.join(dest, 'lib')
    pylib = os.path.join(libdir, 'python' + ver)
    os.makedirs(bindir, exist_ok=True)
    os.makedirs(pylib, exist_ok=True)
    target = os.path.join(bindir, 'python' + ver)
    shutil.copy2(exe, target)
    for entry in os.listdir(stdlib):
        if entry.startswith('_sysconfigdata_') or entry == '__pycache__':
            continue
        link = os.path.join(pylib, entry)
        if not os.path.lexists(link):
            os.symlink(os.path.join(stdlib, entry), link)
    static = 'libpython%s.a' % ver
    overrides = {
        'Py_ENABLE_SHARED': 0,
        'LDLIBRARY': static,
        'INSTSONAME': static,
        'LIBRARY': static,
        'LIBDIR': libdir,
        'LIBPL': os.path.join(libdir, 'python' + ver, 'config-' + ver),
        'prefix': dest,
        'exec_prefix': dest,
        'BINDIR': bindir,
    }
    # Every sysconfig data module of the stdlib (Debian ships two names), each with the overrides appended.
    for entry in os.listdir(stdlib):
        if entry.startswith('_sysconfigdata_') and entry.endswith('.py'):
            with open(os.path.join(stdlib, entry)) as f:
                data = f.read()
            data += '\n# made by make_static_python.py: what a --disable-shared build reports\n'
            data += 'build_time_vars.update(%r)\n' % overrides
            with open(os.path.join(pylib, entry), 'w') as f:
                f.write(data)
    print(target)
    return 0


if __name__ == '__main__':
    sys.exit(main(os.path.abspath(sys.argv[1])))
