# POST /v1/webhooks/replay[?count=N] (contract C4): the oldest N dead
# letters (100 by default, at most 1,000 per call) go back to mdm:events
# with the fields of the event they carried, as new entries the webhook
# consumer group has not seen, and leave mdm:webhooks:dead. The answer says
# how many were replayed and how many remain.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

no_shuffle();

# a dead letter as mdm-worker writes it: event_id, error, then the event
sub event { my ($n) = @_;
    return ("type", "Connect", "id", "D-$n", "enrollment_type", "Device", "device_id", "D-$n",
            "time", "170000000000$n", "params", "", "status", "Acknowledged",
            "command_uuid", "C-$n", "body", "<plist>\x{e9}\"\\ $n</plist>") }
sub dead { my ($n) = @_;
    return [ "XADD", "mdm:webhooks:dead", "*", "event_id", "1700000000000-$n",
             "error", "HTTP 500", event($n) ] }

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(event dead);
}

api_defaults('hook-key');

run_tests();

__DATA__

=== TEST 1: replay?count=3: the three oldest, in order, with their fields; two remain
--- redis_setup eval
[ [ "FLUSHALL" ], [ "XGROUP", "CREATE", "mdm:events", "webhooks", '$', "MKSTREAM" ],
  map { dead($_) } 1 .. 5 ]
--- request
POST /v1/webhooks/replay?count=3
--- error_code: 200
--- json eval
exact({ replayed => num(3), dropped => num(0), remaining => num(2) })
--- redis_check eval
[ [ [ "EVAL", q{
        local out = {}
        for _, e in ipairs(redis.call('XRANGE', 'mdm:events', '-', '+')) do
            out[#out + 1] = table.concat(e[2], '|')
        end
        return out }, 0 ],
    [ map { CORE::join("|", event($_)) } 1 .. 3 ] ],
  [ [ "EVAL", q{
        local out = {}
        for _, e in ipairs(redis.call('XRANGE', 'mdm:webhooks:dead', '-', '+')) do
            out[#out + 1] = e[2][2]
        end
        return out }, 0 ],
    [ "1700000000000-4", "1700000000000-5" ] ],
  # new to the webhook consumer group: it delivers them again
  [ [ "EVAL", q{
        local r = redis.call('XREADGROUP', 'GROUP', 'webhooks', 'c1', 'COUNT', 10,
                             'STREAMS', 'mdm:events', '>')
        return #r[1][2] }, 0 ], "3" ] ]



=== TEST 2: replay without count takes the rest; then there is nothing left to replay
--- request eval
[ "POST /v1/webhooks/replay", "POST /v1/webhooks/replay" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ exact({ replayed => num(2), dropped => num(0), remaining => num(0) }),
  exact({ replayed => num(0), dropped => num(0), remaining => num(0) }) ]
--- redis_check eval
[ [ "XLEN mdm:events", "5" ], [ "XLEN mdm:webhooks:dead", "0" ] ]



=== TEST 3: at most count per call (1,000 at most): 1,200 dead letters take two calls
--- redis_setup eval
[ [ "FLUSHALL" ],
  [ "EVAL", q{ for i = 1, 1200 do
                 redis.call('XADD', 'mdm:webhooks:dead', '*', 'event_id', '1-' .. i,
                            'error', 'HTTP 500', 'type', 'Idle', 'id', 'X-' .. i)
               end }, 0 ] ]
--- request eval
[ "POST /v1/webhooks/replay?count=1000", "POST /v1/webhooks/replay?count=1000" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ exact({ replayed => num(1000), dropped => num(0), remaining => num(200) }),
  exact({ replayed => num(200), dropped => num(0), remaining => num(0) }) ]
--- redis_check eval
[ [ "XLEN mdm:events", "1200" ],
  [ [ "EVAL", q{
        local f = redis.call('XRANGE', 'mdm:events', '-', '+', 'COUNT', 1)[1][2]
        local l = redis.call('XREVRANGE', 'mdm:events', '+', '-', 'COUNT', 1)[1][2]
        return f[4] .. ' ' .. l[4] }, 0 ], "X-1 X-1200" ] ]



=== TEST 4: a dead letter with no event fields is dropped, not replayed as an empty event
--- redis_setup eval
[ [ "FLUSHALL" ], [ "XADD", "mdm:webhooks:dead", "*", "event_id", "1-1", "error", "HTTP 500" ], dead(7) ]
--- request
POST /v1/webhooks/replay
--- error_code: 200
--- json eval
exact({ replayed => num(1), dropped => num(1), remaining => num(0) })
--- redis_check eval
[ [ "XLEN mdm:events", "1" ] ]



=== TEST 5: replay takes POST; count 1 to 1000
--- request eval
[ "GET /v1/webhooks/replay", "PUT /v1/webhooks/replay\nx", "POST /v1/webhooks/replay?count=0",
  "POST /v1/webhooks/replay?count=1001", "POST /v1/webhooks/replay?count=all" ]
--- error_code eval
[ 405, 405, 400, 400, 400 ]
--- json eval
[ (exact({ error => "webhooks/replay takes POST" })) x 2, (exact({ error => "count is 1 to 1000" })) x 3 ]
