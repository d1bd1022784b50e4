using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Hosting;

/// <summary>
/// Kestrel's own services (its metrics, which UseHttps asks for) without a web host: Kestrel registers them through
/// <c>UseKestrelCore</c> on an IWebHostBuilder, so this builder only hands its ConfigureServices calls on to a
/// service collection. The server itself is still built directly (<see cref="ServerHost"/>).
/// </summary>
internal sealed class KestrelServices : IWebHostBuilder
{
    private readonly IServiceCollection _services;
    private readonly WebHostBuilderContext _context = new() { Configuration = new ConfigurationBuilder().Build() };

    private KestrelServices(IServiceCollection services) => _services = services;

    /// <summary>The server's service provider: the error log's loggers and Kestrel's own services.</summary>
    public static IServiceProvider Build(ILoggerFactory loggers)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddMetrics();
        new KestrelServices(services).UseKestrelCore();
        return services.BuildServiceProvider();
    }

#pragma warning disable ASPDEPR008 // IWebHostBuilder.Build must be declared; it is never called
    public IWebHost Build() => throw new NotSupportedException("only collects Kestrel's service registrations");
#pragma warning restore ASPDEPR008
    public IWebHostBuilder ConfigureAppConfiguration(Action<WebHostBuilderContext, IConfigurationBuilder> configure) =>
        this;
    public IWebHostBuilder ConfigureServices(Action<IServiceCollection> configure)
    {
        configure(_services);
        return this;
    }
    public IWebHostBuilder ConfigureServices(Action<WebHostBuilderContext, IServiceCollection> configure)
    {
        configure(_context, _services);
        return this;
    }
    public string? GetSetting(string key) => null;
    public IWebHostBuilder UseSetting(string key, string? value) => this;
}
