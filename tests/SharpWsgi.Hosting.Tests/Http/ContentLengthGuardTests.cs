using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>
/// The strict Content-Length check's pure part (src/SharpWsgi.Http/Framing/ContentLengthGuard.cs): the head
/// scanner, and the guard over a connection's input, driven here as Kestrel drives it (a head consumed line by line
/// or whole, then the request code's verdict and framing, then the body). The Kestrel side is
/// in Functional/ContentLengthTests.
/// </summary>
public sealed class ContentLengthGuardTests
{
    private static byte[] Latin1(string text) => Encoding.Latin1.GetBytes(text);

    private static string Head(string contentLength, string method = "POST") =>
        $"{method} / HTTP/1.1\r\nHost: x\r\nContent-Length:{contentLength}\r\nAccept: */*\r\n\r\n";

    private static (int Used, ContentLengthScanner Scanner) Scan(string text)
    {
        var scanner = new ContentLengthScanner();
        scanner.Reset();
        return (scanner.Feed(Latin1(text)), scanner);
    }

    // ---- the scanner --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(" 5")]
    [InlineData("5")]
    [InlineData(" 05")]
    [InlineData(" 0")]
    [InlineData("  5  ")]
    [InlineData("\t5\t")]
    [InlineData(" 1234567890123456789")]
    public void Feed_DigitsWithOptionalSpaceOrTab_NoProblem(string value)
    {
        var (used, scanner) = Scan(Head(value));
        Assert.True(scanner.HeadComplete);
        Assert.Equal(Head(value).Length, used);
        Assert.Null(scanner.Problem);
    }

    [Theory]
    [InlineData(" +5", "+5")]
    [InlineData(" -0", "-0")]
    [InlineData(" 5 5", "5 5")]
    [InlineData(" 1 2", "1 2")]
    [InlineData(" 0x5", "0x5")]
    [InlineData(" 1_0", "1_0")]
    [InlineData(" 5,5", "5,5")]
    [InlineData(" 5, 5", "5, 5")]
    [InlineData(" ", "")]
    [InlineData(" \u000b5", "\\x0b5")]
    [InlineData(" 5\u000c ", "5\\x0c")]
    [InlineData(" 5\u00a0", "5\\xa0")]
    [InlineData(" 5\r5", "5\\x0d5")]
    public void Feed_NotDigitsOnly_ProblemQuotesTheValue(string value, string shown)
    {
        var (_, scanner) = Scan(Head(value));
        Assert.True(scanner.HeadComplete);
        Assert.Equal($"Content-Length must be digits only (got '{shown}')", scanner.Problem);
    }

    [Fact]
    public void Feed_LongValue_QuotedCutShort()
    {
        var (_, scanner) = Scan(Head(" +" + new string('9', 100)));
        Assert.Equal($"Content-Length must be digits only (got '+{new string('9', 31)}...')", scanner.Problem);
    }

    [Theory]
    [InlineData("CONTENT-LENGTH")]
    [InlineData("content-length")]
    [InlineData("Content-length")]
    [InlineData("cOnTeNt-LeNgTh")]
    public void Feed_FieldNameInAnyCase_Checked(string name)
    {
        var (_, scanner) = Scan($"GET / HTTP/1.1\r\nHost: x\r\n{name}: +1\r\n\r\n");
        Assert.NotNull(scanner.Problem);
    }

    [Theory]
    [InlineData("X-Content-Length: +5")]
    [InlineData("Content-Lengths: +5")]
    [InlineData("Content-Length-Override: +5")]
    [InlineData("Content-Type: +5")]
    [InlineData("Cookie: Content-Length: +5")]
    [InlineData("X-Note: a\r\n Content-Length: +5")] // not a field line of its own (Kestrel refuses obs-fold)
    public void Feed_OtherFields_NotChecked(string line)
    {
        var (_, scanner) = Scan($"GET / HTTP/1.1\r\nHost: x\r\n{line}\r\n\r\n");
        Assert.True(scanner.HeadComplete);
        Assert.Null(scanner.Problem);
    }

