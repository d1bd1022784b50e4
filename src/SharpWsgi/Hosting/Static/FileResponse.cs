using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting;

/// <summary>
/// How a file the server sends itself goes out, on Kestrel's thread: the head (validators, 304, one byte range, 416),
/// then the bytes: small files in one write into Kestrel's buffer (from memory when cached), larger ones on cleartext
/// HTTP/1.1 by sendfile(2) through <see cref="SendfileTransport"/> (unless --no-sendfile), else copied through Kestrel
/// in 256 KB pieces with backpressure (TLS, HTTP/2). The same for --static and for the files an app names with
/// X-Accel-Redirect or X-Sendfile.
/// </summary>
internal sealed class FileResponse(ILogger log)
{
    // A flush waits only once --response-buffer-size is buffered.
    private const int ChunkSize = 256 * 1024;

    /// <summary>Who wrote the head so far, and what of it stays.</summary>
    public enum Head
    {
        /// <summary>A file of its own (--static): the head is the file's alone.</summary>
        FileOnly,
        /// <summary>The app's head, stripped of what described its own body (X-Accel-Redirect): its other headers
        /// stay (Content-Disposition, Set-Cookie, Cache-Control), and its Content-Type wins over the extension's.
        /// </summary>
        KeepApps,
    }

    public Task Send(KestrelExchange exchange, FileMounts.Entry entry, FileMounts.Representation file, bool isHead,
        Head head)
    {
        var request = exchange.KestrelRequestHeaders;
        var response = exchange.Response;
        var headers = response.Headers;
        if (head == Head.FileOnly) headers.Clear();
        response.ReasonPhrase = null; // the app's phrase was for its own status
        exchange.ApplyHeadPolicy(closeConnection: false);
        headers.ETag = file.ETag;
        headers.LastModified = file.LastModifiedText;
        if (entry.CacheControl != null) headers.CacheControl = entry.CacheControl;
        if (entry.HasSiblings) headers.Vary = HeaderSyntax.AddToList(headers.Vary, "Accept-Encoding");

        if (Validators.NotModified(request.IfNoneMatch, request.IfModifiedSince, file.ETag, file.LastModified))
        {
            response.StatusCode = 304;
            // nginx's not-modified rule: no type or length for a body that is not there.
            headers.Remove("Content-Type");
            return Task.CompletedTask;
        }

        if (head == Head.FileOnly || string.IsNullOrEmpty(headers.ContentType)) headers.ContentType = entry.ContentType;
        if (file.Encoding != null) headers.ContentEncoding = file.Encoding;
        headers.AcceptRanges = "bytes";
        var length = file.Stat.Size;
        long start = 0, count = length;
        var status = 200;
        if (!isHead && request.Range.Count > 0 &&
            Validators.IfRangeHolds(request.IfRange, file.ETag, file.LastModified))
        {
            switch (ByteRange.Parse(request.Range.ToString(), length, out var first, out var last))
            {
                case ByteRangeResult.Satisfiable:
                    status = 206;
                    headers.ContentRange = $"bytes {first}-{last}/{length}";
                    (start, count) = (first, last - first + 1);
                    break;
                case ByteRangeResult.Unsatisfiable:
                    return PlainAsync(exchange, ServerAnswer.RangeOutsideFile(length), $"bytes */{length}");
            }
        }
        response.StatusCode = status;
        headers.ContentLength = count;
        if (isHead || count == 0) return Task.CompletedTask;

        if (file.Bytes != null)
        {
            // Into Kestrel's response buffer; Kestrel flushes it with the head when the request ends.
            var writer = exchange.ResponseBodyFeature.Writer;
            file.Bytes.AsSpan((int)start, (int)count).CopyTo(writer.GetSpan((int)count));
            writer.Advance((int)count);
            exchange.CountBodyBytes(count);
            return Task.CompletedTask;
        }

        var transport = count > FileMounts.SmallFile && !exchange.IsHttp2
            ? exchange.Features.Get<SendfileTransport>() : null;
        if (transport != null && !KestrelBodyCount.CanSet(exchange.Features))
        {
            WarnNoSendfileOnce();
            transport = null;
        }
        SafeFileHandle handle;
        // SendPacketsAsync takes only a FileStream opened for asynchronous I/O (on Linux a flag, no thread).
        try
        {
            handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite,
                transport != null ? FileOptions.Asynchronous : FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.LogWarning("File {Path} cannot be opened: {Error}", file.Path, e.Message);
            return PlainAsync(exchange, ServerAnswer.StaticFileUnreadable, null);
        }
        if (transport != null) return SendfileAsync(exchange, transport, handle, start, count);
        return count <= FileMounts.SmallFile ? SendSmall(exchange, handle, start, (int)count)
            : SendLargeAsync(exchange, handle, start, count);
    }

