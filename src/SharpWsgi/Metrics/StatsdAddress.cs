using System.Globalization;
using SharpWsgi.Logging;

namespace SharpWsgi.Metrics;

/// <summary>
/// --statsd-host, with gunicorn's spellings: HOST:PORT, HOST (port 8125), [IPv6]:PORT for UDP, or unix://PATH
/// (also unix:PATH) for a unix datagram socket.
/// </summary>
public sealed record StatsdAddress(bool IsUnix, string PathOrHost, int Port)
{
    public const int DefaultPort = 8125;

    /// <summary>Null when <paramref name="text"/> is an address, else why not (for the settings registry).</summary>
    public static string? Validate(string text)
    {
        try
        {
            Parse(text);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message + " (expected HOST:PORT or unix://PATH)";
        }
    }

    public static StatsdAddress Parse(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = text.StartsWith("unix://", StringComparison.Ordinal) ? text[7..] : text[5..];
            if (path.Length == 0) throw new FormatException("unix:// needs a socket path");
            // gunicorn reads unix:NUMBER as the host "unix" and that port, not as a path.
            if (!text.StartsWith("unix://", StringComparison.Ordinal) && path.All(char.IsAsciiDigit))
                return new StatsdAddress(false, "unix", int.Parse(path, CultureInfo.InvariantCulture));
            return new StatsdAddress(true, path, 0);
        }
        if (text.Contains("://")) throw new FormatException($"'{text}' has a scheme statsd does not speak");
        var (host, port) = SyslogAddress.SplitHostPort(text, DefaultPort);
        return new StatsdAddress(false, host, port);
    }

    public override string ToString() =>
        IsUnix ? "unix://" + PathOrHost : PathOrHost.Contains(':') ? $"[{PathOrHost}]:{Port}" : $"{PathOrHost}:{Port}";
}