    [Fact]
    public void Feed_RequestLine_NotAFieldLine()
    {
        var (_, scanner) = Scan("Content-Length: +5 HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Null(scanner.Problem);
    }

    [Fact]
    public void Feed_TwoBadValues_TheFirstIsQuoted()
    {
        var (_, scanner) = Scan("GET / HTTP/1.1\r\nContent-Length: +1\r\nContent-Length: -2\r\n\r\n");
        Assert.Equal("Content-Length must be digits only (got '+1')", scanner.Problem);
    }

    [Fact]
    public void Feed_BodyAfterTheHead_NotRead()
    {
        var head = Head(" 24");
        var (used, scanner) = Scan(head + "\r\nContent-Length: +5\r\n\r\n");
        Assert.Equal(head.Length, used);
        Assert.Null(scanner.Problem);
    }

    [Fact]
    public void Feed_BlankLinesBeforeTheRequestLine_SkippedAsKestrelDoes()
    {
        var text = "\r\n\r\n" + Head(" +5");
        var (used, scanner) = Scan(text);
        Assert.Equal(text.Length, used);
        Assert.NotNull(scanner.Problem);
    }

    [Theory]
    [InlineData(" +5")]
    [InlineData(" 5")]
    public void Feed_OneByteAtATime_SameAsWhole(string value)
    {
        var bytes = Latin1(Head(value) + "body");
        var (wholeUsed, whole) = Scan(Encoding.Latin1.GetString(bytes));
        var scanner = new ContentLengthScanner();
        scanner.Reset();
        var used = 0;
        while (!scanner.HeadComplete) used += scanner.Feed(bytes.AsSpan(used, 1));
        Assert.Equal(wholeUsed, used);
        Assert.Equal(whole.Problem, scanner.Problem);
    }

    [Fact]
    public void Reset_StartsANewHead()
    {
        var scanner = new ContentLengthScanner();
        scanner.Reset();
        scanner.Feed(Latin1(Head(" +5")));
        scanner.Reset();
        Assert.False(scanner.HeadComplete);
        scanner.Feed(Latin1(Head(" 5")));
        Assert.True(scanner.HeadComplete);
        Assert.Null(scanner.Problem);
    }

    // ---- the guard, driven as Kestrel drives it ---------------------------------------------------------------

    /// <summary>A connection's input already received in full, in the given segments (a multi-segment buffer, as
    /// a pipe gives when data arrived in pieces).</summary>
    private sealed class ReceivedInput : PipeReader
    {
        private ReadOnlySequence<byte> _unread;

        public ReceivedInput(params string[] segments)
        {
            Segment? first = null, last = null;
            foreach (var text in segments)
            {
                var segment = new Segment(Latin1(text), last);
                first ??= segment;
                last = segment;
            }
            _unread = first == null ? default : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
        }

        public override bool TryRead(out ReadResult result)
        {
            result = new ReadResult(_unread, false, _unread.IsEmpty);
            return true;
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            TryRead(out var result);
            return new ValueTask<ReadResult>(result);
        }

        public override void AdvanceTo(SequencePosition consumed) => _unread = _unread.Slice(consumed);
        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => AdvanceTo(consumed);
        public override void CancelPendingRead() { }
        public override void Complete(Exception? exception = null) { }

        private sealed class Segment : ReadOnlySequenceSegment<byte>
        {
            public Segment(byte[] bytes, Segment? previous)
            {
                Memory = bytes;
                if (previous == null) return;
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }

    /// <summary>Consumes the next <paramref name="count"/> bytes, as Kestrel's parser or body reader does.</summary>
    private static void Consume(PipeReader reader, int count)
    {
        Assert.True(reader.TryRead(out var result));
        reader.AdvanceTo(result.Buffer.GetPosition(count), result.Buffer.End);
    }

    private static void ConsumeHead(PipeReader reader, string head)
    {
        // Kestrel takes the request line, then the fields, a line at a time when they arrive apart.
        foreach (var line in head.Split("\r\n")[..^1]) Consume(reader, line.Length + 2);
    }

    private static string? Verdict(ContentLengthGuard guard, HeadVerdict expected)
    {
        Assert.Equal(expected, guard.EndOfHead(out var problem));
        return problem;
    }

    [Fact]
    public void PipelinedRequests_EachHeadJudgedOnItsOwn_BodiesSkipped()
    {
        var first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        var second = Head(" 5");
        var third = Head(" +5");
        var guard = new ContentLengthGuard(new ReceivedInput(first + second + "hello" + third + "hello"));

        Consume(guard, first.Length);
        Verdict(guard, HeadVerdict.Valid);
        guard.BodyFollows(0);

        ConsumeHead(guard, second);
        Verdict(guard, HeadVerdict.Valid);
        guard.BodyFollows(5);
        Consume(guard, 2);
        Consume(guard, 3);

        Consume(guard, third.Length);
        Assert.Equal("Content-Length must be digits only (got '+5')", Verdict(guard, HeadVerdict.Refused));
        Assert.Equal(first.Length + second.Length + 5 + third.Length, guard.Consumed);
    }

    [Fact]
    public void BodyHoldingAContentLengthLine_NeverScanned()
    {
        var body = "\r\nContent-Length: +5\r\n\r\n";
        var head = Head($" {body.Length}");
        var next = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        var guard = new ContentLengthGuard(new ReceivedInput(head + body + next));
        Consume(guard, head.Length);
        Verdict(guard, HeadVerdict.Valid);
        guard.BodyFollows(body.Length);
        // The body and the next head in one consume (a reader may take more than one piece at once).
        Consume(guard, body.Length + next.Length);
        Verdict(guard, HeadVerdict.Valid);
    }

    [Fact]
    public void HeadSplitAcrossSegmentsAndConsumes_StillJudged()
    {
        var guard = new ContentLengthGuard(new ReceivedInput(
            "POST / HTTP/1.1\r\nHo", "st: x\r\nContent-Le", "ngth: +", "5\r", "\n\r", "\nhello"));
        Consume(guard, "POST / HTTP/1.1\r\n".Length);
        Consume(guard, "Host: x\r\nContent-Len".Length); // mid-line: the scanner keeps its place
        Consume(guard, "gth: +5\r\n\r\n".Length);
        Verdict(guard, HeadVerdict.Refused);
    }

    [Fact]
    public void ChunkedBody_NextHeadUnknownUntilAReaderSawItsEnd()
    {
        var head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        var body = "5\r\nhello\r\n0\r\nContent-Length: +9\r\n\r\n"; // a trailer is part of the body
        var next = Head(" +5");
        var guard = new ContentLengthGuard(new ReceivedInput(head + body + next));
        Consume(guard, head.Length);
        Verdict(guard, HeadVerdict.Valid);
        guard.ChunkedBodyFollows();
        Assert.False(guard.NextHeadKnown);
        Consume(guard, 10);
        Consume(guard, body.Length - 10);
        guard.ChunkedBodyEnded();
        Assert.True(guard.NextHeadKnown);
        guard.ChunkedBodyEnded(); // a second report changes nothing
        Consume(guard, next.Length);
        Verdict(guard, HeadVerdict.Refused);
    }

    [Fact]
    public void ChunkedBodyNotReadToItsEnd_NextHeadStaysUnknown()
    {
        var head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        var guard = new ContentLengthGuard(new ReceivedInput(head + "5\r\nhello\r\n0\r\n\r\n" + Head(" 5")));
        Consume(guard, head.Length);
        Verdict(guard, HeadVerdict.Valid);
        guard.ChunkedBodyFollows();
        Consume(guard, 3);
        Assert.False(guard.NextHeadKnown);
    }

    [Fact]
    public void ContentLengthBodyEnd_ReportedByAReader_ChangesNothing()
    {
        var head = Head(" 5");
        var guard = new ContentLengthGuard(new ReceivedInput(head + "hello" + Head(" -0")));
        Consume(guard, head.Length);
        Verdict(guard, HeadVerdict.Valid);
        guard.BodyFollows(5);
        Consume(guard, 5);
        guard.ChunkedBodyEnded();
        Consume(guard, Head(" -0").Length);
        Verdict(guard, HeadVerdict.Refused);
    }

    [Fact]
    public void ConsumedPastTheHeadBeforeTheRequestRan_UncheckedFromThenOn()
    {
        var head = Head(" 5");
        var guard = new ContentLengthGuard(new ReceivedInput(head + "hello" + Head(" +5")));
        Consume(guard, head.Length + 1);
        Verdict(guard, HeadVerdict.Unchecked);
        Assert.False(guard.NextHeadKnown);
        guard.BodyFollows(5); // ignored: the guard has stopped
        Consume(guard, 4 + Head(" +5").Length);
        Verdict(guard, HeadVerdict.Unchecked);
    }

    [Fact]
    public void HeadNotYetEnded_Unchecked()
    {
        var guard = new ContentLengthGuard(new ReceivedInput(Head(" 5")));
        Consume(guard, "POST / HTTP/1.1\r\n".Length);
        Verdict(guard, HeadVerdict.Unchecked);
    }

    [Fact]
    public void CrLfBetweenABodyAndTheNextHead_SkippedAsKestrelDoes()
    {
        var head = Head(" 5");
        var next = "\r\n" + Head(" +5");
        var guard = new ContentLengthGuard(new ReceivedInput(head + "hello" + next));
        Consume(guard, head.Length);
        Verdict(guard, HeadVerdict.Valid);
        guard.BodyFollows(5);
        Consume(guard, 5);
        Consume(guard, 2); // Kestrel consumes the blank line on its own before it finds a request line
        Consume(guard, next.Length - 2);
        Verdict(guard, HeadVerdict.Refused);
    }

    [Fact]
    public void ManyKeepAliveRequests_EveryHeadJudged()
    {
        var good = Head(" 3") + "abc";
        var text = string.Concat(Enumerable.Repeat(good, 1000)) + Head(" +3") + "abc";
        var guard = new ContentLengthGuard(new ReceivedInput(text));
        for (var i = 0; i < 1000; i++)
        {
            Consume(guard, Head(" 3").Length);
            Verdict(guard, HeadVerdict.Valid);
            guard.BodyFollows(3);
            Consume(guard, 3);
        }
        Consume(guard, Head(" +3").Length);
        Verdict(guard, HeadVerdict.Refused);
    }

    [Fact]
    public async Task ReadThatWaits_BufferStillMeasured()
    {
        var pipe = new Pipe();
        var guard = new ContentLengthGuard(pipe.Reader);
        var read = guard.ReadAsync();
        Assert.False(read.IsCompleted);
        await pipe.Writer.WriteAsync(Latin1(Head(" -0")));
        var result = await read;
        guard.AdvanceTo(result.Buffer.End);
        Verdict(guard, HeadVerdict.Refused);
        Assert.Equal(Head(" -0").Length, guard.Consumed);
    }
}
