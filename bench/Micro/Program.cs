using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace SharpWsgi.Micro;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet, in process (the embedded interpreter is initialised once per process; each benchmark
    /// holds the GIL on its own thread). Default job: a short run; pass BenchmarkDotNet options to change it
    /// (e.g. --filter '*Input*', --job medium).
    /// </summary>
    public static int Main(string[] args)
    {
        IConfig config = DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default)
            .WithOptions(ConfigOptions.JoinSummary);
        // Always in process: a job chosen on the command line (--job dry, --job medium) runs in process too.
        if (args.Any(a => a is "-j" or "--job")) args = args.Append("--inProcess").ToArray();
        else config = config.AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("ShortRun-InProcess"));
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
