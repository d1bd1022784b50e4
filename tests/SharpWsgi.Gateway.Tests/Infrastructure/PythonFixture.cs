global using SharpWsgi.Testing;

namespace SharpWsgi.Gateway.Tests.Infrastructure;

/// <summary>
/// Every test class of this project is in this one collection: the interpreter is initialised once per test run
/// (CPython cannot be initialised twice in a process) and the tests run one at a time, so the shared PEP 3333
/// objects, the logs and the GIL are not disturbed by another test.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GatewayCollection : ICollectionFixture<PythonFixture>
{
    public const string Name = "Gateway";
}

/// <summary>The collection's fixture: the embedded interpreter (<see cref="EmbeddedPython"/>).</summary>
public sealed class PythonFixture
{
    public const string Interpreter = EmbeddedPython.Interpreter;
    public PythonFixture() => EmbeddedPython.EnsureInitialized("sharpwsgi-gateway-tests");
}
