using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace SharpWsgi.Hosting.Tests.InMemory;

/// <summary>The end point of an in-memory listener: a name, no address.</summary>
public sealed class InMemoryEndPoint(string name) : EndPoint
{
    public override string ToString() => "inmemory:" + name;
}

/// <summary>
/// Kestrel's transport without sockets: the real KestrelServer binds its listeners here, and a test connects a client
/// whose bytes reach Kestrel through pipes. What the edge reads from a socket has no equivalent here (no
/// IConnectionSocketFeature): the delivery watchdog and the sendfile transport pass such connections through, and
/// the functional tests (tests/SharpWsgi.Tests) cover them.
/// </summary>
public sealed class InMemoryTransport : IConnectionListenerFactory
{
    private readonly ConcurrentDictionary<EndPoint, Listener> _listeners = new();

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = new Listener(endpoint);
        if (!_listeners.TryAdd(endpoint, listener))
            throw new InvalidOperationException($"{endpoint} is bound already");
        return ValueTask.FromResult<IConnectionListener>(listener);
    }

    /// <summary>A new connection to the listener at <paramref name="endpoint"/>, as if from
    /// <paramref name="peer"/>; null when nothing listens there any more.</summary>
    public InMemoryClient? Connect(EndPoint endpoint, IPEndPoint peer)
    {
        if (!_listeners.TryGetValue(endpoint, out var listener)) return null;
        var connection = new InMemoryConnection(peer, endpoint);
        return listener.Offer(connection) ? connection.Client : null;
    }

    private sealed class Listener(EndPoint endpoint) : IConnectionListener
    {
        private readonly Channel<InMemoryConnection> _pending = Channel.CreateUnbounded<InMemoryConnection>();

        public EndPoint EndPoint { get; } = endpoint;

        public bool Offer(InMemoryConnection connection) => _pending.Writer.TryWrite(connection);

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (await _pending.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                if (_pending.Reader.TryRead(out var connection)) return connection;
            return null; // unbound: Kestrel's accept loop ends
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _pending.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            _pending.Writer.TryComplete();
            while (_pending.Reader.TryRead(out var left)) left.Abort(new ConnectionAbortedException("not accepted"));
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// One connection as Kestrel sees it. The client's bytes go straight into Kestrel's input pipe; Kestrel's output is
/// forwarded to the client's pipe by one loop, as a socket transport's sender does, so an abort can stop it: then the
/// client reads what was flushed before, then the end, and its further writes go nowhere.
/// </summary>
internal sealed class InMemoryConnection : ConnectionContext, IConnectionIdFeature, IConnectionTransportFeature,
    IConnectionItemsFeature, IConnectionEndPointFeature, IConnectionLifetimeFeature
{
    private static int _lastId;

    // Neither direction ever pauses its writer: a test's client is never made to wait by a server that stops
    // reading, and Kestrel's own limits, not a pipe threshold, are what the tests see.
    private static readonly PipeOptions Unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0,
        useSynchronizationContext: false);

    private readonly Pipe _input = new(Unbounded);
    private readonly Pipe _output = new(Unbounded);
    private readonly Pipe _toClient = new(Unbounded);
    private readonly object _inputGate = new();
    private readonly CancellationTokenSource _closed = new();
    private readonly Task _forwarding;
    private bool _inputEnded;
    private volatile string? _abortReason;

    public InMemoryConnection(IPEndPoint peer, EndPoint local)
    {
        ConnectionId = "inmemory-" + Interlocked.Increment(ref _lastId);
        RemoteEndPoint = peer;
        LocalEndPoint = local;
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        ConnectionClosed = _closed.Token;
        Features = new FeatureCollection();
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Client = new InMemoryClient(this, _toClient.Reader);
        _forwarding = ForwardOutputAsync();
    }

    public InMemoryClient Client { get; }
    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; }
    public override IDictionary<object, object?> Items { get; set; } = new ConcurrentDictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; }
    public override CancellationToken ConnectionClosed { get; set; }

    /// <summary>Why the server aborted the connection; null while it has not.</summary>
    public string? AbortReason => _abortReason;

    /// <summary>The client's bytes; false once the server has stopped reading (a reset, as far as it knows).</summary>
    public bool Send(ReadOnlySpan<byte> bytes)
    {
        lock (_inputGate)
        {
            if (_inputEnded) return false;
            _input.Writer.Write(bytes);
            // Never pauses (see Unbounded), so the flush is done when it returns.
            var flushed = _input.Writer.FlushAsync().AsTask().GetAwaiter().GetResult();
            return !flushed.IsCompleted;
        }
    }

    /// <summary>The client's half-close (FIN): Kestrel reads the end of its input.</summary>
    public void EndInput()
    {
        lock (_inputGate)
        {
            if (_inputEnded) return;
            _inputEnded = true;
            _input.Writer.Complete();
        }
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _abortReason ??= abortReason.Message;
        EndInput();
        _output.Reader.CancelPendingRead(); // the forwarding loop stops: nothing more reaches the client
    }

    private async Task ForwardOutputAsync()
    {
        await Task.Yield(); // not on the constructor's thread
        var reader = _output.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                foreach (var segment in result.Buffer) _toClient.Writer.Write(segment.Span);
                await _toClient.Writer.FlushAsync().ConfigureAwait(false);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled) break;
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false); // Kestrel's later flushes see a closed peer
            await _toClient.Writer.CompleteAsync().ConfigureAwait(false); // the client reads the end
            ThreadPool.UnsafeQueueUserWorkItem(static c => ((CancellationTokenSource)c!).Cancel(), _closed);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        EndInput();
        _output.Reader.CancelPendingRead();
        await _forwarding.ConfigureAwait(false);
        await _input.Reader.CompleteAsync().ConfigureAwait(false);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
