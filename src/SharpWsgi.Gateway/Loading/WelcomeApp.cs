namespace SharpWsgi.Gateway;

/// <summary>The app served when no APP is given: a small page with the versions and this request's environ.</summary>
internal static class WelcomeApp
{
    public const string Source = """"
import html, sys

SERVER_VERSION = "?"

def application(environ, start_response):
    rows = "".join(
        "<tr><th>%s</th><td>%s</td></tr>" % (html.escape(str(k)), html.escape(repr(environ[k])))
        for k in sorted(environ))
    body = ("""<!doctype html>
<html><head><meta charset="utf-8"><title>SharpWsgi</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}th{text-align:left;padding-right:1rem;vertical-align:top}
td{font-family:monospace;word-break:break-all}</style></head>
<body><h1>SharpWsgi is running</h1>
<p>SharpWsgi %s serving the built-in welcome app with Python %s.</p>
<p>Serve your own WSGI app with <code>sharpwsgi module:application</code>.</p>
<h2>This request's environ</h2><table>%s</table></body></html>
""" % (html.escape(SERVER_VERSION), html.escape(sys.version.split()[0]), rows)).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
"""";
}
