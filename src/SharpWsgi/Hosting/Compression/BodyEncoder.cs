using System.Buffers;
using System.IO.Compression;

namespace SharpWsgi.Hosting;

/// <summary>
/// One response body's compressor (.NET's own zlib and brotli), writing straight into the response pipe's buffers
/// and counting the bytes it produced (the access log's and the metrics' count of a compressed response). The
/// native encoder is made on first use: the head is committed on a Python thread, the compressing is the pump's.
/// </summary>
internal abstract class BodyEncoder : IDisposable
{
    /// <summary>zlib-ng's level 2 (.NET's zlib, its "fast" strategy): a little smaller than nginx's default
    /// gzip_comp_level 1 (classic zlib) for about its CPU (bench/compress.sh); zlib-ng's level 1 is quicker but a
    /// third larger on HTML, its levels 3 and up cost twice the CPU for a few percent.</summary>
    public const int GzipLevel = 2;
    /// <summary>Brotli's quality for on-the-fly use: within a few percent of quality 4's size at a fraction of its
    /// CPU (bench/compress.sh); the higher qualities are for files compressed once, ahead of time.</summary>
    public const int BrotliQuality = 2;
    /// <summary>log2 of brotli's window: 256 KB, so a response holds a bounded encoder state (the default 4 MB
    /// window costs memory per concurrent response for no gain on HTML and JSON of ordinary size).</summary>
    public const int BrotliWindow = 18;
    private const int OutputBlock = 4096;

    private readonly IBufferWriter<byte> _output;
    private bool _discard;

    protected BodyEncoder(IBufferWriter<byte> output) => _output = output;

    /// <summary>Compressed bytes produced so far.</summary>
    public long Written { get; private set; }
    /// <summary>Bytes produced since the last <see cref="TakeUnflushed"/>: worth a flush of the pipe.</summary>
    private long _unflushed;

    public static BodyEncoder For(string coding, IBufferWriter<byte> output) => coding switch
    {
        Http.AcceptEncoding.Brotli => new Brotli(output),
        Http.AcceptEncoding.Gzip => new Gzip(output),
        _ => throw new ArgumentException($"no encoder for {coding}", nameof(coding)),
    };

    public abstract void Write(ReadOnlySpan<byte> data);
    /// <summary>Everything written so far, out now (a block boundary; the stream goes on).</summary>
    public abstract void Flush();
    /// <summary>The last block and the format's trailer.</summary>
    public abstract void Finish();
    public abstract void Dispose();

    public long TakeUnflushed()
    {
        var n = _unflushed;
        _unflushed = 0;
        return n;
    }

    /// <summary>From now on nothing more reaches the pipe (the response is abandoned; a disposing compressor's
    /// trailer must not land in front of another answer).</summary>
    public void Discard() => _discard = true;

    protected Span<byte> OutputSpan() => _output.GetSpan(OutputBlock);

    protected void Produced(int count)
    {
        if (count == 0) return;
        _output.Advance(count);
        Written += count;
        _unflushed += count;
    }

    protected void Copy(ReadOnlySpan<byte> compressed)
    {
        if (_discard) return;
        while (!compressed.IsEmpty)
        {
            var span = OutputSpan();
            var n = Math.Min(span.Length, compressed.Length);
            compressed[..n].CopyTo(span);
            Produced(n);
            compressed = compressed[n..];
        }
    }

    private sealed class Brotli(IBufferWriter<byte> output) : BodyEncoder(output)
    {
        private BrotliEncoder _encoder;
        private bool _made;

        public override void Write(ReadOnlySpan<byte> data) => Run(data, isFinalBlock: false);
        public override void Finish() => Run(default, isFinalBlock: true);

        public override void Flush()
        {
            if (_discard) return;
            Make();
            while (true)
            {
                var status = _encoder.Flush(OutputSpan(), out var written);
                Produced(written);
                if (status == System.Buffers.OperationStatus.Done) return;
                if (status == System.Buffers.OperationStatus.InvalidData)
                    throw new InvalidOperationException("the brotli encoder failed");
            }
        }

        private void Run(ReadOnlySpan<byte> data, bool isFinalBlock)
        {
            if (_discard) return;
            Make();
            while (true)
            {
                var status = _encoder.Compress(data, OutputSpan(), out var consumed, out var written, isFinalBlock);
                Produced(written);
                data = data[consumed..];
                if (status == System.Buffers.OperationStatus.Done) return;
                if (status == System.Buffers.OperationStatus.InvalidData)
                    throw new InvalidOperationException("the brotli encoder failed");
            }
        }

        private void Make()
        {
            if (_made) return;
            _encoder = new BrotliEncoder(BrotliQuality, BrotliWindow);
            _made = true;
        }

        public override void Dispose()
        {
            if (_made) _encoder.Dispose();
        }
    }

    private sealed class Gzip(IBufferWriter<byte> output) : BodyEncoder(output)
    {
        private GZipStream? _stream;

        private GZipStream Stream =>
            _stream ??= new GZipStream(new Sink(this), new ZLibCompressionOptions { CompressionLevel = GzipLevel });

        public override void Write(ReadOnlySpan<byte> data) => Stream.Write(data);
        public override void Flush() => Stream.Flush(); // zlib's sync flush
        public override void Finish() => Stream.Dispose(); // an empty body still gets gzip's header and trailer
        public override void Dispose() => _stream?.Dispose();

        /// <summary>What GZipStream writes goes into the pipe's buffers (no flush: the pump decides).</summary>
        private sealed class Sink(Gzip owner) : Stream
        {
            public override void Write(ReadOnlySpan<byte> buffer) => owner.Copy(buffer);
            public override void Write(byte[] buffer, int offset, int count) =>
                owner.Copy(buffer.AsSpan(offset, count));
            public override void Flush() { }
            public override bool CanRead => false;
            public override bool CanSeek => false;
            public override bool CanWrite => true;
            public override long Length => throw new NotSupportedException();
            public override long Position
            {
                get => throw new NotSupportedException();
                set => throw new NotSupportedException();
            }
            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
        }
    }
}
