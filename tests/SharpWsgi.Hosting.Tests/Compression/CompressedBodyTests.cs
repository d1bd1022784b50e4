using System.Buffers;
using System.IO.Compression;
using System.IO.Pipelines;
using System.Text;

namespace SharpWsgi.Hosting.Tests.Compression;

/// <summary>
/// The compressor between the gateway and Kestrel (CompressedBody) against a real Pipe playing Kestrel's response
/// pipe and its client: the bytes decompress to what the app wrote, a streamed body comes out before the app is done,
/// a client that does not read makes the gateway's flush stay pending (so the gateway spools, as without
/// compression), a client that went away is reported to the gateway, and an abandoned response writes nothing more.
/// </summary>
public class CompressedBodyTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static byte[] Text(int size)
    {
        var line = Encoding.ASCII.GetBytes("<tr><td>row</td><td>a value that repeats, as HTML does</td></tr>\n");
        var bytes = new byte[size];
        for (var i = 0; i < size; i++) bytes[i] = line[i % line.Length];
        return bytes;
    }

    private static byte[] Random(int size, int seed = 5)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static void Write(PipeWriter writer, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var span = writer.GetSpan(Math.Min(data.Length, 64 * 1024));
            var n = Math.Min(span.Length, data.Length);
            data[..n].CopyTo(span);
            writer.Advance(n);
            data = data[n..];
        }
    }

    private static async Task<byte[]> ReadAllAsync(PipeReader reader)
    {
        var all = new MemoryStream();
        while (true)
        {
            var read = await reader.ReadAsync().AsTask().WaitAsync(Wait);
            foreach (var segment in read.Buffer) all.Write(segment.Span);
            reader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted) return all.ToArray();
        }
    }

    private static byte[] Decompress(string coding, byte[] compressed)
    {
        using var input = new MemoryStream(compressed);
        using Stream decoder = coding == "br"
            ? new BrotliStream(input, CompressionMode.Decompress)
            : new GZipStream(input, CompressionMode.Decompress);
        var output = new MemoryStream();
        decoder.CopyTo(output);
        return output.ToArray();
    }

    [Theory]
    [InlineData("br")]
    [InlineData("gzip")]
    public async Task EndAsync_BodyWrittenWhole_DecompressesToTheAppsBytes(string coding)
    {
        var kestrel = new Pipe();
        var body = new CompressedBody(kestrel.Writer, coding, 1 << 20);
        var app = Text(300_000);
        Write(body.Writer, app);

        Assert.True(await body.EndAsync(sendRest: true).WaitAsync(Wait));
        await kestrel.Writer.CompleteAsync();
        var wire = await ReadAllAsync(kestrel.Reader);
        Assert.Equal(app, Decompress(coding, wire));
        Assert.Equal(wire.Length, body.CompressedBytes);
        Assert.True(wire.Length < app.Length / 10, $"{wire.Length} bytes for {app.Length} of repetitive text");
    }

    [Theory]
    [InlineData("br")]
    [InlineData("gzip")]
    public async Task Flush_StreamedBody_CompressedBytesReachTheClientBeforeTheEnd(string coding)
    {
        var kestrel = new Pipe();
        var body = new CompressedBody(kestrel.Writer, coding, 1 << 20);
        // Random bytes: the compressor cannot hold them back for long.
        Write(body.Writer, Random(200_000));
        var flush = await body.Writer.FlushAsync();
        Assert.False(flush.IsCompleted);

        var early = await kestrel.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.True(early.Buffer.Length > 0);
        kestrel.Reader.AdvanceTo(early.Buffer.Start); // leave it for the full read below

        var wire = ReadAllAsync(kestrel.Reader); // the client keeps reading
        Assert.True(await body.EndAsync(sendRest: true).WaitAsync(Wait));
        await kestrel.Writer.CompleteAsync();
        Assert.Equal(Random(200_000), Decompress(coding, await wire));
    }

    [Fact]
    public async Task Flush_ClientNotReading_GatewayFlushStaysPendingUntilItReads()
    {
        // Kestrel's pipe holds 64 KB for a client that reads nothing; ours holds 128 KB in front of the compressor.
        var kestrel = new Pipe(new PipeOptions(pauseWriterThreshold: 64 << 10, resumeWriterThreshold: 32 << 10,
            useSynchronizationContext: false));
        var body = new CompressedBody(kestrel.Writer, "gzip", 128 << 10);
        ValueTask<FlushResult> pending = default;
        var written = 0;
        for (var i = 0; i < 64 && (i == 0 || pending.IsCompleted); i++)
        {
            Write(body.Writer, Random(32 << 10, seed: i));
            written += 32 << 10;
            pending = body.Writer.FlushAsync();
            if (pending.IsCompleted) await pending;
        }
        // The gateway would now hand the rest to a spool and free its Python thread.
        Assert.False(pending.IsCompleted, $"every flush completed after {written} incompressible bytes");

        var drained = ReadAllAsync(kestrel.Reader);
        var flushed = await pending.AsTask().WaitAsync(Wait);
        Assert.False(flushed.IsCompleted || flushed.IsCanceled);
        Assert.True(await body.EndAsync(sendRest: true).WaitAsync(Wait));
        await kestrel.Writer.CompleteAsync();
        Assert.Equal(written, Decompress("gzip", await drained).Length);
    }

    [Fact]
    public async Task Flush_ClientGone_GatewaySeesTheBodyCompleted()
    {
        var kestrel = new Pipe();
        var body = new CompressedBody(kestrel.Writer, "br", 1 << 20);
        await kestrel.Reader.CompleteAsync(); // the connection was reset
        FlushResult result = default;
        for (var i = 0; i < 100 && !result.IsCompleted; i++)
        {
            Write(body.Writer, Random(64 << 10, seed: i));
            result = await body.Writer.FlushAsync().AsTask().WaitAsync(Wait);
        }
        Assert.True(result.IsCompleted);
        Assert.False(await body.EndAsync(sendRest: true).WaitAsync(Wait));
    }

    [Fact]
    public async Task EndAsync_WithoutSending_NothingReachesKestrel()
    {
        var kestrel = new Pipe();
        var body = new CompressedBody(kestrel.Writer, "gzip", 1 << 20);
        Write(body.Writer, Text(100_000));

        Assert.False(await body.EndAsync(sendRest: false).WaitAsync(Wait));
        await kestrel.Writer.CompleteAsync();
        Assert.Empty(await ReadAllAsync(kestrel.Reader));
        Assert.Equal(0, body.CompressedBytes);
    }
}
