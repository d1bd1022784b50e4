namespace SharpWsgi.Gateway;

/// <summary>
/// The app served when no APP is given: a page saying the server works, the next steps (serving your own app,
/// Flask, Django, checking a deployment, where the docs are) and this request's environ. Self-contained: inline
/// CSS, no scripts, fonts or images, so it renders the same offline and behind any proxy.
/// </summary>
internal static class WelcomeApp
{
    // Placeholders are @NAME@ rather than %-formatting, so the CSS may use % freely.
    public const string Source = """"
import html, sys

SERVER_VERSION = "?"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SharpWsgi is running</title>
<style>
:root{--bg:#f6f7f9;--card:#fff;--text:#1d2330;--muted:#5b6475;--accent:#2f6fdb;--line:#e2e5ea;
--code-bg:#1e2430;--code-text:#e8ecf3}
@media (prefers-color-scheme:dark){:root{--bg:#14171d;--card:#1c2029;--text:#e4e7ec;--muted:#a0a8b8;
--accent:#7aa7ff;--line:#2c3240;--code-bg:#0e1116;--code-text:#dfe5ef}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);line-height:1.5;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{background:linear-gradient(135deg,#2f6fdb,#6a3fd4);color:#fff;padding:2.5rem 0}
header .wrap{padding:0 1.5rem}
header .wrap,main{max-width:60rem;margin:0 auto}
header h1{margin:0 0 .4rem;font-size:2rem}
header p{margin:0;opacity:.9}
.badge{display:inline-block;background:rgba(255,255,255,.18);border-radius:999px;padding:.1rem .7rem;
margin-right:.4rem;font-size:.9rem}
main{padding:1.5rem}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1.2rem 1.5rem;
margin-bottom:1.5rem}
h2{margin:0 0 .8rem;font-size:1.35rem}
h3{margin:1.2rem 0 .4rem;font-size:1.05rem}
p{margin:.4rem 0}
a{color:var(--accent)}
pre{background:var(--code-bg);color:var(--code-text);border-radius:6px;padding:.7rem 1rem;overflow-x:auto;
margin:.4rem 0 .8rem}
code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.92em}
.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-top:1px solid var(--line);padding:.3rem .5rem;vertical-align:top;text-align:left}
th{white-space:nowrap;font-weight:600}
td{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;word-break:break-all}
</style></head>
<body>
<header><div class="wrap">
<h1>SharpWsgi is running</h1>
<p><span class="badge">SharpWsgi @VERSION@</span><span class="badge">Python @PYTHON@</span>
This is the built-in welcome app, served because no APP was given.</p>
</div></header>
<main>
<section id="next-steps">
<h2>Next steps</h2>
<h3>Serve your own app</h3>
<p>Name the WSGI callable as <code>module:name</code>, a file, or a factory to call:</p>
<pre><code>sharpwsgi myapp:application
sharpwsgi path/to/app.py
sharpwsgi "myapp:create_app()"</code></pre>
<p class="muted">Use a virtualenv's interpreter with <code>--python .venv/bin/python</code> (or activate it first).</p>
<h3>Flask</h3>
<pre><code>sharpwsgi app:app                    # app.py with app = Flask(__name__)
sharpwsgi "myproject:create_app()"   # an application factory</code></pre>
<h3>Django</h3>
<pre><code>cd mysite &amp;&amp; sharpwsgi mysite.wsgi   # beside manage.py: mysite/wsgi.py's application</code></pre>
<h3>Before you deploy</h3>
<pre><code>sharpwsgi --check-config -c sharpwsgi.conf myapp:app   # load the app, bind nothing
sharpwsgi --print-config -c sharpwsgi.conf myapp:app   # each setting and its source
sharpwsgi --workers 4 --bind 0.0.0.0:8000 myapp:app</code></pre>
<h3>Documentation</h3>
<p><code>sharpwsgi --help</code> lists every option. In the SharpWsgi source, <code>README.md</code> links to the
guides in <code>docs/</code>: configuration, operating (workers, signals, timeouts, systemd), TLS, HTTP/2 and proxies;
<code>docs/settings.md</code> lists every setting with its environment variable and default.
The interface itself is <a href="https://peps.python.org/pep-3333/">PEP 3333</a>.</p>
</section>
<section id="environ">
<h2>This request's environ</h2>
<table>@ROWS@</table>
</section>
</main>
</body></html>
"""

def application(environ, start_response):
    rows = "".join(
        "<tr><th>%s</th><td>%s</td></tr>" % (html.escape(str(k)), html.escape(repr(environ[k])))
        for k in sorted(environ))
    page = (_PAGE.replace("@VERSION@", html.escape(SERVER_VERSION))
            .replace("@PYTHON@", html.escape(sys.version.split()[0]))
            .replace("@ROWS@", rows))
    body = page.encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
"""";
}