    public static async Task PlainAsync(KestrelExchange exchange, ServerAnswer answer, string? contentRange)
    {
        var headers = contentRange == null ? null : new[] { KeyValuePair.Create("Content-Range", contentRange) };
        if (!await PlainResponse.WriteAsync(exchange, answer, headers).ConfigureAwait(false))
            exchange.AbortConnection();
    }

    private static int _warnedNoSendfile;

    private void WarnNoSendfileOnce()
    {
        if (Interlocked.Exchange(ref _warnedNoSendfile, 1) == 0)
            log.LogWarning("This Kestrel has no body counter that sendfile can update: files are copied " +
                "through Kestrel instead (as with --no-sendfile)");
    }

    /// <summary>
    /// The head through Kestrel (flushed, so it is first in the forwarder's pipe), the body by sendfile(2) on the
    /// socket, then Kestrel is told the body is written so it keeps the connection alive.
    /// </summary>
    private static async Task SendfileAsync(KestrelExchange exchange, SendfileTransport transport,
        SafeFileHandle handle, long start, long count)
    {
        using (handle)
        {
            var body = exchange.ResponseBodyFeature;
            try
            {
                await body.StartAsync().ConfigureAwait(false);
                var flush = await body.Writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCanceled || flush.IsCompleted)
                {
                    exchange.AbortConnection();
                    return;
                }
            }
            catch (Exception)
            {
                exchange.AbortConnection(); // the client went away
                return;
            }
            if (!await transport.SendFileAsync(handle, start, count).ConfigureAwait(false))
            {
                exchange.AbortConnection(); // logged by the forwarder at debug level
                return;
            }
            KestrelBodyCount.Add(exchange.Features, count);
            exchange.CountBodyBytes(count);
        }
    }

    /// <summary>One read straight into Kestrel's response buffer; Kestrel flushes it when the request ends.</summary>
    private Task SendSmall(KestrelExchange exchange, SafeFileHandle handle, long start, int count)
    {
        using (handle)
        {
            var writer = exchange.ResponseBodyFeature.Writer;
            var span = writer.GetSpan(count)[..count];
            int read;
            try { read = ReadFully(handle, span, start); }
            catch (IOException e) { return ReadFailed(exchange, e); }
            if (read < count) return ReadFailed(exchange, new IOException("the file shrank while it was sent"));
            writer.Advance(count);
            exchange.CountBodyBytes(count);
            return Task.CompletedTask;
        }
    }

    private async Task SendLargeAsync(KestrelExchange exchange, SafeFileHandle handle, long start, long count)
    {
        using (handle)
        {
            var writer = exchange.ResponseBodyFeature.Writer;
            try
            {
                while (count > 0)
                {
                    var size = (int)Math.Min(count, ChunkSize);
                    var memory = writer.GetMemory(size)[..size];
                    // Reads of files in the page cache are quicker than an async hop to the thread pool.
                    var read = ReadFully(handle, memory.Span, start);
                    if (read < size) throw new IOException("the file shrank while it was sent");
                    writer.Advance(read);
                    exchange.CountBodyBytes(read);
                    start += read;
                    count -= read;
                    var flush = await writer.FlushAsync().ConfigureAwait(false);
                    if (flush.IsCanceled || flush.IsCompleted) break;
                }
            }
            catch (IOException e)
            {
                await ReadFailed(exchange, e).ConfigureAwait(false);
            }
            catch (Exception) { exchange.AbortConnection(); } // the client went away
        }
    }

    public static int ReadFully(SafeFileHandle handle, Span<byte> span, long offset)
    {
        var total = 0;
        while (total < span.Length)
        {
            var n = RandomAccess.Read(handle, span[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>The head (with its Content-Length) may be out: the only honest ending is a reset.</summary>
    private Task ReadFailed(KestrelExchange exchange, IOException e)
    {
        log.LogWarning("File read failed for {Target}: {Error}", exchange.RawTarget, e.Message);
        exchange.AbortConnection();
        return Task.CompletedTask;
    }
}
