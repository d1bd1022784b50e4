-- POST a 10 KB body (bytes 0..255 repeated, the same as static10k's) to the echo app.
local parts = {}
for i = 0, 255 do parts[#parts + 1] = string.char(i) end
local block = table.concat(parts)
wrk.method = "POST"
wrk.body = string.rep(block, 40) -- 10240 bytes
wrk.headers["Content-Type"] = "application/octet-stream"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
