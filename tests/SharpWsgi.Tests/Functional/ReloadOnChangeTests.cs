using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

public class ReloadOnChangeTests
{
    [Fact]
    public void Reload_AppFileChanges_NewWorkerServesTheNewCode()
    {
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-reload-");
        var app = Path.Combine(dir.FullName, "app.py");
        const string template = "V = b'{0}'\ndef application(environ, start_response):\n" +
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [V]\n";
        File.WriteAllText(app, string.Format(template, "before"));
        try
        {
            using var server = ServerProcess.Start(new[] { "--reload", app });
            using (var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
                Assert.Equal("before", client.GetStringAsync(server.BaseUri).GetAwaiter().GetResult());

            File.WriteAllText(app, string.Format(template, "after"));
            var stopping = server.WaitForOutput(@"Stopping worker \(pid: \d+\): replaced by \d+",
                TimeSpan.FromSeconds(60));
            var oldPid = System.Text.RegularExpressions.Regex.Match(stopping, @"pid: (\d+)").Groups[1].Value;
            server.WaitForOutput($@"Worker exited \(pid: {oldPid}", TimeSpan.FromSeconds(60));
            using var fresh = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            Assert.Equal("after", fresh.GetStringAsync(server.BaseUri).GetAwaiter().GetResult());
        }
        finally { dir.Delete(recursive: true); }
    }
}
