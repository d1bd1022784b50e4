using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>The table of the server's own answers (src/SharpWsgi.Http/Answers/ServerAnswer.cs): which close the
/// connection, which say Retry-After, and the causes the metrics count by.</summary>
public class ServerAnswerTests
{
    [Fact]
    public void Refusals_CloseTheConnection_OthersKeepIt()
    {
        Assert.True(ServerAnswer.Refusal(400, "x").Close);
        Assert.True(ServerAnswer.BodyOverLimit(10).Close);
        Assert.True(ServerAnswer.SlowUpload.Close);
        Assert.True(ServerAnswer.WorkerNotResponding.Close);
        Assert.False(ServerAnswer.ThreadsBusy.Close); // closed only while the worker drains (the host's policy)
        Assert.False(ServerAnswer.QueueTimedOut.Close);
        Assert.False(ServerAnswer.AppTimedOut.Close);
        Assert.False(ServerAnswer.AppFailed.Close);
        Assert.False(ServerAnswer.NoStaticFile.Close);
    }

    [Fact]
    public void Unavailable_SaysRetryAfter()
    {
        Assert.Equal(1, ServerAnswer.ThreadsBusy.RetryAfter);
        Assert.Equal(1, ServerAnswer.WorkerNotResponding.RetryAfter);
        Assert.Equal(0, ServerAnswer.QueueTimedOut.RetryAfter);
    }

    [Fact]
    public void BodyOverLimit_NamesTheSetting_OrTheServersOwnCap()
    {
        Assert.Equal("request body exceeds --limit-request-body 10", ServerAnswer.BodyOverLimit(10).Reason);
        Assert.Equal("request body exceeds --limit-request-body 10 (Content-Length: 11)",
            ServerAnswer.BodyOverLimit(10, 11).Reason);
        Assert.Equal("the request body is larger than the server accepts", ServerAnswer.BodyOverLimit(0).Reason);
        Assert.Equal(413, ServerAnswer.BodyOverLimit(0).Status);
    }

    [Fact]
    public void WhileAppRead_SameAnswerOtherCause()
    {
        var before = ServerAnswer.MalformedBody("bad chunk");
        var during = before.WhileAppRead();
        Assert.Equal((before.Status, before.Reason, before.Close), (during.Status, during.Reason, during.Close));
        Assert.Equal(AnswerCause.Refused, before.Cause);
        Assert.Equal(AnswerCause.BadBody, during.Cause);
    }
}
