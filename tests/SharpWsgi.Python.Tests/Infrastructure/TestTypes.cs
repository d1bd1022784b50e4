namespace SharpWsgi.Python.Tests.Infrastructure;

/// <summary>
/// Managed Python types shared by the tests (a type lives for the process, so each is created once,
/// on first use with the GIL held; the tests run one at a time).
/// </summary>
public static class TestTypes
{
    private static ManagedType? _callable;

    /// <summary>tests.Callable: instances are callable (<see cref="IPyCallable"/>).</summary>
    public static ManagedType Callable
        => _callable ??= ManagedType.Create("tests.Callable", "a C# callable", callable: true, iterator: false);
}
