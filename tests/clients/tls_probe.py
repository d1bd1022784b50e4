"""Tries one TLS handshake with Python's ssl (OpenSSL) and prints the outcome as JSON: what a client of a given
protocol version or cipher suite gets from the server. Used by the TLS tests for the cases .NET's own client cannot
offer (TLS 1.0/1.1, weak suites).

usage: tls_probe.py PORT CAFILE [--version 1.0|1.1|1.2|1.3] [--ciphers OPENSSL_CIPHER_STRING]
"""
import argparse
import warnings
import json
import socket
import ssl

warnings.simplefilter("ignore")  # TLSVersion.TLSv1 is deprecated: that is the point
parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("cafile")
parser.add_argument("--version")
parser.add_argument("--ciphers")
args = parser.parse_args()

context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(args.cafile)
versions = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2,
            "1.3": ssl.TLSVersion.TLSv1_3}
if args.version:
    # Security level 0 lets this client offer what Debian's OpenSSL would refuse on its own: the server must refuse.
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = versions[args.version]
if args.ciphers:
    context.set_ciphers(args.ciphers + ":@SECLEVEL=0")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            print(json.dumps({"ok": True, "version": tls.version(), "cipher": tls.cipher()[0],
                              "status": answer.split(b" ", 2)[1].decode()}))
except (ssl.SSLError, OSError) as e:
    print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
