using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

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

    public static void AddTo(IServiceCollection services)
    {
        services.AddMetrics();
        new KestrelServices(services).UseKestrelCore();
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
