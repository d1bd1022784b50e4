#!/usr/bin/python3
"""Summarises testssl.sh's flat JSON (one file per certificate type) for bench/tls-audit.sh: offered protocols,
offered cipher suites per protocol, and every finding testssl rates above OK. Prints the summary, then the full
testssl output (--log); --json-out keeps the findings of every run in one file. Standard library only.
"""
import argparse
import json
import re
import sys

PROTOCOLS = (('SSLv2', 'SSLv2'), ('SSLv3', 'SSLv3'), ('TLS1', 'TLS 1.0'), ('TLS1_1', 'TLS 1.1'),
             ('TLS1_2', 'TLS 1.2'), ('TLS1_3', 'TLS 1.3'))
# testssl's severities, mildest first; everything from LOW up (and WARN, a test that could not run) is listed
FLAGGED = ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL', 'WARN')
# findings that describe the throwaway test certificate, not the server's TLS configuration
CERT_IDS = re.compile(r'^(cert_|intermediate_|chain_of_trust|OCSP|DNS_CAArecord|certificate_transparency|'
                      r'cert$|certs_|pre_128cipher)', re.I)

# HTTP response headers the application (or the deployer) sets, not the server's TLS: HSTS, security headers, cookies
HEADER_IDS = re.compile(r'^(HSTS|HPKP|security_headers|banner_|cookie_|X-)', re.I)


def load(path):
    with open(path) as f:
        data = json.load(f)
    return data.get('scanResult', data) if isinstance(data, dict) else data


def summarise(label, findings):
    by_id = {f.get('id', ''): f for f in findings}
    out = {'certificate': label, 'protocols': {}, 'ciphers': {}, 'flagged': [], 'headers': [], 'certificate_notes': []}
    for key, name in PROTOCOLS:
        f = by_id.get(key)
        out['protocols'][name] = f['finding'] if f else 'not tested'
    for fid, f in by_id.items():
        m = re.match(r'^cipher-(tls1(?:_\d)?|ssl\d)_x([0-9a-f]+)$', fid, re.I)
        if m:
            proto = m.group(1).lower().replace('tls1_', 'TLS 1.').replace('tls1', 'TLS 1.0').replace('ssl', 'SSLv')
            words = f['finding'].split()
            # "TLSv1.3  x1302  TLS_AES_256_GCM_SHA384  ECDH 253  AESGCM  256  TLS_AES_256_GCM_SHA384": IANA name last
            out['ciphers'].setdefault(proto, []).append('%s (%s)' % (words[-1], words[2]) if len(words) > 3
                                                         else f['finding'])
    out['alpn'] = ', '.join(by_id[k]['finding'] for k in ('ALPN_HTTP2', 'ALPN') if k in by_id) or None
    out['cipher_order'] = by_id['cipher_order']['finding'] if 'cipher_order' in by_id else None
    out['resumption'] = '; '.join('%s %s' % (k.split('_')[-1], by_id[k]['finding'])
                                  for k in ('sessionresumption_ticket', 'sessionresumption_ID') if k in by_id)
    for f in findings:
        if f.get('severity') in FLAGGED:
            row = '%s %s: %s' % (f['severity'], f.get('id', ''), f.get('finding', ''))
            fid = f.get('id', '')
            kind = 'certificate_notes' if CERT_IDS.match(fid) else 'headers' if HEADER_IDS.match(fid) else 'flagged'
            out[kind].append(row)
    return out


def render(summaries, versions):
    lines = ['SharpWsgi TLS audit with testssl.sh (bench/tls-audit.sh)', versions, '']
    for s in summaries:
        lines.append('== %s certificate' % s['certificate'])
        lines.append('protocols: ' + '; '.join('%s %s' % kv for kv in s['protocols'].items()))
        if s['alpn']:
            lines.append('ALPN: ' + s['alpn'])
        if s['cipher_order']:
            lines.append('cipher order: ' + s['cipher_order'])
        if s['resumption']:
            lines.append('TLS 1.2 session resumption: ' + s['resumption'])
        for proto, suites in sorted(s['ciphers'].items()):
            lines.append('ciphers %s (%d): %s' % (proto, len(suites), ', '.join(suites)))
        if not s['ciphers']:
            lines.append('ciphers: none parsed from the JSON (see the full output below)')
        for kind, title in (('flagged', 'findings above OK about the server\'s TLS'),
                            ('headers', 'HTTP headers (the app\'s or the deployer\'s choice, not TLS)'),
                            ('certificate_notes', 'about the throwaway self-signed certificate (expected)')):
            lines.append('%s (%d):' % (title, len(s[kind])))
            lines.extend('  ' + r for r in s[kind]) if s[kind] else lines.append('  none')
        lines.append('')
    return '\n'.join(lines)


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument('runs', nargs='+', help='LABEL=testssl.json (ec=..., rsa=...)')
    p.add_argument('--versions', default='')
    p.add_argument('--log', help='testssl\'s full output, appended after the summary')
    p.add_argument('--json-out', help='write every run\'s findings and summary here')
    a = p.parse_args(argv)
    labels = {'ec': 'EC P-256', 'rsa': 'RSA 2048'}
    summaries, raw = [], {}
    for run in a.runs:
        key, path = run.split('=', 1)
        findings = load(path)
        raw[key] = findings
        summaries.append(summarise(labels.get(key, key), findings))
    text = render(summaries, a.versions)
    print(text)
    if a.log:
        print('=' * 100)
        print('testssl.sh output\n')
        with open(a.log, errors='replace') as f:
            print(f.read().rstrip())
    if a.json_out:
        with open(a.json_out, 'w') as f:
            json.dump({'versions': a.versions, 'summary': summaries, 'findings': raw}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
