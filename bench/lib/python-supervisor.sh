#!/bin/sh
# the supervisor inside python: the same library loaded as an extension module, serve() in the supervisor role
SHARPWSGI_WORKER_LIBRARY=/work/main/dist/_sharpwsgi.so exec /usr/bin/python3 -c '
import sys
from importlib.machinery import ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
lib = "/work/main/dist/_sharpwsgi.so"
m = module_from_spec(spec_from_file_location("_sharpwsgi", lib, loader=ExtensionFileLoader("_sharpwsgi", lib)))
sys.exit(m.serve(sys.argv[1:]))' "$@"
