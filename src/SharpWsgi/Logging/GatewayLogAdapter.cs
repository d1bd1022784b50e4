using Microsoft.Extensions.Logging;
using SharpWsgi.Gateway;

namespace SharpWsgi.Logging;

/// <summary>The gateway's log port, written to an ILogger of the error log.</summary>
public sealed class GatewayLogAdapter : IGatewayLog
{
    private readonly ILogger _logger;
    public GatewayLogAdapter(ILogger logger) => _logger = logger;

    private static LogLevel Map(GatewayLogLevel level) => level switch
    {
        GatewayLogLevel.Debug => LogLevel.Debug,
        GatewayLogLevel.Information => LogLevel.Information,
        GatewayLogLevel.Warning => LogLevel.Warning,
        GatewayLogLevel.Error => LogLevel.Error,
        _ => LogLevel.Critical,
    };

    public bool IsEnabled(GatewayLogLevel level) => _logger.IsEnabled(Map(level));

    public void Write(GatewayLogLevel level, string message)
    {
        var mapped = Map(level);
        if (_logger.IsEnabled(mapped)) _logger.Log(mapped, "{Message}", message);
    }
}
