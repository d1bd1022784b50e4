using System.IO.Pipes;

namespace SharpWsgi;

/// <summary>
/// A worker's pipe to its supervisor, both ends: the worker writes <see cref="WorkerMessage"/> lines; the
/// supervisor reads them with <see cref="Read"/>. If the supervisor is gone (a write fails) the worker exits:
/// an orphaned worker must not go on serving unsupervised.
/// </summary>
public sealed class ControlChannel
{
    private readonly Stream? _pipe;
    private readonly object _gate = new();

    private ControlChannel(Stream? pipe) => _pipe = pipe;

    /// <summary>The worker's end, from its environment; one that sends nothing when there is no supervisor.</summary>
    public static ControlChannel FromEnvironment()
    {
        var handle = WorkerProtocol.Take(WorkerProtocol.ControlFdVariable);
        if (string.IsNullOrEmpty(handle)) return new ControlChannel(null);
        return new ControlChannel(new AnonymousPipeClientStream(PipeDirection.Out, handle));
    }

    public void Send(WorkerMessage message)
    {
        if (_pipe == null) return;
        var bytes = message.Encode();
        lock (_gate)
        {
            try
            {
                _pipe.Write(bytes);
                _pipe.Flush();
            }
            catch (IOException)
            {
                Console.Error.WriteLine($"[sharpwsgi worker {Environment.ProcessId}] supervisor is gone; exiting");
                Environment.Exit(0);
            }
        }
    }

    /// <summary>
    /// The supervisor's end: reads the pipe until the worker closes it (exits), calling onMessage for each line.
    /// Blocking, for a thread of its own: a beat read this way allocates nothing (the supervisor stays small
    /// over months of heartbeats). An over-long line is dropped.
    /// </summary>
    public static void Read(Stream pipe, Action<WorkerMessage> onMessage)
    {
        var buffer = new byte[4096];
        int filled = 0;
        bool skipping = false; // inside a line longer than the buffer
        try
        {
            int n;
            while ((n = pipe.Read(buffer, filled, buffer.Length - filled)) > 0)
            {
                var start = 0;
                var end = filled + n;
                for (int i = filled; i < end; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    if (!skipping) onMessage(WorkerMessage.Parse(buffer.AsSpan(start, i - start)));
                    skipping = false;
                    start = i + 1;
                }
                filled = end - start;
                if (filled == buffer.Length) { skipping = true; filled = 0; }
                else if (start > 0) Buffer.BlockCopy(buffer, start, buffer, 0, filled);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
    }
}
