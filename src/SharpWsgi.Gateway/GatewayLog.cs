namespace SharpWsgi.Gateway;

public enum GatewayLogLevel { Debug, Information, Warning, Error, Critical }

/// <summary>
/// Where the gateway's messages go. The gateway references no logging framework: the host adapts this to its own
/// (ILogger in the server), and the unit tests record the lines.
/// </summary>
public interface IGatewayLog
{
    bool IsEnabled(GatewayLogLevel level);
    void Write(GatewayLogLevel level, string message);
}

public static class GatewayLogExtensions
{
    public static void Debug(this IGatewayLog log, string message) => log.Write(GatewayLogLevel.Debug, message);
    public static void Info(this IGatewayLog log, string message) => log.Write(GatewayLogLevel.Information, message);
    public static void Warning(this IGatewayLog log, string message) => log.Write(GatewayLogLevel.Warning, message);
    public static void Error(this IGatewayLog log, string message) => log.Write(GatewayLogLevel.Error, message);
    public static void Critical(this IGatewayLog log, string message) => log.Write(GatewayLogLevel.Critical, message);
}
