-- replay.lua: the wrk script of every scenario and of its baseline.
--
--   wrk -t1 -c32 -d10s -s bench/replay.lua http://127.0.0.1:PORT -- FILE [POS]
--
-- Streams the pre-built requests of FILE (bench/gen.c's record files: an
-- 8-digit length and a newline, then one complete HTTP/1.1 request) from
-- byte offset POS, each request sent once; at the end of the file it starts
-- over (and says so: "wraps"). Requests are sent byte for byte as generated,
-- so the baseline (nginx's "return 200" on another port of the same nginx)
-- gets exactly the bytes the scenario gets: same headers, same body size.
--
-- The requests are read as they are sent (buffered stdio, no per-request
-- parsing), so a pool of any size costs no memory in wrk.
--
-- done() prints one line for bench/run.sh:
--   BENCH rps=.. p50_us=.. p99_us=.. requests=.. status_errors=.. errors=..
--         bytes=.. sent=.. end=.. wraps=..
-- status_errors counts answers >= 400, errors socket errors and timeouts,
-- bytes what was read (the answers), sent the requests handed to wrk
-- (including those still in flight when the run stopped), end the byte
-- offset the next run starts at.
-- Only with one thread (-t1): each thread would stream the same file (and
-- the first request of threads 2.. would be the check request below).

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    path = args[1]
    file = assert(io.open(path, "rb"))
    pos = tonumber(args[2] or "0") or 0
    file:seek("set", pos)
    sent, wraps = 0, 0
    verified = false
end

-- wrk calls request() once before the run, in thread 1's state, only to
-- check that it gives a parsable request (and how many: the pipeline
-- depth); that check refuses more than 80 KB of headers, which the
-- enqueue to 10,000 enrollments has. So the first call gets a small
-- request of the same shape, never sent, and consumes no record.
function request()
    if not verified then
        verified = true
        return "PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    end
    local h = file:read(9)
    if h == nil or #h < 9 then
        file:seek("set", 0)
        pos = 0
        wraps = wraps + 1
        h = file:read(9)
    end
    local n = tonumber(h)
    pos = pos + 9 + n
    sent = sent + 1
    return file:read(n)
end

function done(summary, latency, requests)
    local sent, wraps, pos = 0, 0, 0
    for _, t in ipairs(threads) do
        sent = sent + (t:get("sent") or 0)
        wraps = wraps + (t:get("wraps") or 0)
        pos = t:get("pos") or 0
    end
    local secs = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        "BENCH rps=%.1f p50_us=%d p99_us=%d requests=%d status_errors=%d " ..
        "errors=%d bytes=%d sent=%d end=%d wraps=%d\n",
        summary.requests / secs, latency:percentile(50), latency:percentile(99),
        summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
        summary.bytes,
        sent, pos, wraps))
end
