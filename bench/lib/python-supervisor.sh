#!/bin/sh
# The alternative layout bench/lib/layout.py measured: the supervisor itself in python, which loads dist/_sharpwsgi.so
# as the extension module and calls serve() in the supervisor role (its workers load the same library).
lib="$(cd "$(dirname "$0")/../.." && pwd)/dist/_sharpwsgi.so"
export SHARPWSGI_WORKER_LIBRARY="$lib"
exec /usr/bin/python3 -c '
import sys
from importlib.machinery import ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
lib = sys.argv.pop(1)
m = module_from_spec(spec_from_file_location("_sharpwsgi", lib, loader=ExtensionFileLoader("_sharpwsgi", lib)))
sys.exit(m.serve(sys.argv[1:]))' "$lib" "$@"
